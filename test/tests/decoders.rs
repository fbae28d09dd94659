//! The decoders meet 10,000 damaged images and `.aot` files (see `mvvm_tests::decode_fuzz`):
//! every one is answered with a value or an error, none panics or aborts.

#[test]
fn ten_thousand_damaged_files_get_an_answer() {
    let seeds = mvvm_tests::decode_fuzz::seeds();
    let t = mvvm_tests::decode_fuzz::run(&seeds, 0, 10_000);
    assert!(t.panics.is_empty(), "panics: {:?}", t.panics);
    assert_eq!(t.cases, 10_000);
    // The damage must mostly be refused, and must reach the body decoders (resealed cases).
    assert!(t.refused > 5_000, "{t:?}");
}

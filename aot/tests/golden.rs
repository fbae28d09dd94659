//! Golden tests: the instrumented text of one small module under each policy the tests use, so
//! that a reader can see what the transform does, and a change to its output shows up as a diff.
//!
//! `aot/tests/golden/input.wat` is the module; `aot/tests/golden/<policy>.wat` is what the
//! transform makes of it, printed, with the site table as comments at the top. After a change
//! that is meant to alter the output, `MVVM_BLESS=1 cargo test -p mvvm-aot --test golden`
//! rewrites the files; review their diff before committing it.

use mvvm_aot::transform::instrument;
use std::path::PathBuf;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// A file name for a policy label: `entry+counter-loop K=4` → `entry+counter-loop_K4`.
fn file_name(label: &str) -> String {
    let name: String = label
        .chars()
        .filter(|c| *c != '=')
        .map(|c| if c == ' ' { '_' } else { c })
        .collect();
    format!("{name}.wat")
}

/// The printed form: the site table as comments, then the module's text.
fn printed(label: &str) -> String {
    let policy = mvvm_tests::policies()
        .into_iter()
        .find(|(l, _)| *l == label)
        .map(|(_, p)| p)
        .expect("a test policy");
    let input = std::fs::read_to_string(golden_dir().join("input.wat")).expect("input.wat");
    let wasm = wat::parse_str(&input).expect("input.wat parses");
    let out = instrument(&wasm, &policy).expect("the transform accepts input.wat");
    let mut text = format!(";; policy: {label} ({})\n", policy.describe());
    for (id, site) in out.info.sites.iter().enumerate() {
        text.push_str(&format!(
            ";; site {id}: function {}, {:?}, frame slots {:?}\n",
            site.func, site.kind, site.frame
        ));
    }
    text.push_str(&wasmprinter::print_bytes(&out.wasm).expect("the output prints"));
    text
}

fn check(label: &str) {
    let path = golden_dir().join(file_name(label));
    let actual = printed(label);
    if std::env::var_os("MVVM_BLESS").is_some() {
        std::fs::write(&path, &actual).expect("write the golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(e, a)| e != a)
            .unwrap_or(expected.lines().count().min(actual.lines().count()));
        panic!(
            "{} differs from the transform's output at line {} \
             (expected {:?}, got {:?}); if the change is intended, rerun with MVVM_BLESS=1 \
             and review the diff",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            actual.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

#[test]
fn plain() {
    check("plain");
}

#[test]
fn counter_loop() {
    check("counter-loop K=16");
}

#[test]
fn entry_and_counter_loop() {
    check("entry+counter-loop K=4");
}

#[test]
fn entry_and_loop() {
    check("entry+loop");
}

#[test]
fn every_test_policy_has_a_golden_file() {
    for (label, _) in mvvm_tests::policies() {
        assert!(
            golden_dir().join(file_name(label)).is_file(),
            "no golden file for policy {label:?}: add a test for it and bless it"
        );
    }
}

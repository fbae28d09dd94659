//! Criterion benches of the transform: how fast `instrument` rewrites real modules.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mvvm_contract::Policy;
use mvvm_tests::all_guests;

fn transform(c: &mut Criterion) {
    let mut g = c.benchmark_group("instrument");
    for guest in all_guests()
        .into_iter()
        .filter(|g| g.big || g.name == "compute")
    {
        let wasm = guest.wasm();
        g.throughput(Throughput::Bytes(wasm.len() as u64));
        let policy = Policy {
            function_entry: true,
            ..Policy::default_counter()
        };
        g.bench_function(guest.name, |b| {
            b.iter(|| mvvm_aot::instrument(&wasm, &policy).expect("instrument"))
        });
    }
    g.finish();
}

criterion_group!(benches, transform);
criterion_main!(benches);

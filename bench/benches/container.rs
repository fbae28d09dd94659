//! Criterion benches of the `.aot` container: decode throughput (what `mvvm run` pays before the
//! program starts) of a real file, Lua's interpreter instrumented at the default policy with an
//! x86_64 artifact, and encode throughput.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mvvm_contract::{AotFile, EngineOptions, Policy, Target};
use mvvm_tests::bench_workloads;

fn container(c: &mut Criterion) {
    let lua = bench_workloads()
        .into_iter()
        .find(|w| w.name == "lua_bench")
        .expect("the lua_bench workload");
    let aot = mvvm_aot::build::build(
        &lua.wasm(),
        &Policy::default_counter(),
        &[Target::X86_64],
        &EngineOptions::default(),
    )
    .expect("build");
    let bytes = aot.encode();
    let mut g = c.benchmark_group("aot");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode/lua_bench", |b| {
        b.iter(|| AotFile::decode("bench", &bytes).expect("decode"))
    });
    g.bench_function("encode/lua_bench", |b| b.iter(|| aot.encode()));
    g.finish();
}

criterion_group!(benches, container);
criterion_main!(benches);

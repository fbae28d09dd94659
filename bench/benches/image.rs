//! Criterion benches of images: encode and decode throughput of a real snapshot (16 MiB of
//! pseudo-random memory from `guests/bench/fill.c`, stopped at `stop`), plain and with zstd.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mvvm_checkpoint::Image;
use mvvm_runtime::{Outcome, RunConfig, Trigger};

const MIB: u32 = 16;

fn snapshot() -> Image {
    let (p, stop) = mvvm_bench::fill_program();
    let cfg = RunConfig {
        argv: vec!["fill".into(), MIB.to_string()],
        ..RunConfig::default()
    };
    let run = p
        .run(&cfg, Trigger::FuncEntry { func: stop, nth: 1 })
        .expect("run fill");
    let Outcome::Checkpointed(snapshot) = run.outcome else {
        panic!("fill was not checkpointed at stop");
    };
    Image {
        producer: "bench".into(),
        taken_on: p.target.name().into(),
        snapshot: *snapshot,
    }
}

fn image(c: &mut Criterion) {
    let image = snapshot();
    let mut g = c.benchmark_group("image");
    g.sample_size(20);
    for (label, zstd) in [("plain", None), ("zstd-3", Some(3))] {
        let bytes = image.encode(zstd).expect("encode");
        let memory = MIB as u64 * (1 << 20);
        g.throughput(Throughput::Bytes(memory));
        g.bench_function(format!("encode/{label}"), |b| {
            b.iter(|| image.encode(zstd).expect("encode"))
        });
        g.bench_function(format!("decode/{label}"), |b| {
            b.iter(|| Image::decode("bench", &bytes).expect("decode"))
        });
    }
    g.finish();
}

criterion_group!(benches, image);
criterion_main!(benches);

//! Checkpoint and restore latency against touched memory, and how fast SIGUSR1 stops a loop.
//!
//! Usage: `latency [MIB ...]` (default: 1 64 256).
//!
//! * For each size, a generated program fills that much linear memory with pseudo-random data,
//!   then enters `$stop`, where a `-f`-style trigger checkpoints it. Checkpoint latency is the time
//!   from the trigger to the image synced on disk (unwind, copy, encode, atomic write); restore
//!   latency is from reading the image to the program running again at `$stop` (read, decode,
//!   instantiate, write memory, rewind), measured up to its exit right after. Median of 5.
//! * SIGUSR1: the `loops` guest (`long`, counter-loop sites at K=16) is signalled mid-run; the
//!   latency is from `raise(SIGUSR1)` to the snapshot in hand. Median and maximum of 20.

use mvvm_aot::{EngineOptions, Policy};
use mvvm_bench::median;
use mvvm_checkpoint::Image;
use mvvm_runtime::{Isa, Outcome, Output, Program, RunConfig, Trigger};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

const TRIALS: usize = 5;

/// A program that fills `mib` MiB of memory, stops at `$stop`, then checks a sample and exits.
fn filler(mib: u32) -> Vec<u8> {
    let pages = mib * 16;
    let wat = format!(
        r#"(module
  (memory (export "memory") {pages})
  (func $fill (local $p i32) (local $x i64)
    (local.set $x (i64.const 88172645463325252))
    (loop $l
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 13))))
      (local.set $x (i64.xor (local.get $x) (i64.shr_u (local.get $x) (i64.const 7))))
      (local.set $x (i64.xor (local.get $x) (i64.shl (local.get $x) (i64.const 17))))
      (i64.store (local.get $p) (local.get $x))
      (local.set $p (i32.add (local.get $p) (i32.const 8)))
      (br_if $l (i32.lt_u (local.get $p) (i32.const {bytes})))))
  (func $stop)
  (func $check (result i64) (local $p i32) (local $s i64)
    (loop $l
      (local.set $s (i64.add (local.get $s) (i64.load (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 65536)))
      (br_if $l (i32.lt_u (local.get $p) (i32.const {bytes}))))
    (local.get $s))
  (func (export "_start")
    (call $fill)
    (call $stop)
    (if (i64.eqz (call $check)) (then unreachable))))"#,
        bytes = u64::from(pages) * 65536 - 8,
    );
    wat::parse_str(wat).expect("generated WAT")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn memory_latency(mib: u32, dir: &std::path::Path) {
    let policy = Policy {
        function_entry: true,
        ..Policy::default_counter()
    };
    let p = Program::from_wasm(
        &filler(mib),
        &policy,
        Isa::Native,
        &EngineOptions::default(),
    )
    .expect("build");
    let stop = p.info.resolve_function("stop").expect("$stop");
    let cfg = RunConfig::default();
    let path = dir.join(format!("{mib}.ckpt"));
    let (mut ckpt, mut restore, mut size) = (Vec::new(), Vec::new(), 0);
    for _ in 0..TRIALS {
        let run = p
            .run(&cfg, Trigger::FuncEntry { func: stop, nth: 1 })
            .expect("run");
        let Outcome::Checkpointed(snap) = run.outcome else {
            panic!("no checkpoint");
        };
        let t = Instant::now();
        let image = Image {
            producer: "latency".into(),
            taken_on: p.target.name().into(),
            snapshot: *snap,
        };
        size = image.write(&path, None).expect("write");
        ckpt.push(ms(run.stop_time.unwrap_or_default() + t.elapsed()));
        drop(image);
        let t = Instant::now();
        let image = Image::read(&path).expect("read");
        let r = p
            .resume(&cfg, &image.snapshot, Trigger::None)
            .expect("resume");
        restore.push(ms(t.elapsed()));
        assert!(matches!(r.outcome, Outcome::Exited(0)));
    }
    println!(
        "| {mib} | {:.1} | {:.1} | {:.1} |",
        median(&mut ckpt),
        median(&mut restore),
        size as f64 / (1 << 20) as f64
    );
}

fn sigusr1_latency() {
    let guests = mvvm_tests::all_guests();
    let loops = guests.iter().find(|g| g.name == "loops").expect("loops");
    let p = Program::from_wasm(
        &loops.wasm(),
        &Policy::default_counter(),
        Isa::Native,
        &EngineOptions::default(),
    )
    .expect("build");
    let cfg = RunConfig {
        argv: vec!["loops".into(), "long".into()],
        stdout: Output::Capture(MemoryOutputPipe::new(1 << 20)),
        ..RunConfig::default()
    };
    p.doorbell(&cfg)
        .ring_on_signal(signal_hook::consts::SIGUSR1)
        .expect("SIGUSR1");
    let mut lat = Vec::new();
    for i in 0..20u64 {
        let sent: Arc<Mutex<Option<Instant>>> = Arc::default();
        let s = sent.clone();
        let raiser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20 + (i * 7) % 60));
            *s.lock().expect("lock") = Some(Instant::now());
            signal_hook::low_level::raise(signal_hook::consts::SIGUSR1).expect("raise");
        });
        let run = p.run(&cfg, Trigger::None).expect("run");
        let done = Instant::now();
        raiser.join().expect("raiser");
        assert!(
            matches!(run.outcome, Outcome::Checkpointed(_)),
            "the loop finished before the signal; make it longer"
        );
        let t0 = sent.lock().expect("lock").expect("sent");
        lat.push(ms(done - t0));
    }
    let max = lat.iter().copied().fold(0.0, f64::max);
    println!(
        "SIGUSR1 to snapshot, loops long, counter-loop K=16, 20 trials: median {:.3} ms, max {:.3} ms",
        median(&mut lat),
        max
    );
}

fn main() {
    let sizes: Vec<u32> = {
        let v: Vec<u32> = std::env::args()
            .skip(1)
            .filter_map(|a| a.parse().ok())
            .collect();
        if v.is_empty() {
            vec![1, 64, 256]
        } else {
            v
        }
    };
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    println!("checkpoint = trigger to image synced on disk; restore = image read to program running again (median of {TRIALS})\n");
    println!("| touched memory (MiB) | checkpoint (ms) | restore (ms) | image (MiB) |");
    println!("|---:|---:|---:|---:|");
    for mib in sizes {
        memory_latency(mib, dir.path());
    }
    println!();
    sigusr1_latency();
}

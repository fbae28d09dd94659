//! Checkpoint and restore latency against touched memory, and how fast SIGUSR1 stops a loop.
//!
//! Usage: `latency [--csv FILE] [--no-sigusr1] [MIB ...]` (default: 1 64 256). The CSV has the
//! columns of `artifact/criu.sh`'s: `tool,mib,checkpoint_ms,restore_ms,image_bytes,status`.
//!
//! * For each size, `guests/bench/fill.c` fills that much memory with pseudo-random data, then
//!   enters `stop`, where a `-f`-style trigger checkpoints it. Checkpoint latency is the time
//!   from the trigger to the image synced on disk (unwind, copy, encode, atomic write); restore
//!   latency is from reading the image to the program running again at `stop` (read, decode,
//!   instantiate, write memory, rewind), measured up to its exit right after. Median of 5.
//! * SIGUSR1: the `loops` guest (`long`, counter-loop sites at K=16) is signalled mid-run; the
//!   latency is from `raise(SIGUSR1)` to the snapshot in hand. Median and maximum of 20.

use mvvm_bench::median;
use mvvm_checkpoint::Image;
use mvvm_contract::{EngineOptions, Policy};
use mvvm_runtime::{Isa, Outcome, Output, Program, RunConfig, Trigger};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

const TRIALS: usize = 5;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Checkpoint and restore of `fill MIB`; returns (checkpoint ms, restore ms, image bytes), medians.
fn memory_latency(mib: u32, dir: &std::path::Path) -> (f64, f64, u64) {
    let (p, stop) = mvvm_bench::fill_program();
    let cfg = RunConfig {
        argv: vec!["fill".into(), mib.to_string()],
        stdout: Output::Capture(MemoryOutputPipe::new(1 << 16)),
        ..RunConfig::default()
    };
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
    (median(&mut ckpt), median(&mut restore), size)
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
    cfg.doorbell
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
    let mut sizes: Vec<u32> = Vec::new();
    let mut csv: Option<std::path::PathBuf> = None;
    let mut sigusr1 = true;
    let mut args = std::env::args().skip(1);
    // A bad command line: one line and the usage, exit status 2.
    let bad_usage = |problem: String| -> ! {
        eprintln!("latency: {problem}\nusage: latency [--csv FILE] [--no-sigusr1] [MIB ...]");
        std::process::exit(2)
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--csv" => match args.next() {
                Some(f) => csv = Some(f.into()),
                None => bad_usage("--csv needs a file".into()),
            },
            "--no-sigusr1" => sigusr1 = false,
            n => match n.parse::<u32>() {
                Ok(m) if m >= 1 => sizes.push(m),
                _ => bad_usage(format!(
                    "{n:?} is neither an option nor a size in MiB (at least 1)"
                )),
            },
        }
    }
    if sizes.is_empty() {
        sizes = vec![1, 64, 256];
    }
    let dir = tempfile::tempdir_in(".").expect("tempdir");
    println!("checkpoint = trigger to image synced on disk; restore = image read to program running again (median of {TRIALS})\n");
    println!("| touched memory (MiB) | checkpoint (ms) | restore (ms) | image (MiB) |");
    println!("|---:|---:|---:|---:|");
    let mut rows = String::from("tool,mib,checkpoint_ms,restore_ms,image_bytes,status\n");
    for mib in sizes {
        let (c, r, size) = memory_latency(mib, dir.path());
        println!(
            "| {mib} | {c:.1} | {r:.1} | {:.1} |",
            size as f64 / (1 << 20) as f64
        );
        rows.push_str(&format!("mvvm,{mib},{c:.3},{r:.3},{size},ok\n"));
    }
    if let Some(path) = csv {
        mvvm_contract::file::atomic_write_as(
            &path,
            rows.as_bytes(),
            mvvm_contract::file::Access::Shared,
        )
        .expect("write the CSV file");
    }
    if sigusr1 {
        println!();
        sigusr1_latency();
    }
}

//! What a follower costs: a multi-variant pair (native master, native follower of the same
//! module, output-lockstep) against a single run of the same program, side by side in one run.
//!
//! Usage: `mvx [--pairs N] [--csv FILE]`.
//!
//! * Compute-bound: benchmark workloads (`test/guests/bench`) at half their benchmark scale. Each
//!   cell is the median over N alternating single/pair runs (default 3) of the pair's wall time
//!   over the single run's, and the same for CPU time (user + system of the whole process, both
//!   variants' threads included).
//! * Per call: modules that make 100,000 calls of one class, a write (compared: the master waits
//!   for its follower) and a clock read (replicated: it does not), give the cost of one event as
//!   (pair - single) / calls.

use mvvm_bench::median;
use mvvm_contract::Policy;
use mvvm_runtime::mvx::{self, Follower, MvxOutcome, Policy as Lockstep};
use mvvm_runtime::{Isa, Output, RunConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Calls made by the per-call modules.
const CALLS: u32 = 100_000;

/// User + system CPU time of this process so far, every thread included.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes into the struct it is given and has no other effect.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always valid.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Wall and CPU time of `f`.
fn timed(f: impl FnOnce()) -> (Duration, Duration) {
    let (wall, cpu) = (Instant::now(), cpu_time());
    f();
    (wall.elapsed(), cpu_time() - cpu)
}

/// A configuration whose output goes to memory.
fn config(argv: Vec<String>) -> RunConfig {
    RunConfig {
        argv,
        stdout: Output::Capture(MemoryOutputPipe::new(1 << 26)),
        stderr: Output::Capture(MemoryOutputPipe::new(1 << 20)),
        ..RunConfig::default()
    }
}

/// One single run and one pair run of `wasm`, alternating `pairs` times: the medians of the
/// pair's wall and CPU time over the single run's, and the median single wall time.
fn compare(wasm: &[u8], argv: &[String], pairs: usize) -> (f64, f64, Duration) {
    let policy = Policy::default_counter();
    let master = mvvm_tests::program(wasm, &policy, Isa::Native);
    let follower = Follower {
        program: Arc::new(mvvm_tests::program(wasm, &policy, Isa::Native)),
        name: "follower".into(),
    };
    let (mut wall, mut cpu, mut single_wall) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..pairs {
        let single = timed(|| {
            master
                .run(&config(argv.to_vec()), Default::default())
                .expect("single run");
        });
        let pair = timed(|| {
            let run = mvx::run(
                &master,
                mvx::Followers::local(vec![follower.clone()]),
                &config(argv.to_vec()),
                Lockstep::OutputLockstep,
            )
            .expect("pair run");
            if let MvxOutcome::Diverged(d) = run.outcome {
                panic!("an agreeing pair diverged:\n{d}");
            }
        });
        wall.push(pair.0.as_secs_f64() / single.0.as_secs_f64());
        cpu.push(pair.1.as_secs_f64() / single.1.as_secs_f64());
        single_wall.push(single.0.as_secs_f64());
    }
    let single = Duration::from_secs_f64(median(&mut single_wall));
    (median(&mut wall), median(&mut cpu), single)
}

/// A module that makes `CALLS` calls of `call` (a WAT call expression) in a loop.
fn calls_module(imports: &str, call: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(module {imports}
  (memory (export "memory") 1)
  (data (i32.const 16) "12345678")
  (data (i32.const 0) "\10\00\00\00\08\00\00\00")
  (func (export "_start") (local $i i32)
    (loop $again
      (drop {call})
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (i32.const {CALLS}))))))"#
    ))
    .expect("a valid module")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let pairs: usize = flag("--pairs").map_or(3, |n| n.parse().expect("--pairs N"));
    let mut csv = String::from("workload,single_ms,pair_wall_ratio,pair_cpu_ratio\n");
    println!("Pair (native master + native follower, output-lockstep) over single run, median of {pairs}:\n");
    println!("| workload | single (ms) | pair wall / single | pair CPU / single |");
    println!("|---|---:|---:|---:|");
    let compute = ["matmul", "nbody", "recursion", "sqlite_bench", "lua_bench"];
    for w in mvvm_tests::bench_workloads() {
        if !compute.contains(&w.name) {
            continue;
        }
        let argv = vec![w.name.to_string(), (w.bench_scale / 2).max(1).to_string()];
        let (wall, cpu, single) = compare(&w.wasm(), &argv, pairs);
        let ms = single.as_secs_f64() * 1e3;
        println!("| {} | {ms:.1} | {wall:.3} | {cpu:.3} |", w.name);
        csv.push_str(&format!("{},{ms:.1},{wall:.4},{cpu:.4}\n", w.name));
    }
    println!("\nPer event ({CALLS} calls each; (pair - single) / calls):\n");
    println!("| call | class | single (µs/call) | pair (µs/call) | cost of the event (µs) |");
    println!("|---|---|---:|---:|---:|");
    let write = calls_module(
        r#"(import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))"#,
        "(call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))",
    );
    let clock = calls_module(
        r#"(import "wasi_snapshot_preview1" "clock_time_get" (func $c (param i32 i64 i32) (result i32)))"#,
        "(call $c (i32.const 1) (i64.const 0) (i32.const 32))",
    );
    for (name, class, wasm) in [
        ("fd_write", "compared", write),
        ("clock_time_get", "replicated", clock),
    ] {
        let (wall, _, single) = compare(&wasm, &["calls".into()], pairs);
        let per = single.as_secs_f64() * 1e6 / f64::from(CALLS);
        let pair = per * wall;
        println!(
            "| {name} | {class} | {per:.2} | {pair:.2} | {:.2} |",
            pair - per
        );
        csv.push_str(&format!(
            "{name},{:.1},{wall:.4},\n",
            single.as_secs_f64() * 1e3
        ));
    }
    if let Some(path) = flag("--csv") {
        mvvm_contract::file::atomic_write(std::path::Path::new(&path), csv.as_bytes())
            .expect("write the CSV");
    }
}

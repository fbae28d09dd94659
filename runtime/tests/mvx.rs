//! Multi-variant execution: agreeing pairs print what a single run prints, and a follower that
//! differs is caught before the differing call is done, whatever it differs in.

use mvvm_aot::variant::{self, Variant};
use mvvm_contract::status::DIVERGED;
use mvvm_contract::{Policy, Target};
use mvvm_runtime::mvx::{self, Follower, MvxOutcome, Policy as Lockstep};
use mvvm_runtime::{Isa, Outcome};
use mvvm_tests::tools::{build_aot, stderr};
use mvvm_tests::{all_guests, contents, guests_dir, program, Guest};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The `mvvm` binary of this package.
const MVVM: &str = env!("CARGO_BIN_EXE_mvvm");

/// Runs `guest` natively with a follower under `policy` (the same module on `isa`, or the
/// `variant` of it), and checks that the pair prints and exits exactly as a single native run
/// does.
fn agreeing_pair_of(guest: &Guest, policy: Lockstep, isa: Isa, variant: Option<&Variant>) {
    let wasm = guest.wasm();
    let checkpointable = Policy::default_counter();
    let master = program(&wasm, &checkpointable, Isa::Native);
    let follower_wasm = match variant {
        None => wasm.clone(),
        Some(v) => variant::make(&wasm, v).unwrap_or_else(|e| panic!("{}: {e}", guest.name)),
    };
    let follower = Follower {
        program: Arc::new(program(&follower_wasm, &checkpointable, isa)),
        name: format!("follower 1 ({isa:?}, {variant:?})"),
    };
    let single_dir = tempfile::tempdir().expect("tempdir");
    let (cfg, single_out, single_err) = guest.config(Some(single_dir.path()));
    let single = master.run(&cfg, Default::default()).expect("single run");
    let Outcome::Exited(single_status) = single.outcome else {
        panic!("{}: the single run checkpointed", guest.name)
    };
    let pair_dir = tempfile::tempdir().expect("tempdir");
    let (cfg, out, err) = guest.config(Some(pair_dir.path()));
    let run = mvx::run(&master, mvx::Followers::local(vec![follower]), &cfg, policy)
        .unwrap_or_else(|e| panic!("{}: {e}", guest.name));
    match run.outcome {
        MvxOutcome::Exited(status) => assert_eq!(status, single_status, "{}", guest.name),
        MvxOutcome::Diverged(d) => panic!("{} under {policy:?} diverged:\n{d}", guest.name),
    }
    assert_eq!(
        contents(&out),
        contents(&single_out),
        "{}: stdout",
        guest.name
    );
    assert_eq!(contents(&out), guest.expected(), "{}: stdout", guest.name);
    assert_eq!(
        contents(&err),
        contents(&single_err),
        "{}: stderr",
        guest.name
    );
    assert!(
        run.events > 0 || guest.lang == "wat",
        "{}: no events",
        guest.name
    );
}

/// [`agreeing_pair_of`] with a pulley64 follower of the same module.
fn agreeing_pair(guest: &Guest, policy: Lockstep) {
    agreeing_pair_of(guest, policy, Isa::Pulley64, None)
}

#[test]
fn diversified_followers_agree_with_the_master_on_every_guest() {
    let mut heaps_moved = Vec::new();
    for (seed, guest) in all_guests().iter().enumerate() {
        let mut v = Variant {
            shift_stack: 0,
            shift_data: 4096 * (seed as u32 + 1),
            diversify: Some(seed as u64 + 1),
        };
        // A program that never calls malloc (every WAT guest, some C ones) has no heap to move.
        match variant::make(&guest.wasm(), &v) {
            Ok(_) => heaps_moved.push(guest.name),
            Err(variant::VariantError::NoStackPointer | variant::VariantError::NoHeapBase) => {
                v.shift_data = 0
            }
            Err(e) => panic!("{}: {e}", guest.name),
        }
        agreeing_pair_of(guest, Lockstep::OutputLockstep, Isa::Native, Some(&v));
    }
    for name in ["sqlite_main", "lua_main", "fileio"] {
        assert!(
            heaps_moved.contains(&name),
            "{name}'s heap was not moved: {heaps_moved:?}"
        );
    }
}

#[test]
fn agreeing_pairs_print_what_a_single_run_prints() {
    for guest in all_guests() {
        agreeing_pair(&guest, Lockstep::OutputLockstep);
    }
}

#[test]
fn every_policy_agrees_on_an_agreeing_pair() {
    for guest in all_guests().iter().filter(|g| !g.big && g.lang == "c") {
        agreeing_pair(guest, Lockstep::Lockstep);
        agreeing_pair(guest, Lockstep::Loose);
    }
}

/// `writes.aot` and `writes_diverge.aot` (the same with another 10th line) in `dir`.
fn writes_pair(dir: &Path) -> (PathBuf, PathBuf) {
    let targets = [Target::host().expect("a supported host"), Target::Pulley64];
    let mut built = Vec::new();
    for name in ["writes", "writes_diverge"] {
        let aot = dir.join(format!("{name}.aot"));
        let wasm = guests_dir().join(format!("{name}.wasm"));
        build_aot(&wasm, &Policy::default_counter(), &targets, &aot);
        built.push(aot);
    }
    (built[0].clone(), built[1].clone())
}

/// The first `n` lines of `writes`' output.
fn first_lines(n: usize) -> String {
    let expected = String::from_utf8(
        all_guests()
            .iter()
            .find(|g| g.name == "writes")
            .expect("writes is a guest")
            .expected(),
    )
    .expect("text");
    expected.split_inclusive('\n').take(n).collect()
}

#[test]
fn a_follower_differing_at_its_tenth_write_stops_the_pair_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (writes, diverge) = writes_pair(dir.path());
    for (policy, isa) in [("output-lockstep", "pulley64"), ("lockstep", "native")] {
        let o = Command::new(MVVM)
            .args(["mvx", "--policy", policy, "--follower"])
            .arg(format!("{}@{isa}", diverge.display()))
            .arg(&writes)
            .output()
            .expect("spawn");
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(i32::from(DIVERGED)), "{policy}: {e}");
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            first_lines(9),
            "{policy}"
        );
        for needle in [
            "diverged from the master at event 10",
            "argument 1 of fd_write (the bytes of its iovecs)",
            "first difference at byte 9",
            "|line 10: ",
            "master's wasm stack",
            "follower's wasm stack",
            "__original_main",
        ] {
            assert!(
                e.contains(needle),
                "{policy}: {needle:?} missing from:\n{e}"
            );
        }
        assert!(!e.contains("panicked"), "{e}");
    }
}

#[test]
fn a_loose_pair_reports_the_divergence_late() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (writes, diverge) = writes_pair(dir.path());
    let o = Command::new(MVVM)
        .args(["mvx", "--policy", "loose", "--follower"])
        .arg(&diverge)
        .arg(&writes)
        .output()
        .expect("spawn");
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(i32::from(DIVERGED)), "{e}");
    assert!(e.contains("at event 10"), "{e}");
    // The master did not wait: it may have written past the 9th line, never less.
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with(&first_lines(9)), "{out}");
}

/// Builds `wat` (a module that writes through `fd_write`) into an `.aot` for this host.
fn wat_aot(dir: &Path, name: &str, wat: &str) -> PathBuf {
    let src = dir.join(format!("{name}.wat"));
    std::fs::write(&src, wat).expect("write the wat");
    let aot = dir.join(format!("{name}.aot"));
    let targets = [Target::host().expect("a supported host"), Target::Pulley64];
    build_aot(&src, &Policy::default_counter(), &targets, &aot);
    aot
}

/// A module that writes "one\n" and then runs `then`.
fn writer(then: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "one\n")
  (data (i32.const 0) "\10\00\00\00\04\00\00\00")
  (func $write_one (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (call $write_one) {then}))"#
    )
}

/// `mvvm mvx --follower FOLLOWER MASTER`, bounded in time.
fn mvx_pair(master: &Path, follower: &Path) -> std::process::Output {
    let started = Instant::now();
    let o = Command::new(MVVM)
        .args(["mvx", "--follower"])
        .arg(follower)
        .arg(master)
        .output()
        .expect("spawn");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the pair took too long"
    );
    o
}

#[test]
fn a_follower_that_traps_or_ends_early_or_exits_otherwise_is_a_divergence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = wat_aot(dir.path(), "master", &writer("(call $write_one)"));
    let cases = [
        ("traps", writer("(unreachable)"), "trap", "one\n"),
        ("ends", writer(""), "call", "one\n"),
        // Both writes agree, so both are done; the exits do not.
        (
            "exits",
            writer("(call $write_one) (call $proc_exit (i32.const 7))"),
            "exit status",
            "one\none\n",
        ),
    ];
    for (name, wat, field, printed) in cases {
        let follower = wat_aot(dir.path(), name, &wat);
        let o = mvx_pair(&master, &follower);
        let e = stderr(&o);
        assert_eq!(o.status.code(), Some(i32::from(DIVERGED)), "{name}: {e}");
        assert!(e.contains(&format!("field:    {field}")), "{name}: {e}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), printed, "{name}");
    }
}

#[test]
fn a_master_computing_forever_is_stopped_when_its_follower_diverges() {
    let dir = tempfile::tempdir().expect("tempdir");
    // The master reads the clock (a call it need not wait for) and loops for ever; its follower
    // writes instead, so only the follower's doorbell can stop the master's loop.
    let master = wat_aot(
        dir.path(),
        "spinner",
        r#"(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func $spin (loop $forever (br $forever)))
  (func (export "_start") (drop (call $clock (i32.const 0) (i64.const 0) (i32.const 64))) (call $spin)))"#,
    );
    let follower = wat_aot(dir.path(), "writer", &writer(""));
    let o = mvx_pair(&master, &follower);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(i32::from(DIVERGED)), "{e}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), "", "{e}");
    assert!(e.contains("at event 1;"), "{e}");
    assert!(e.contains("master:   clock_time_get"), "{e}");
    assert!(e.contains("follower: fd_write"), "{e}");
    // The master's stack is where the doorbell stopped it: in its loop.
    assert!(e.contains("spin"), "{e}");
}

#[test]
fn a_bad_follower_flag_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (writes, _) = writes_pair(dir.path());
    let o = Command::new(MVVM)
        .args(["mvx", "--follower"])
        .arg(format!("{}@sparc", writes.display()))
        .arg(&writes)
        .output()
        .expect("spawn");
    mvvm_tests::tools::assert_clear_error(&o, mvvm_contract::status::BAD_INPUT, "unknown ISA");
    let o = Command::new(MVVM)
        .args(["mvx"])
        .arg(&writes)
        .output()
        .expect("spawn");
    assert_eq!(
        o.status.code(),
        Some(i32::from(mvvm_contract::status::BAD_INPUT))
    );
    assert!(stderr(&o).contains("--follower"), "{}", stderr(&o));
}

/// A module that polls one clock subscription whose userdata is `userdata`, then writes "ok\n"
/// if the event it gets back carries that userdata, and "no\n" otherwise.
fn poller(userdata: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\n")
  (data (i32.const 20) "no\n")
  (func (export "_start")
    (i64.store (i32.const 256) (i64.const {userdata}))
    (i32.store8 (i32.const 264) (i32.const 0))
    (i32.store (i32.const 272) (i32.const 1))
    (i64.store (i32.const 280) (i64.const 1))
    (drop (call $poll (i32.const 256) (i32.const 512) (i32.const 1) (i32.const 600)))
    (i32.store (i32.const 0)
      (select (i32.const 16) (i32.const 20)
        (i64.eq (i64.load (i32.const 512)) (i64.const {userdata}))))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#
    )
}

#[test]
fn poll_userdata_is_each_variants_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = wat_aot(dir.path(), "poll-master", &poller(0x1000));
    let follower = wat_aot(dir.path(), "poll-follower", &poller(0x2000));
    let o = mvx_pair(&master, &follower);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "ok\n");
}

/// A module that sleeps 50 ms (`poll_oneoff`) and then writes `tick NN` 40 times; at tick
/// `boom` it writes `BOOM` instead (never, for a `boom` of 1000). The variants differ in that
/// constant alone, so that one's snapshot fits the other.
fn ticker(boom: u32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 72) "\00")
  (data (i32.const 80) "\01\00\00\00")
  (data (i32.const 88) "\80\f0\fa\02\00\00\00\00")
  (data (i32.const 256) "tick 00\n")
  (data (i32.const 512) "BOOM\n")
  (func $sleep (drop (call $poll (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160))))
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (local $i i32)
    (loop $l
      (call $sleep)
      (i32.store8 (i32.const 261) (i32.add (i32.const 48) (i32.div_u (local.get $i) (i32.const 10))))
      (i32.store8 (i32.const 262) (i32.add (i32.const 48) (i32.rem_u (local.get $i) (i32.const 10))))
      (if (i32.eq (local.get $i) (i32.const {boom}))
        (then (call $write (i32.const 512) (i32.const 5)))
        (else (call $write (i32.const 256) (i32.const 8))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 40))))))"#
    )
}

/// `tick 00` to `tick NN-1`.
fn ticks(n: u32) -> String {
    (0..n).map(|i| format!("tick {i:02}\n")).collect()
}

/// The event after which the late followers joined, from the master's `-v` line.
fn joined_after(stderr: &str) -> u64 {
    mvvm_tests::tools::number_after(stderr, "joined after event ")
}

#[test]
fn a_follower_joining_after_one_second_agrees_and_catches_a_divergence_planted_after_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = wat_aot(dir.path(), "ticker", &ticker(1000));
    let planted = wat_aot(dir.path(), "ticker_boom", &ticker(30));
    let late_pair = |follower: String| {
        let started = Instant::now();
        let o = Command::new(MVVM)
            .args(["-v", "mvx", "--join-after", "1", "--follower", &follower])
            .arg(&master)
            .output()
            .expect("spawn");
        assert!(started.elapsed() < Duration::from_secs(60), "too long");
        o
    };

    let o = late_pair(format!("{}@pulley64", master.display()));
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), ticks(40));
    // Each tick is two events (the sleep, the write); after 1 s of 50 ms ticks the master is
    // well past its start and well before its end.
    let joined = joined_after(&e);
    assert!(
        (10..70).contains(&joined),
        "joined after event {joined}: {e}"
    );
    assert!(
        e.contains("81 events, on which every follower agreed"),
        "{e}"
    );

    // The variant writes BOOM at tick 30 (event 62), after it joined: held back, reported.
    let o = late_pair(planted.display().to_string());
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(i32::from(DIVERGED)), "{e}");
    assert!(joined_after(&e) < 62, "{e}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), ticks(30));
    for needle in [
        "at event 62",
        "argument 1 of fd_write",
        "|tick 30.|",
        "|BOOM.|",
    ] {
        assert!(e.contains(needle), "{needle:?} missing from:\n{e}");
    }
}

#[test]
fn late_followers_of_a_master_without_sites_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = dir.path().join("ticker.wat");
    std::fs::write(&src, ticker(1000)).expect("write");
    let plain = dir.path().join("plain.aot");
    let targets = [Target::host().expect("a supported host")];
    build_aot(&src, &Policy::plain(), &targets, &plain);
    let o = Command::new(MVVM)
        .args(["mvx", "--join-after", "1", "--follower"])
        .arg(&plain)
        .arg(&plain)
        .output()
        .expect("spawn");
    mvvm_tests::tools::assert_clear_error(&o, 126, "no checkpoint sites");
    assert!(o.stdout.is_empty(), "the master must not have run");
}

#[test]
fn a_follower_stuck_in_a_loop_is_overdue_after_the_follower_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let master = wat_aot(dir.path(), "twice", &writer("(call $write_one)"));
    let stuck = wat_aot(dir.path(), "stuck", &writer("(loop $l (br $l))"));
    let started = Instant::now();
    let o = Command::new(MVVM)
        .args(["mvx", "--follower-timeout", "500ms", "--follower"])
        .arg(&stuck)
        .arg(&master)
        .output()
        .expect("spawn");
    assert!(started.elapsed() < Duration::from_secs(30), "not bounded");
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(i32::from(DIVERGED)), "{e}");
    // The first write agreed; the second waited for a follower that never came.
    assert_eq!(String::from_utf8_lossy(&o.stdout), "one\n");
    for needle in [
        "at event 2",
        "field:    follower",
        "did not reach event 2 within 500ms",
    ] {
        assert!(e.contains(needle), "{needle:?} missing from:\n{e}");
    }
}

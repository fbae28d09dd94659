//! Checkpoint at many sites, resume (natively or on pulley64), and require the concatenated output
//! and the exit status to equal an uninterrupted run, byte for byte. This is what proves the
//! transform's unwind and rewind: a frame saved or reloaded wrongly changes what the program prints.

use mvvm_runtime::{Isa, Outcome, Program, Trigger};
use mvvm_tests::{all_guests, contents, dense_policy, program, Guest};

/// Polls a full run makes with every site polling.
fn count_polls(p: &Program, guest: &Guest) -> u64 {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, _, _) = guest.config(Some(dir.path()));
    let run = p.run(&cfg, Trigger::Poll(u64::MAX)).expect("trace run");
    assert!(matches!(run.outcome, Outcome::Exited(_)));
    run.polls
}

/// Checkpoints at poll `n`, resumes on `resume_on`, and checks the result.
fn roundtrip(guest: &Guest, n: u64, first: &Program, resume_on: &Program, chain: Option<u64>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, out, err) = guest.config(Some(dir.path()));
    let run = first
        .run(&cfg, Trigger::Poll(n))
        .unwrap_or_else(|e| panic!("{} checkpoint at poll {n}: {e}", guest.name));
    let Outcome::Checkpointed(snap) = run.outcome else {
        panic!("{}: no checkpoint at poll {n}", guest.name);
    };
    assert!(
        !snap.frames.is_empty(),
        "{}: a checkpoint has at least one frame",
        guest.name
    );
    let trigger = chain.map(Trigger::Poll).unwrap_or_default();
    let mut resumed = resume_on
        .resume(&cfg, &snap, trigger)
        .unwrap_or_else(|e| panic!("{} resume after poll {n}: {e}", guest.name));
    if let Outcome::Checkpointed(snap2) = resumed.outcome {
        // A second checkpoint, taken in a resumed run, resumed on the first program's ISA.
        resumed = first
            .resume(&cfg, &snap2, Trigger::None)
            .unwrap_or_else(|e| panic!("{} second resume: {e}", guest.name));
    } else {
        assert!(
            chain.is_none(),
            "{}: the chained trigger did not fire",
            guest.name
        );
    }
    let Outcome::Exited(code) = resumed.outcome else {
        panic!("{}: checkpointed again without a trigger", guest.name);
    };
    assert_eq!(
        String::from_utf8_lossy(&contents(&out)),
        String::from_utf8_lossy(&guest.expected()),
        "{}: output after a checkpoint at poll {n} (stderr: {})",
        guest.name,
        String::from_utf8_lossy(&contents(&err))
    );
    assert_eq!(
        code, guest.exit,
        "{}: exit status after a checkpoint at poll {n}",
        guest.name
    );
    if guest.name == "fileio" {
        // Open files, offsets and descriptor numbers came back: the files it leaves are right.
        let got = std::fs::read(dir.path().join("out.txt")).expect("fileio leaves out.txt");
        let want = std::fs::read(mvvm_tests::guests_src().join("c/fileio.out.txt.expected"))
            .expect("fileio.out.txt.expected");
        assert_eq!(got, want, "fileio: out.txt after a checkpoint at poll {n}");
    }
}

/// Up to `k` poll numbers spread over `1..=total`, always including the first and the last.
fn spread(total: u64, k: u64) -> Vec<u64> {
    let mut v: Vec<u64> = (0..k)
        .map(|i| 1 + i * (total - 1) / (k - 1).max(1))
        .collect();
    v.dedup();
    v
}

#[test]
fn checkpoint_anywhere_resume_on_both_isas() {
    let policy = dense_policy();
    let mut checked = 0;
    for guest in all_guests() {
        let wasm = guest.wasm();
        let native = program(&wasm, &policy, Isa::Native);
        let pulley = program(&wasm, &policy, Isa::Pulley64);
        let total = count_polls(&native, &guest);
        assert!(total > 0, "{} has no site polls", guest.name);
        let points = spread(total, if guest.big { 5 } else { 12 });
        for (i, n) in points.iter().enumerate() {
            let target = if i % 2 == 0 { &pulley } else { &native };
            // Every third point also checkpoints the resumed run again, a few polls later (the
            // resumed run counts on from the snapshot's `n` polls, up to `total`).
            let chain = (i % 3 == 1 && total - n > 3).then_some(n + 3);
            roundtrip(&guest, *n, &native, target, chain);
            checked += 1;
        }
        // And a checkpoint taken on pulley64, resumed natively.
        roundtrip(&guest, total / 2 + 1, &pulley, &native, None);
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} round trips");
}

#[test]
fn function_entry_trigger_by_index_and_name() {
    let guest = all_guests()
        .into_iter()
        .find(|g| g.name == "p")
        .expect("p guest");
    let wasm = guest.wasm();
    let native = program(&wasm, &dense_policy(), Isa::Native);
    let pulley = program(&wasm, &dense_policy(), Isa::Pulley64);
    let by_name = native.info.resolve_function("mix").expect("p.wat has $mix");
    assert_eq!(by_name, 3, "$mix is function 3 (two imports come first)");
    assert_eq!(native.info.resolve_function("3"), Some(3));
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, out, _) = guest.config(Some(dir.path()));
    let run = native
        .run(&cfg, Trigger::FuncEntry { func: 3, nth: 7 })
        .expect("run");
    let Outcome::Checkpointed(snap) = run.outcome else {
        panic!("no checkpoint at the 7th entry of function 3")
    };
    let top = &snap.frames[0];
    assert_eq!(top.func, 3, "the innermost frame is function 3");
    assert_eq!(
        native.info.sites[top.site as usize].kind,
        mvvm_contract::SiteKind::Entry
    );
    let before = contents(&out);
    assert!(
        before.len() < guest.expected().len(),
        "stopped before the end"
    );
    let resumed = pulley
        .resume(&cfg, &snap, Trigger::None)
        .expect("resume on pulley64");
    assert!(matches!(resumed.outcome, Outcome::Exited(0)));
    assert_eq!(contents(&out), guest.expected());
}

#[test]
fn resume_refuses_a_snapshot_of_another_module() {
    let guests = all_guests();
    let p = program(&guests[0].wasm(), &dense_policy(), Isa::Native);
    let other = program(&guests[1].wasm(), &dense_policy(), Isa::Native);
    let (cfg, _, _) = guests[0].config(None);
    let Outcome::Checkpointed(snap) = p.run(&cfg, Trigger::Poll(5)).expect("run").outcome else {
        panic!("no checkpoint")
    };
    let err = other
        .resume(&cfg, &snap, Trigger::None)
        .expect_err("must refuse");
    assert!(err.to_string().contains("another module"), "{err}");
}

/// Runs export `main` of `wasm` (dense policy) natively with every site polling, then checkpoints
/// at each poll from `from` on and resumes alternately on pulley64 (even polls) and natively: each
/// resume must return what the uninterrupted run did. `each(n, checkpoint, end)` sees every
/// checkpoint and the state the resumed run ended in. Returns the results and the poll count.
fn resume_from_every_poll(
    wasm: &[u8],
    from: u64,
    mut each: impl FnMut(u64, &mvvm_checkpoint::Snapshot, &mvvm_checkpoint::Snapshot),
) -> (Vec<mvvm_runtime::CallResult>, u64) {
    use mvvm_runtime::{ProbeEnd, RunConfig};
    let names = vec!["main".to_string()];
    let cfg = RunConfig::default();
    let native = program(wasm, &dense_policy(), Isa::Native);
    let pulley = program(wasm, &dense_policy(), Isa::Pulley64);
    let ProbeEnd::Done {
        results: want,
        polls,
        ..
    } = native
        .probe(&cfg, &names, 0, None, Trigger::Poll(u64::MAX))
        .expect("trace")
    else {
        panic!("no trigger")
    };
    for n in from..=polls {
        let ProbeEnd::Checkpointed { index, snap, .. } = native
            .probe(&cfg, &names, 0, None, Trigger::Poll(n))
            .expect("checkpoint")
        else {
            panic!("no checkpoint at poll {n}")
        };
        let target = if n % 2 == 0 { &pulley } else { &native };
        let ProbeEnd::Done { results, state, .. } = target
            .probe(&cfg, &names, index, Some(&snap), Trigger::None)
            .expect("resume")
        else {
            panic!("checkpointed again")
        };
        assert_eq!(results, want, "after a checkpoint at poll {n}");
        each(n, &snap, &state);
    }
    (want, polls)
}

/// A callee that replaces its own table slot, then is checkpointed: the rewind must still enter
/// it, not whatever the slot holds now (the host lends the slot for the rewind and restores it).
#[test]
fn rewind_through_a_table_the_callee_changed() {
    use mvvm_runtime::CallResult;
    let wat = r#"
      (module
        (type $t (func (result i32)))
        (table 2 funcref)
        (elem (i32.const 0) $f $g)
        (global $n (mut i32) (i32.const 0))
        (func $f (type $t) (local $i i32)
          ;; replace ourselves with $g, then loop (a site) and return a value only $f computes
          (table.set (i32.const 0) (ref.func $g))
          (loop $l
            (global.set $n (i32.add (global.get $n) (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 50))))
          (i32.add (global.get $n) (i32.const 1000)))
        (func $g (type $t) (i32.const -1))
        (func (export "main") (result i32)
          (call_indirect (type $t) (i32.const 0))))"#;
    let wasm = wat::parse_str(wat).expect("wat");
    let (want, polls) = resume_from_every_poll(&wasm, 2, |n, _, end| {
        // The lent slot was given back: slot 0 holds $g (function 1) as the program left it.
        assert_eq!(
            end.tables[0].elements[0],
            mvvm_checkpoint::Value::FuncRef(Some(1)),
            "poll {n}"
        );
    });
    assert_eq!(
        want,
        vec![CallResult::Values(vec![mvvm_checkpoint::Value::I32(
            1000 + 1225
        )])]
    );
    assert!(polls > 2, "the loop polls: {polls}");
}

/// Two functions tail-call each other through a table, with different types: `$even` takes one
/// parameter, `$odd` two. Stopped in `$odd`, the rewind of `main`'s `call_indirect` (of `$even`'s
/// type) can reach `$odd`'s frame only through `$even`'s indirect tail call, so the rule that an
/// indirect tail call may lead to any address-taken function of its type must hold both where
/// the host picks the table slot (`rewind_index`) and where `$even` picks its tail call
/// (`restore_frame`). Stopped in `$even`, the slot the call used leads there directly.
#[test]
fn rewind_through_indirect_tail_calls_between_types() {
    use mvvm_runtime::CallResult;
    let wat = r#"
      (module
        (type $one (func (param i32) (result i32)))
        (type $two (func (param i32 i32) (result i32)))
        (table 2 funcref)
        (elem (i32.const 0) $even $odd)
        (func $even (type $one)
          (if (i32.eqz (local.get 0)) (then (return (i32.const 1))))
          (return_call_indirect (type $two)
            (i32.sub (local.get 0) (i32.const 1)) (i32.const 5) (i32.const 1)))
        (func $odd (type $two)
          (if (i32.eqz (local.get 0)) (then (return (i32.add (local.get 1) (i32.const -5)))))
          (return_call_indirect (type $one) (i32.sub (local.get 0) (i32.const 1)) (i32.const 0)))
        (func (export "main") (result i32)
          (i32.add
            (i32.mul (call_indirect (type $one) (i32.const 7) (i32.const 0)) (i32.const 10))
            (call_indirect (type $one) (i32.const 10) (i32.const 0)))))"#;
    let wasm = wat::parse_str(wat).expect("wat");
    let (even, odd) = (0, 1);
    let mut stopped_in = [0usize; 2];
    let (results, polls) = resume_from_every_poll(&wasm, 1, |n, snap, _| {
        if snap.frames.len() == 2 {
            let innermost = snap.frames[0].func;
            assert!(
                innermost == even || innermost == odd,
                "poll {n}: {innermost}"
            );
            stopped_in[innermost as usize] += 1;
        }
    });
    // even(7) = 0 and even(10) = 1.
    assert_eq!(
        results,
        vec![CallResult::Values(vec![mvvm_checkpoint::Value::I32(1)])]
    );
    assert!(polls > 18, "every entry polls: {polls}");
    assert!(
        stopped_in[even as usize] >= 5 && stopped_in[odd as usize] >= 5,
        "checkpoints in $even and in $odd: {stopped_in:?}"
    );
}

/// A function that tail-calls itself through a table, then a leaf of its own type, also through
/// the table: rewinding the leaf's frame must re-issue the hop to the leaf, not enter the function
/// again (which also reaches the leaf) and go round forever.
#[test]
fn rewind_through_a_table_that_holds_the_tail_caller_itself() {
    use mvvm_runtime::CallResult;
    let wat = r#"
      (module
        (type $t (func (param i32) (result i32)))
        (table 2 funcref)
        (elem (i32.const 0) $down $leaf)
        (func $down (type $t)
          (return_call_indirect (type $t)
            (i32.sub (local.get 0) (i32.const 1))
            (i32.eqz (i32.eqz (i32.eqz (local.get 0))))))
        (func $leaf (type $t) (local $i i32)
          (loop $l
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 4))))
          (i32.add (local.get 0) (local.get $i)))
        (func (export "main") (result i32)
          (call_indirect (type $t) (i32.const 6) (i32.const 0))))"#;
    let wasm = wat::parse_str(wat).expect("wat");
    let leaf = 1;
    let mut in_leaf = 0;
    let (results, _) = resume_from_every_poll(&wasm, 1, |_, snap, _| {
        in_leaf += usize::from(snap.frames.first().is_some_and(|f| f.func == leaf));
    });
    // down(6) → … → down(0) → leaf(-1): -1 + 4.
    assert_eq!(
        results,
        vec![CallResult::Values(vec![mvvm_checkpoint::Value::I32(3)])]
    );
    assert!(
        in_leaf >= 3,
        "checkpoints inside the leaf's loop: {in_leaf}"
    );
}

/// A function whose only result is an `i32` (or `i64`) returns a marker value when it unwinds, and
/// its callers read the state only after a call that returned the marker. Here the marker values
/// are also ordinary results: they must go on as values, and a checkpoint at any poll (inside the
/// callees' loops, so that the call sites unwind and rewind) must resume to the same result.
#[test]
fn results_equal_to_the_unwinding_marker_are_ordinary_values() {
    use mvvm_runtime::CallResult;
    let wat = r#"
      (module
        (func $echo (param i32) (result i32) (local $i i32)
          (loop $l
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))
          (local.get 0))
        (func $echo64 (param i64) (result i64) (local $i i32)
          (loop $l
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (i32.const 3))))
          (local.get 0))
        (func (export "main") (result i32)
          (i32.add
            (i32.xor (call $echo (i32.const 0x6d76766d)) (call $echo (i32.const 7)))
            (i32.wrap_i64
              (i64.xor (call $echo64 (i64.const 0x6d76766d6d76766d)) (i64.const 5))))))"#;
    let wasm = wat::parse_str(wat).expect("wat");
    let mut through_calls = 0;
    let (results, polls) = resume_from_every_poll(&wasm, 1, |_, snap, _| {
        // Stopped in a callee: main's frame was saved at the call site.
        through_calls += usize::from(snap.frames.len() == 2);
    });
    assert_eq!(
        results,
        vec![CallResult::Values(vec![mvvm_checkpoint::Value::I32(
            (0x6d76_766d_i32 ^ 7).wrapping_add((0x6d76_766d_6d76_766d_i64 ^ 5) as i32),
        )])],
        "uninterrupted"
    );
    assert!(polls >= 9, "three loops of three iterations poll: {polls}");
    assert!(
        through_calls >= 9,
        "{through_calls} checkpoints unwound through a call site"
    );
}

/// A loop that provably ends within a few iterations has no site: inside a counted loop, only the
/// outer header polls, and a checkpoint at any of its polls resumes to the same result.
#[test]
fn a_bounded_loop_inside_a_counted_loop_has_no_site_and_resumes() {
    use mvvm_runtime::CallResult;
    let wat = r#"
      (module
        (func (export "main") (result i32) (local $i i32) (local $j i32) (local $acc i32)
          (loop $outer
            (local.set $j (i32.const 8))
            (loop $inner
              (local.set $acc (i32.add (i32.mul (local.get $acc) (i32.const 31)) (local.get $j)))
              (br_if $inner (local.tee $j (i32.sub (local.get $j) (i32.const 1)))))
            (br_if $outer
              (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 5))))
          (local.get $acc)))"#;
    let wasm = wat::parse_str(wat).expect("wat");
    let mut acc = 0i32;
    for _ in 0..5 {
        for j in (1..=8).rev() {
            acc = acc.wrapping_mul(31).wrapping_add(j);
        }
    }
    let mut stops = 0;
    let (results, polls) = resume_from_every_poll(&wasm, 1, |_, _, _| stops += 1);
    assert_eq!(
        results,
        vec![CallResult::Values(vec![mvvm_checkpoint::Value::I32(acc)])]
    );
    // The entry of main, then $outer's header on each of its 5 iterations; $inner's 40 none.
    assert_eq!(polls, 6, "polls");
    assert_eq!(stops, 6);
}

/// A doorbell rung from outside is noticed at the next host poll (with the counter policy, within
/// 2^K loop iterations), and the checkpoint it takes resumes like any other.
#[test]
fn the_doorbell_checkpoints_at_the_next_poll() {
    let guest = all_guests()
        .into_iter()
        .find(|g| g.name == "loops")
        .expect("loops guest");
    let policy = mvvm_contract::Policy {
        threshold_bits: 8,
        ..mvvm_contract::Policy::default_counter()
    };
    let native = program(&guest.wasm(), &policy, Isa::Native);
    let pulley = program(&guest.wasm(), &policy, Isa::Pulley64);
    let (cfg, out, _) = guest.config(None);
    cfg.doorbell.ring();
    let run = native.run(&cfg, Trigger::None).expect("run");
    assert_eq!(run.polls, 1, "the bell is answered at the first poll");
    let Outcome::Checkpointed(snap) = run.outcome else {
        panic!("the doorbell took no checkpoint")
    };
    assert!(!cfg.doorbell.is_rung(), "the bell is consumed");
    let resumed = pulley.resume(&cfg, &snap, Trigger::None).expect("resume");
    assert!(matches!(resumed.outcome, Outcome::Exited(0)));
    assert_eq!(contents(&out), guest.expected());
}

/// A loop whose body calls a function: its header is uncounted, and its function (a call with no
/// site of its own) never reaches the host unless the countdown is zero.
const CALLING_LOOP: &str = r#"
(module
  (memory (export "memory") 1)
  (func $step (param i32) (result i32) (i32.add (local.get 0) (i32.const 3)))
  (func (export "_start")
    (local $i i64) (local $x i32)
    (loop $l
      (local.set $x (call $step (local.get $x)))
      (br_if $l (i64.lt_u (local.tee $i (i64.add (local.get $i) (i64.const 1)))
                          (i64.const 4000000000))))
    (i32.store (i32.const 0) (local.get $x))))
"#;

/// A doorbell rung from another thread while the guest runs stops it at its next site: the ring
/// zeroes the countdown in the guest's memory itself (no engine epoch is involved), so even a loop
/// that only tests the countdown, never counting, sees it. Without that the loop runs its four
/// billion iterations to the end, and the run exits instead of checkpointing.
#[test]
fn a_doorbell_rung_while_the_guest_runs_stops_a_loop_with_calls() {
    use mvvm_contract::SiteKind;
    let wasm = mvvm_aot::transform::parse_input(CALLING_LOOP.as_bytes()).expect("wat");
    let p = program(
        &wasm,
        &mvvm_contract::Policy::default_counter(),
        Isa::Native,
    );
    let loops: Vec<&SiteKind> = p
        .info
        .sites
        .iter()
        .map(|s| &s.kind)
        .filter(|k| matches!(k, SiteKind::LoopHeader { .. }))
        .collect();
    assert_eq!(loops, [&SiteKind::LoopHeader { counted: false }]);
    let cfg = mvvm_runtime::RunConfig::default();
    let bell = cfg.doorbell.clone();
    let ringer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        bell.ring();
    });
    let run = p.run(&cfg, Trigger::None).expect("run");
    ringer.join().expect("ringer");
    let Outcome::Checkpointed(snap) = run.outcome else {
        panic!("the ring did not stop the loop: {:?}", run.outcome)
    };
    assert_eq!(run.polls, 1, "only the ring made a site poll");
    assert!(!cfg.doorbell.is_rung(), "the bell is consumed");
    let [frame] = snap.frames.as_slice() else {
        panic!("one frame expected, got {:?}", snap.frames)
    };
    assert_eq!(p.info.sites[frame.site as usize].kind, *loops[0]);
    let i = frame
        .slots
        .iter()
        .find_map(|v| match v {
            mvvm_checkpoint::Value::I64(i) => Some(*i),
            _ => None,
        })
        .expect("the loop counter is in the frame");
    assert!(
        i > 0 && i < 4_000_000_000,
        "stopped mid-way, at iteration {i}"
    );
}

/// A damaged frame (a site outside its function, or more slots than the function has) is refused
/// with a clear error instead of resuming into garbage.
#[test]
fn resume_refuses_damaged_frames() {
    let guest = all_guests()
        .into_iter()
        .find(|g| g.name == "p")
        .expect("p guest");
    let p = program(&guest.wasm(), &dense_policy(), Isa::Native);
    let (cfg, _, _) = guest.config(None);
    let Outcome::Checkpointed(snap) = p.run(&cfg, Trigger::Poll(40)).expect("run").outcome else {
        panic!("no checkpoint")
    };
    let outer = snap.frames.len() - 1;
    let foreign_site = p
        .info
        .sites
        .iter()
        .position(|s| s.func != snap.frames[outer].func)
        .expect("a site of another function") as u32;
    let mut bad_site = (*snap).clone();
    bad_site.frames[outer].site = foreign_site;
    let err = p
        .resume(&cfg, &bad_site, Trigger::None)
        .expect_err("must refuse");
    assert!(
        err.to_string().contains("names a site of function"),
        "{err}"
    );

    let mut extra_slot = (*snap).clone();
    extra_slot.frames[outer]
        .slots
        .push(mvvm_checkpoint::Value::I32(0));
    let err = p
        .resume(&cfg, &extra_slot, Trigger::None)
        .expect_err("must refuse");
    assert!(
        err.to_string().contains("values where the site saves"),
        "{err}"
    );
}

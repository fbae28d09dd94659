//! Transform-level properties that do not need a runtime.

use mvvm_aot::transform::{instrument, TransformError};
use mvvm_contract::container::{AotFile, ContainerError};
use mvvm_contract::{EngineOptions, Target};
use mvvm_contract::{Policy, SiteKind};
use std::borrow::Cow;

const MODULE: &str = r#"
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func $leaf (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func $looper (param i32) (result i32)
    (local i32)
    (loop $l
      local.get 1 call $leaf local.set 1
      local.get 1 local.get 0 i32.lt_s br_if $l)
    local.get 1)
  (func $main (export "_start") i32.const 10 call $looper global.set $g i32.const 0 call $exit)
  (start $leaf_start)
  (func $leaf_start))
"#;

fn wasm() -> Vec<u8> {
    wat::parse_str(MODULE).expect("wat")
}

/// The index of export `name` (which must exist) and the operators of every function body.
fn export_and_bodies<'a>(wasm: &'a [u8], name: &str) -> (u32, Vec<Vec<wasmparser::Operator<'a>>>) {
    let mut index = None;
    let mut bodies = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        match payload.expect("parse") {
            wasmparser::Payload::ExportSection(r) => {
                for e in r {
                    let e = e.expect("export");
                    if e.name == name {
                        index = Some(e.index);
                    }
                }
            }
            wasmparser::Payload::CodeSectionEntry(b) => bodies.push(
                b.get_operators_reader()
                    .expect("operators")
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .expect("operator"),
            ),
            _ => {}
        }
    }
    let index = index.unwrap_or_else(|| panic!("{name} is exported"));
    (index, bodies)
}

/// The index of the poll stub among a module's functions: `bodies` are its function bodies, after
/// `imported` imported functions, and `poll` is the index of the `poll` host import. Asserts that
/// exactly one function calls `poll`, and that its body is `local.get 0; call $poll`.
fn poll_stub(bodies: &[Vec<wasmparser::Operator<'_>>], imported: u32, poll: u32) -> u32 {
    use wasmparser::Operator as O;
    let calls_poll = |b: &Vec<O<'_>>| {
        b.iter()
            .any(|o| matches!(o, O::Call { function_index } if *function_index == poll))
    };
    let stubs: Vec<usize> = (0..bodies.len())
        .filter(|i| calls_poll(&bodies[*i]))
        .collect();
    let [stub] = stubs.as_slice() else {
        panic!("one function calls poll directly, not {stubs:?}")
    };
    assert!(
        matches!(
            bodies[*stub].as_slice(),
            [O::LocalGet { local_index: 0 }, O::Call { .. }, O::End]
        ),
        "{:?}",
        bodies[*stub]
    );
    imported + *stub as u32
}

#[test]
fn only_functions_that_reach_a_site_are_instrumented() {
    let out = instrument(&wasm(), &Policy::default_counter()).expect("instrument");
    let f = |name: &str| {
        out.info
            .functions
            .iter()
            .find(|f| f.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert!(
        !f("leaf").instrumented,
        "a leaf without loops or calls cannot reach a site"
    );
    assert!(!f("leaf_start").instrumented);
    assert!(
        f("looper").instrumented,
        "a loop is a site under the counter policy"
    );
    assert!(
        f("main").instrumented,
        "calls an import and a function that may unwind"
    );
    let kinds: Vec<&SiteKind> = out.info.sites.iter().map(|s| &s.kind).collect();
    assert!(
        kinds.contains(&&SiteKind::LoopHeader { counted: false }),
        "$looper's loop calls $leaf: it tests the shared countdown"
    );
    assert!(kinds
        .iter()
        .any(|k| matches!(k, SiteKind::Import { func: 0 })));
    assert!(kinds.iter().any(|k| matches!(k, SiteKind::Call { .. })));
    assert!(
        !kinds.contains(&&SiteKind::Entry),
        "no entry sites without --enable-checkpoint"
    );
    wasmparser::Validator::new_with_features(mvvm_aot::transform::supported_features())
        .validate_all(&out.wasm)
        .expect("instrumented module validates");
}

#[test]
fn entry_policy_instruments_everything_and_exports_state() {
    let p = Policy {
        function_entry: true,
        ..Policy::default_counter()
    };
    let out = instrument(&wasm(), &p).expect("instrument");
    assert!(out
        .info
        .functions
        .iter()
        .filter(|f| !f.imported)
        .all(|f| f.instrumented));
    assert!(out.info.has_start);
    let mut exports = Vec::new();
    let mut start_section = false;
    for payload in wasmparser::Parser::new(0).parse_all(&out.wasm) {
        match payload.expect("parse") {
            wasmparser::Payload::ExportSection(r) => {
                exports.extend(r.into_iter().map(|e| e.expect("export").name.to_string()))
            }
            wasmparser::Payload::StartSection { .. } => start_section = true,
            _ => {}
        }
    }
    assert!(
        !start_section,
        "the start section is removed so a restore never runs it twice"
    );
    for name in [
        "mvvm:state",
        "mvvm:countdown",
        "mvvm:start",
        "mvvm:global:0",
        "mvvm:memory:0",
    ] {
        assert!(
            exports.iter().any(|e| e == name),
            "missing export {name}: {exports:?}"
        );
    }
}

#[test]
fn functions_run_without_rewind_dispatches_and_rewind_in_their_clones() {
    let out = instrument(&wasm(), &Policy::default_counter()).expect("instrument");
    let (rsite, bodies) = export_and_bodies(&out.wasm, "mvvm:rsite");
    // A dispatch is `global.get $rsite; if` (the handler also reads $rsite, for save_frame).
    let tests_rsite = |ops: &[wasmparser::Operator<'_>]| {
        ops.windows(2).any(|w| {
            matches!(w[0], wasmparser::Operator::GlobalGet { global_index } if global_index == rsite)
                && matches!(w[1], wasmparser::Operator::If { .. })
        })
    };
    // leaf, looper, main, leaf_start, then the clones of looper and main, then the poll stub.
    assert_eq!(
        bodies.len(),
        7,
        "two instrumented functions, two clones, a stub"
    );
    // 1 import + 4 host imports: the clones are functions 9 and 10.
    for (body, clone) in [(1usize, 9u32), (2, 10)] {
        assert!(
            !tests_rsite(&bodies[body]),
            "function {body} must not contain the rewind dispatches"
        );
        assert!(
            bodies[body].iter().any(
                |o| matches!(o, wasmparser::Operator::ReturnCall { function_index } if *function_index == clone)
            ),
            "function {body} hands a rewind over to its clone {clone}"
        );
        assert!(
            tests_rsite(&bodies[clone as usize - 5]),
            "clone {clone} dispatches"
        );
    }
    // $looper's loop header keeps both of its locals alive: two i32 slots, in globals of their own;
    // nothing is alive after $main's call.
    let site = |f: fn(&SiteKind) -> bool| {
        out.info
            .sites
            .iter()
            .find(|s| f(&s.kind))
            .expect("site")
            .frame
            .clone()
    };
    let header = site(|k| matches!(k, SiteKind::LoopHeader { .. }));
    assert_eq!(header.len(), 2, "{header:?}");
    assert_ne!(header[0], header[1]);
    for n in &header {
        assert_eq!(
            out.info.slots[*n as usize],
            mvvm_contract::abi::SlotType::I32
        );
    }
    assert!(site(|k| matches!(k, SiteKind::Call { .. })).is_empty());
    wasmparser::Validator::new_with_features(mvvm_aot::transform::supported_features())
        .validate_all(&out.wasm)
        .expect("instrumented module validates");
}

/// Under the counter policy a loop without calls counts down in a local of its own, set from the
/// shared countdown on entry; a loop with a call tests the shared countdown. A poll passes its site
/// plus the countdown, so that the site id is not a constant; a counted loop's poll keeps no local
/// live across its host call. The shared countdown is the word at
/// offset 0 of a one-page memory of its own (so that the runtime can zero it from any thread).
#[test]
fn call_free_loops_count_in_one_local_per_nest_and_loops_with_calls_test_the_shared_countdown() {
    let w = wat::parse_str(
        r#"(module
  (func $leaf (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func $f (export "_start") (local i32 i32)
    (loop $calls local.get 0 call $leaf local.tee 0 i32.const 9 i32.lt_s br_if $calls)
    (loop $a (loop $b local.get 1 i32.const 1 i32.add local.tee 1 i32.const 5 i32.lt_s br_if $b)
      local.get 0 i32.const 1 i32.add local.tee 0 i32.const 20 i32.lt_s br_if $a)))"#,
    )
    .expect("wat");
    let out = instrument(&w, &Policy::default_counter()).expect("instrument");
    let kinds: Vec<&SiteKind> = out.info.sites.iter().map(|s| &s.kind).collect();
    // ($leaf cannot unwind, so its call is no site.)
    assert_eq!(
        kinds,
        [
            &SiteKind::LoopHeader { counted: false },
            &SiteKind::LoopHeader { counted: true },
            &SiteKind::LoopHeader { counted: true },
        ]
    );
    let (countdown, bodies) = export_and_bodies(&out.wasm, "mvvm:countdown");
    // The countdown memory: the one memory of this module, exported as such, never growing.
    let mut memories = Vec::new();
    let mut kind = None;
    for payload in wasmparser::Parser::new(0).parse_all(&out.wasm) {
        match payload.expect("parse") {
            wasmparser::Payload::MemorySection(r) => {
                memories.extend(r.into_iter().map(|m| m.expect("memory")))
            }
            wasmparser::Payload::ExportSection(r) => {
                for e in r {
                    let e = e.expect("export");
                    if e.name == "mvvm:countdown" {
                        kind = Some(e.kind);
                    }
                }
            }
            _ => {}
        }
    }
    assert_eq!(kind, Some(wasmparser::ExternalKind::Memory));
    assert_eq!(countdown, 0);
    assert_eq!(
        (memories.len(), memories[0].initial, memories[0].maximum),
        (1, 1, Some(1))
    );
    use wasmparser::Operator as O;
    let reads = |w: &[O<'_>]| {
        matches!(w, [O::I32Const { value: 0 }, O::I32Load { memarg }]
            if memarg.memory == countdown && memarg.offset == 0)
    };
    let f = &bodies[1];
    // 4 host imports; $leaf, $f, $f's clone, the stub.
    let stub = poll_stub(&bodies, 4, 0);
    assert_eq!(stub, 7);
    // The nest of counted loops $a/$b counts in one local, set from the countdown right before
    // the outer loop; both headers count it down.
    let inits: Vec<u32> = f
        .windows(4)
        .filter_map(|w| match w {
            [_, _, O::LocalSet { local_index }, O::Loop { .. }] if reads(&w[..2]) => {
                Some(*local_index)
            }
            _ => None,
        })
        .collect();
    assert_eq!(inits.len(), 1, "one countdown local for the nest");
    let decrements = f
        .windows(4)
        .filter(|w| {
            matches!(w, [O::LocalGet { local_index: a }, O::I32Const { value: 1 }, O::I32Sub,
                O::LocalTee { local_index: b }] if *a == inits[0] && *b == inits[0])
        })
        .count();
    assert_eq!(decrements, 2, "both headers of the nest count in its local");
    // Every poll passes `site + countdown` to the stub; none passes a bare constant.
    let polls: Vec<usize> = f
        .iter()
        .enumerate()
        .filter(|(_, o)| matches!(o, O::Call { function_index } if *function_index == stub))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(polls.len(), 3, "three loop headers poll");
    let mut counted_polls = 0;
    for i in polls {
        // A counted loop's poll puts the live locals in their slot globals right before the call
        // and takes them back right after, then reloads the loop's countdown: nothing is live
        // across the call. The loop with a call leaves its locals alone.
        let mut k = i;
        let mut saved = Vec::new();
        while let [O::LocalGet { local_index }, O::GlobalSet { global_index }] = &f[k - 2..k] {
            saved.push((*local_index, *global_index));
            k -= 2;
        }
        assert!(
            reads(&f[k - 4..k - 2]) && matches!(&f[k - 2..k], [O::I32Const { .. }, O::I32Add]),
            "{:?}",
            &f[k - 4..k]
        );
        let mut j = i + 1;
        let mut reloaded = Vec::new();
        while let [O::GlobalGet { global_index }, O::LocalSet { local_index }] = &f[j..j + 2] {
            reloaded.push((*local_index, *global_index));
            j += 2;
        }
        saved.sort_unstable();
        reloaded.sort_unstable();
        assert_eq!(
            saved, reloaded,
            "what goes out before the call comes back after it"
        );
        if saved.is_empty() {
            continue;
        }
        counted_polls += 1;
        let locals: Vec<u32> = saved.iter().map(|(l, _)| *l).collect();
        assert_eq!(
            locals,
            [0, 1],
            "both locals are live at either counted loop"
        );
        assert!(
            reads(&f[j..j + 2])
                && matches!(&f[j + 2], O::LocalSet { local_index } if inits.contains(local_index)),
            "the countdown is reloaded after the call: {:?}",
            &f[j..j + 3]
        );
    }
    assert_eq!(counted_polls, 2);
    // The loop with a call tests the countdown itself (hinted taken: skip the poll).
    assert!(
        f.windows(5).any(|w| reads(&w[..2])
            && matches!(
                &w[2..],
                [O::I32Const { value: 0 }, O::I32GtS, O::BrIf { .. }]
            )),
        "no test of the shared countdown"
    );
}

/// A loop without calls or nested loops whose counter starts at a constant right before it and
/// only changes in the `br_if` at its end is bounded: its header is no site. In a counted nest it
/// charges the nest's countdown its whole count on entry. Any doubt gives the loop its site.
#[test]
fn loops_with_a_known_small_trip_count_have_no_site_and_charge_their_nest() {
    let w = wat::parse_str(
        r#"(module
  (memory 1)
  (func $f (export "_start") (local $i i32) (local $j i32) (local $k i32)
    ;; bounded, 10 iterations: counts down to zero
    i32.const 10 local.set $i
    (loop $a local.get $j i32.const 3 i32.add local.set $j
      local.get $i i32.const 1 i32.sub local.tee $i br_if $a)
    ;; bounded, 16 iterations: steps of 4 up to 64, other code in between
    i32.const 0 local.set $i
    local.get $j i32.const 1 i32.add local.set $j
    (loop $b local.get $i local.get $j i32.store
      local.get $i i32.const 4 i32.add local.tee $i i32.const 64 i32.ne br_if $b)
    ;; 2000 iterations: too many
    i32.const 0 local.set $i
    (loop $c local.get $i i32.const 1 i32.add local.tee $i i32.const 2000 i32.lt_u br_if $c)
    ;; the counter is written twice per iteration
    i32.const 0 local.set $i
    (loop $d local.get $i i32.const 1 i32.add local.set $i
      local.get $i i32.const 1 i32.add local.tee $i i32.const 10 i32.lt_u br_if $d)
    ;; the counter does not start at a constant
    i32.const 0 i32.load local.set $k
    (loop $e local.get $k i32.const 1 i32.add local.tee $k i32.const 10 i32.lt_s br_if $e)
    ;; a branch before the loop: its start value depends on the path
    i32.const 0 local.set $i
    (block $x (br_if $x (local.get $j)) i32.const 5 local.set $i)
    (loop $g local.get $i i32.const 1 i32.add local.tee $i i32.const 10 i32.lt_s br_if $g)
    ;; a second branch back to the header
    i32.const 0 local.set $i
    (loop $h (br_if $h (i32.eqz (i32.load (i32.const 8))))
      local.get $i i32.const 1 i32.add local.tee $i i32.const 10 i32.lt_s br_if $h)
    ;; an unbounded loop around a bounded one
    (loop $outer
      i32.const 8 local.set $i
      (loop $inner local.get $i i32.const 1 i32.sub local.tee $i br_if $inner)
      local.get $k i32.const 4 i32.add local.tee $k i32.load br_if $outer)))"#,
    )
    .expect("wat");
    let out = instrument(&w, &Policy::default_counter()).expect("instrument");
    let kinds: Vec<&SiteKind> = out.info.sites.iter().map(|s| &s.kind).collect();
    // $c, $d, $e, $g, $h, $outer; not $a, $b, $inner.
    assert_eq!(kinds, [&SiteKind::LoopHeader { counted: true }; 6]);

    use wasmparser::Operator as O;
    let (_, bodies) = export_and_bodies(&out.wasm, "_start");
    // 4 host imports; $f, its clone, the stub.
    let f = &bodies[0];
    // $outer's countdown local: the one its header decrements.
    let loops: Vec<usize> = (0..f.len())
        .filter(|i| matches!(f[*i], O::Loop { .. }))
        .collect();
    assert_eq!(loops.len(), 9);
    let (outer, inner) = (loops[7], loops[8]);
    let counter = f[outer..inner]
        .windows(4)
        .find_map(|w| match w {
            [O::LocalGet { local_index: a }, O::I32Const { value: 1 }, O::I32Sub, O::LocalTee { local_index: b }]
                if a == b => Some(*a),
            _ => None,
        })
        .expect("$outer's header counts down");
    // Right before $inner, after its own counter's start: the charge of 8 iterations.
    assert!(
        matches!(
            &f[inner - 4..inner],
            [O::LocalGet { local_index: a }, O::I32Const { value: 8 }, O::I32Sub, O::LocalSet { local_index: b }]
                if *a == counter && *b == counter
        ),
        "{:?}",
        &f[inner - 6..inner]
    );
    // Loops outside any counted nest charge nothing: one charge in the function.
    let charges = f
        .windows(3)
        .filter(|w| matches!(w, [O::LocalGet { local_index }, O::I32Const { .. }, O::I32Sub] if *local_index == counter))
        .count();
    assert_eq!(charges, 2, "$outer's decrement and $inner's charge");

    // The loop policy keeps a site at every header.
    let every = Policy {
        loop_header: true,
        counter_loop: false,
        ..Policy::default_counter()
    };
    let out = instrument(&w, &every).expect("instrument");
    assert_eq!(out.info.sites.len(), 9);
}

/// The routing of a counted loop's frame around its poll call is for the code that runs: a
/// function with more than 100 locals keeps its locals in place (there the reloads cost more than
/// the call), and a rewind clone, which runs once per restore, stays without it.
#[test]
fn counted_polls_route_their_frame_only_in_functions_of_at_most_100_locals_and_not_in_clones() {
    // The same counted loop in a function with 2 locals and in one with 101.
    let looping = |locals: usize| {
        format!(
            "(func (export \"f{locals}\") (local{}) \
               (loop $l local.get 0 i32.const 1 i32.add local.tee 0 \
                 local.get {last} i32.add local.set {last} \
                 local.get 0 i32.const 1000 i32.lt_s br_if $l))",
            " i32".repeat(locals),
            last = locals - 1
        )
    };
    let w = wat::parse_str(format!("(module {} {})", looping(2), looping(101))).expect("wat");
    let out = instrument(&w, &Policy::default_counter()).expect("instrument");
    let (_, bodies) = export_and_bodies(&out.wasm, "f2");
    use wasmparser::Operator as O;
    // The two functions, then their clones, then the poll stub.
    assert_eq!(bodies.len(), 5);
    let stub = poll_stub(&bodies, 4, 0);
    // Polls whose argument is followed by `local.get; global.set`.
    let routed = |f: &[O<'_>]| {
        (2..f.len())
            .filter(|i| {
                matches!(
                    &f[i - 2..=*i],
                    [
                        O::LocalGet { .. },
                        O::GlobalSet { .. },
                        O::Call { function_index }
                    ] if *function_index == stub
                )
            })
            .count()
    };
    let polls = |f: &[O<'_>]| {
        f.iter()
            .filter(|o| matches!(o, O::Call { function_index } if *function_index == stub))
            .count()
    };
    assert!(
        bodies[..4].iter().all(|b| polls(b) == 1),
        "one poll in each body"
    );
    let counts: Vec<usize> = bodies[..4].iter().map(|b| routed(b)).collect();
    assert_eq!(counts, [1, 0, 0, 0], "routed: small function only");
}

/// Each unwind check saves its own site's frame in its cold branch and returns (no handler shared
/// behind a branch); a call whose only result is an `i32` or `i64` tests that result against the
/// value an unwinding function returns before it reads the state; and no instrumented body keeps
/// a `block` that no branch targets.
#[test]
fn unwind_checks_save_their_frame_in_place_and_test_a_callee_result_before_the_state() {
    let w = wat::parse_str(
        r#"(module
  (func $i32 (param i32) (result i32) (local i32)
    (loop $l local.get 1 i32.const 1 i32.add local.tee 1 local.get 0 i32.lt_s br_if $l)
    local.get 1)
  (func $i64 (param i64) (result i64)
    (loop $l local.get 0 i64.const 1 i64.sub local.tee 0 i64.const 0 i64.gt_s br_if $l)
    local.get 0)
  (func $void (param i32)
    (loop $l local.get 0 i32.const 1 i32.sub local.tee 0 br_if $l))
  (func (export "_start") (local i32)
    (block $out (block $never
      i32.const 5 call $i32 local.set 0
      i64.const 5 call $i64 drop
      local.get 0 call $void
      br $out))))"#,
    )
    .expect("wat");
    let out = instrument(&w, &Policy::default_counter()).expect("instrument");
    wasmparser::Validator::new_with_features(mvvm_aot::transform::supported_features())
        .validate_all(&out.wasm)
        .expect("instrumented module validates");
    let (state, bodies) = export_and_bodies(&out.wasm, "mvvm:state");
    use wasmparser::Operator as O;
    const SAVE_FRAME: u32 = 1;
    // 4 host imports, then $i32 $i64 $void _start, their 4 clones, the stub.
    assert_eq!(bodies.len(), 9);
    let main = &bodies[3];
    // The three calls, each followed by its check.
    let after = |callee: u32| {
        let at = main
            .iter()
            .position(|o| matches!(o, O::Call { function_index } if *function_index == callee))
            .unwrap_or_else(|| panic!("call {callee}"));
        &main[at + 1..]
    };
    assert!(
        matches!(after(4), [O::LocalTee { local_index: a }, O::LocalGet { local_index: b },
            O::I32Const { value: 0x6d76_766d }, O::I32Eq, O::If { .. },
            O::GlobalGet { global_index }, O::If { .. }, ..] if a == b && *global_index == state),
        "{:?}",
        &after(4)[..7]
    );
    assert!(
        matches!(after(5), [O::LocalTee { local_index: a }, O::LocalGet { local_index: b },
            O::I64Const { value: 0x6d76_766d_6d76_766d }, O::I64Eq, O::If { .. },
            O::GlobalGet { global_index }, O::If { .. }, ..] if a == b && *global_index == state),
        "{:?}",
        &after(5)[..7]
    );
    assert!(
        matches!(after(6), [O::GlobalGet { global_index }, O::If { .. }, ..] if *global_index == state),
        "{:?}",
        &after(6)[..2]
    );
    for (i, body) in bodies[..8].iter().enumerate() {
        // Every `global.get $state; if` leads straight to putting the frame in its slot globals
        // and leaving, with the site, the block around the body, after which one exit records the
        // frame and returns.
        let mut checks = 0;
        // Constructs open before each instruction (the function's own block not counted).
        let mut depth = Vec::with_capacity(body.len());
        let mut open = 0usize;
        for o in body.iter() {
            depth.push(open);
            match o {
                O::Block { .. } | O::Loop { .. } | O::If { .. } => open += 1,
                O::End => open = open.saturating_sub(1),
                _ => {}
            }
        }
        for (k, w) in body.windows(2).enumerate() {
            if !matches!(w, [O::GlobalGet { global_index }, O::If { .. }] if *global_index == state)
            {
                continue;
            }
            checks += 1;
            let arm = &body[k + 2..];
            let end = arm
                .iter()
                .position(|o| matches!(o, O::End))
                .expect("the check ends");
            let arm = &arm[..end];
            let (saves, leave) = arm.split_at(arm.len().saturating_sub(2));
            assert!(
                saves.chunks(2).all(|c| matches!(
                    c,
                    [O::LocalGet { .. }, O::GlobalSet { global_index }] if *global_index > state
                )),
                "body {i}: the cold branch saves the frame in place: {arm:?}"
            );
            let br_at = k + 2 + arm.len() - 1;
            assert!(
                matches!(leave, [O::I32Const { value }, O::Br { relative_depth }]
                    if *value > 0 && *relative_depth as usize + 1 == depth[br_at]),
                "body {i}: the cold branch leaves the outermost block with its site: {arm:?}"
            );
        }
        assert!(checks > 0, "body {i} has unwind checks");
        // The exit: `local.set $t; i32.const func; local.get $t; call $save_frame`, then the
        // function's placeholder results: the marker for $i32 (and its clone) and $i64.
        let exit = body
            .iter()
            .rposition(|o| {
                matches!(
                    o,
                    O::Call {
                        function_index: SAVE_FRAME
                    }
                )
            })
            .unwrap_or_else(|| panic!("body {i}: no save_frame"));
        assert!(
            matches!(&body[exit - 3..exit], [O::LocalSet { local_index: a },
                O::I32Const { value: f }, O::LocalGet { local_index: b }]
                if a == b && *f == (i % 4) as i32),
            "body {i}: {:?}",
            &body[exit - 3..exit]
        );
        let results = &body[exit + 1..];
        let want_results = match i % 4 {
            0 => matches!(results, [O::I32Const { value: 0x6d76_766d }, O::End]),
            1 => matches!(
                results,
                [
                    O::I64Const {
                        value: 0x6d76_766d_6d76_766d
                    },
                    O::End
                ]
            ),
            _ => matches!(results, [O::End]),
        };
        assert!(want_results, "body {i}: {results:?}");
        assert_eq!(
            body.iter()
                .filter(|o| matches!(
                    o,
                    O::Call {
                        function_index: SAVE_FRAME
                    }
                ))
                .count(),
            1,
            "body {i}: one exit records frames"
        );
        // Every `block` is the target of some branch.
        let mut open: Vec<(bool, bool)> = Vec::new(); // (is a block, targeted)
        let mark = |open: &mut Vec<(bool, bool)>, d: u32| {
            let n = open.len();
            if let Some(k) = n.checked_sub(1 + d as usize) {
                open[k].1 = true;
            }
        };
        for o in body {
            match o {
                O::Block { .. } => open.push((true, false)),
                O::Loop { .. } | O::If { .. } => open.push((false, false)),
                O::End => {
                    if let Some((block, targeted)) = open.pop() {
                        assert!(!block || targeted, "body {i}: a block no branch targets");
                    }
                }
                O::Br { relative_depth } | O::BrIf { relative_depth } => {
                    mark(&mut open, *relative_depth)
                }
                O::BrTable { targets } => {
                    for t in targets.targets().chain([Ok(targets.default())]) {
                        mark(&mut open, t.expect("target"));
                    }
                }
                _ => {}
            }
        }
    }
    // The original `$never` block, which nothing targets, is gone; `$out` stays, inside the block
    // the handlers leave.
    let blocks = main.iter().filter(|o| matches!(o, O::Block { .. })).count();
    assert_eq!(blocks, 2, "{main:?}");
}

/// Around a counted loop's poll, a local that holds a constant offset from another value fixed at
/// the function's entry (`$sp + 16`) stays in place: Cranelift recomputes it where it is used.
/// The other live locals go through their slot globals. Both are in the frame.
#[test]
fn counted_polls_leave_locals_derived_at_entry_in_place() {
    let w = wat::parse_str(
        r#"(module
  (memory 1)
  (global $sp (mut i32) (i32.const 1024))
  (func (export "f") (local i32 i32 i32)
    global.get $sp i32.const 64 i32.sub local.tee 0 global.set $sp
    local.get 0 i32.const 16 i32.add local.set 1
    (loop $l
      local.get 1 local.get 2 i32.store
      local.get 2 i32.const 1 i32.add local.tee 2 i32.const 100 i32.lt_s br_if $l)))"#,
    )
    .expect("wat");
    let out = instrument(&w, &Policy::default_counter()).expect("instrument");
    let (_, bodies) = export_and_bodies(&out.wasm, "f");
    let stub = poll_stub(&bodies, 4, 0);
    use wasmparser::Operator as O;
    let f = &bodies[0];
    let call = f
        .iter()
        .position(|o| matches!(o, O::Call { function_index } if *function_index == stub))
        .expect("the poll");
    let mut routed = Vec::new();
    let mut k = call;
    while let [O::LocalGet { local_index }, O::GlobalSet { .. }] = &f[k - 2..k] {
        routed.push(*local_index);
        k -= 2;
    }
    assert_eq!(
        routed,
        [2],
        "only the loop's own local goes out around the call"
    );
    let [site] = out.info.sites.as_slice() else {
        panic!("one site: {:?}", out.info.sites)
    };
    assert_eq!(site.frame.len(), 2, "locals 1 and 2 are live at the loop");
}

/// The transform's slow paths carry branch hints (`metadata.code.branch_hint`), each on an `if` or
/// `br_if` of the function it names; the input's own hints are dropped.
#[test]
fn instrumentation_branches_carry_branch_hints() {
    let out = instrument(&wasm(), &Policy::default_counter()).expect("instrument");
    let mut hints: Vec<(u32, Vec<(u32, bool)>)> = Vec::new();
    // Each body: its function index and, for every `if` and `br_if`, the offset from the start of
    // the body and whether it is a `br_if`.
    let mut bodies: Vec<(u32, Vec<(u32, bool)>)> = Vec::new();
    let mut imported = 0;
    let mut sections = 0;
    // (function, offset) of every `br_if` that tests the shared countdown.
    let mut shared_tests: Vec<(u32, u32)> = Vec::new();
    // (function, offset) of every `if` that tests a callee's result against the unwinding marker.
    let mut marker_tests: Vec<(u32, u32)> = Vec::new();
    let (countdown, _) = export_and_bodies(&out.wasm, "mvvm:countdown");
    for payload in wasmparser::Parser::new(0).parse_all(&out.wasm) {
        match payload.expect("parse") {
            wasmparser::Payload::ImportSection(r) => {
                for i in r.into_imports() {
                    if matches!(i.expect("import").ty, wasmparser::TypeRef::Func(_)) {
                        imported += 1;
                    }
                }
            }
            wasmparser::Payload::CustomSection(c) => {
                if let wasmparser::KnownCustom::BranchHints(r) = c.as_known() {
                    sections += 1;
                    for f in r {
                        let f = f.expect("function hints");
                        let h = f
                            .hints
                            .into_iter()
                            .map(|h| {
                                let h = h.expect("hint");
                                (h.func_offset, h.taken)
                            })
                            .collect();
                        hints.push((f.func, h));
                    }
                }
            }
            wasmparser::Payload::CodeSectionEntry(b) => {
                let start = b.get_binary_reader().original_position();
                let index = imported + bodies.len() as u32;
                let ops: Vec<(wasmparser::Operator<'_>, usize)> = b
                    .get_operators_reader()
                    .expect("operators")
                    .into_iter_with_offsets()
                    .collect::<Result<_, _>>()
                    .expect("operator");
                let mut branches = Vec::new();
                for (k, (op, at)) in ops.iter().enumerate() {
                    let at = (at - start) as u32;
                    match op {
                        wasmparser::Operator::If { .. } => {
                            branches.push((at, false));
                            if k >= 3
                                && matches!(
                                    [&ops[k - 3].0, &ops[k - 2].0, &ops[k - 1].0],
                                    [
                                        wasmparser::Operator::LocalGet { .. },
                                        wasmparser::Operator::I32Const { value: 0x6d76_766d },
                                        wasmparser::Operator::I32Eq
                                    ]
                                )
                            {
                                marker_tests.push((index, at));
                            }
                        }
                        wasmparser::Operator::BrIf { .. } => {
                            branches.push((at, true));
                            // `i32.load $countdown; i32.const 0; i32.gt_s; br_if`: a test of
                            // the shared countdown.
                            if k >= 3
                                && matches!(
                                    [&ops[k - 3].0, &ops[k - 2].0, &ops[k - 1].0],
                                    [
                                        wasmparser::Operator::I32Load { memarg },
                                        wasmparser::Operator::I32Const { value: 0 },
                                        wasmparser::Operator::I32GtS
                                    ] if memarg.memory == countdown
                                )
                            {
                                shared_tests.push((index, at));
                            }
                        }
                        _ => {}
                    }
                }
                bodies.push((index, branches));
            }
            _ => {}
        }
    }
    assert_eq!(sections, 1);
    // $looper and $main, and their two clones.
    assert_eq!(hints.len(), 4, "{hints:?}");
    let mut taken = 0;
    for (func, hs) in &hints {
        let (_, branches) = bodies
            .iter()
            .find(|(i, _)| i == func)
            .unwrap_or_else(|| panic!("hint for function {func}, which has no body"));
        for (offset, t) in hs {
            let Some((_, br_if)) = branches.iter().find(|(at, _)| at == offset) else {
                panic!("hint at offset {offset} of function {func}, where no if or br_if starts");
            };
            // The taken ones are the countdown tests, which skip the poll.
            if *t {
                assert!(br_if, "a taken hint on an if");
                taken += 1;
            }
        }
        assert!(!hs.is_empty());
    }
    assert!(taken > 0, "the countdown tests are hinted taken");
    assert!(!shared_tests.is_empty());
    // $main's call of $looper (which returns an i32) tests the marker, hinted not taken.
    assert!(!marker_tests.is_empty());
    for (func, at) in &marker_tests {
        assert!(
            hints
                .iter()
                .any(|(f, hs)| f == func && hs.contains(&(*at, false))),
            "the marker test at {at} in function {func} is not hinted unlikely"
        );
    }
    for (func, at) in &shared_tests {
        assert!(
            hints
                .iter()
                .any(|(f, hs)| f == func && hs.contains(&(*at, true))),
            "the test of the shared countdown at {at} in function {func} is not hinted taken"
        );
    }

    // A module with hints of its own loses them: their offsets name the code before rewriting.
    let mut module = wasm_encoder::Module::new();
    let mut ty = wasm_encoder::TypeSection::new();
    ty.ty().function([], []);
    module.section(&ty);
    let mut fs = wasm_encoder::FunctionSection::new();
    fs.function(0);
    module.section(&fs);
    let mut own = wasm_encoder::BranchHints::new();
    own.function_hints(
        0,
        [wasm_encoder::BranchHint {
            branch_func_offset: 3,
            branch_hint_value: 1,
        }],
    );
    module.section(&own);
    let mut code = wasm_encoder::CodeSection::new();
    let mut body = wasm_encoder::Function::new([]);
    body.instructions()
        .i32_const(1)
        .if_(wasm_encoder::BlockType::Empty)
        .end()
        .end();
    code.function(&body);
    module.section(&code);
    let out = instrument(&module.finish(), &Policy::plain()).expect("plain");
    assert!(!out
        .wasm
        .windows(25)
        .any(|w| w == b"metadata.code.branch_hint"));
}

#[test]
fn plain_policy_changes_no_code() {
    let out = instrument(&wasm(), &Policy::plain()).expect("plain");
    assert!(out.info.sites.is_empty());
    assert!(out.info.functions.iter().all(|f| !f.instrumented));
}

#[test]
fn reserved_names_are_refused() {
    let w = wat::parse_str(r#"(module (func (export "mvvm:state")))"#).expect("wat");
    assert!(matches!(
        instrument(&w, &Policy::default_counter()),
        Err(TransformError::Reserved(_))
    ));
    let w = wat::parse_str(r#"(module (import "mvvm" "poll" (func (param i32))))"#).expect("wat");
    assert!(matches!(
        instrument(&w, &Policy::default_counter()),
        Err(TransformError::Reserved(_))
    ));
}

/// The test module, instrumented at the default policy, with a pulley64 artifact.
fn pulley_aot() -> AotFile<'static> {
    mvvm_aot::build::build(
        &wasm(),
        &Policy::default_counter(),
        &[Target::Pulley64],
        &EngineOptions::default(),
    )
    .expect("build")
}

#[test]
fn container_round_trips_and_rejects_damage() {
    let aot = pulley_aot();
    let bytes = aot.encode();
    let back = AotFile::decode("x.aot", &bytes).expect("decode");
    assert_eq!(back.module_hash, aot.module_hash);
    assert_eq!(back.info, aot.info);
    assert_eq!(back.artifacts.len(), 1);
    assert_eq!(back.wasm, aot.wasm);
    assert_eq!(back.artifacts[0].bytes, aot.artifacts[0].bytes);
    // Decoding copies neither the module nor the artifacts: they point into `bytes`.
    let within = |b: &[u8]| bytes.as_ptr_range().contains(&b.as_ptr());
    assert!(
        matches!(back.wasm, Cow::Borrowed(w) if within(w)),
        "module borrowed"
    );
    assert!(
        matches!(back.artifacts[0].bytes, Cow::Borrowed(a) if within(a)),
        "artifact borrowed"
    );
    assert_eq!(
        back.encode(),
        bytes,
        "a decoded file encodes to the same bytes"
    );
    assert!(matches!(
        AotFile::decode("x", &bytes[..30]),
        Err(ContainerError::Truncated(..))
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(
        matches!(AotFile::decode("x", &long), Err(ContainerError::Decode(..))),
        "trailing bytes are refused"
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        AotFile::decode("x", &bad),
        Err(ContainerError::Checksum(_))
    ));
}

/// bincode's `standard()` varint, as contract/FORMAT.md describes it.
fn varint(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xffff => [&[251u8][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xffff_ffff => [&[252u8][..], &(n as u32).to_le_bytes()].concat(),
        _ => [&[253u8][..], &n.to_le_bytes()].concat(),
    }
}

#[test]
fn container_byte_fields_are_a_length_and_the_raw_bytes() {
    // contract/FORMAT.md: a `Vec<u8>` is its varint length followed by the bytes themselves (the
    // encoder writes them in one piece, not element by element, but the bytes are the same).
    let aot = pulley_aot();
    let file = aot.encode();
    let body = &file[mvvm_contract::sealed::HEADER_LEN..];
    let mut expect = varint(aot.producer.len() as u64);
    expect.extend(aot.producer.as_bytes());
    expect.extend(aot.module_hash);
    expect.extend(varint(aot.wasm.len() as u64));
    expect.extend(aot.wasm.iter());
    assert!(aot.wasm.len() > 250, "a multi-byte length is exercised");
    assert_eq!(&body[..expect.len()], &expect[..], "producer, hash, wasm");
    // The artifact's bytes end the body (the last field of the last artifact).
    let art = &aot.artifacts[0].bytes;
    let mut tail = varint(art.len() as u64);
    tail.extend(art.iter());
    assert!(body.ends_with(&tail), "artifact bytes");
    assert_eq!(
        body[body.len() - tail.len() - 1],
        2,
        "the artifact's target (Pulley64 = 2) comes right before its bytes"
    );
}

#[test]
fn atomic_write_keeps_the_old_file_until_the_new_one_is_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("f");
    mvvm_contract::file::atomic_write(&p, b"old").expect("write");
    mvvm_contract::file::atomic_write(&p, b"new").expect("write");
    assert_eq!(std::fs::read(&p).expect("read"), b"new");
    let leftovers = std::fs::read_dir(dir.path()).expect("ls").count();
    assert_eq!(leftovers, 1, "no temporary files left behind");
}

//! The benchmark workloads print what they must at SCALE 1, uninstrumented, instrumented
//! (counter-loop K=16), with poll sites only, and through the Asyncify pipeline the `overhead`
//! benchmark measures: a benchmark of a wrong program, or of a broken baseline, measures nothing.

use mvvm_aot::transform::{instrument_as, Mode};
use mvvm_contract::{EngineOptions, Policy};
use mvvm_runtime::{Isa, Outcome, Program, Trigger};
use mvvm_tests::{bench_workloads, Workload};

fn run(w: &Workload, wasm: &[u8], info: mvvm_contract::ModuleInfo) -> (Vec<u8>, u64) {
    let p = Program::from_instrumented(wasm, info, Isa::Native, &EngineOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", w.name));
    let (cfg, out, err) = w.config(1);
    let r = p.run(&cfg, Trigger::None).expect("run");
    assert!(
        matches!(r.outcome, Outcome::Exited(0)),
        "{} ended with {:?}; stderr: {}",
        w.name,
        r.outcome,
        String::from_utf8_lossy(&err.contents())
    );
    (out.contents().to_vec(), r.polls)
}

fn check(w: &Workload, label: &str, out: &[u8]) {
    assert!(
        out == w.expected().as_slice(),
        "{} ({label}) printed\n{}\nexpected\n{}",
        w.name,
        String::from_utf8_lossy(out),
        String::from_utf8_lossy(&w.expected())
    );
}

#[test]
fn workloads_print_their_expected_output_in_every_variant() {
    let workloads = bench_workloads();
    assert!(
        workloads.len() >= 12,
        "the benchmark needs at least 12 workloads"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    for w in &workloads {
        let wasm = w.wasm();
        for (label, policy, mode) in [
            ("plain", Policy::plain(), Mode::Checkpoint),
            ("counter K=16", Policy::default_counter(), Mode::Checkpoint),
            ("polls only", Policy::default_counter(), Mode::PollsOnly),
        ] {
            let m = instrument_as(&wasm, &policy, mode).expect("instrument");
            let (out, polls) = run(w, &m.wasm, m.info);
            check(w, label, &out);
            // No trigger, no doorbell: no site may reach the host.
            assert_eq!(polls, 0, "{} ({label}) polled without a trigger", w.name);
        }
        let a = mvvm_bench::asyncify(&wasm, tmp.path()).unwrap_or_else(|e| panic!("{e}"));
        check(
            w,
            "wasm-opt -O2",
            &run(w, &a.baseline.wasm, a.baseline.info).0,
        );
        let asyncified = run(w, &a.asyncified.wasm, a.asyncified.info).0;
        check(w, "asyncify", &asyncified);
        // Asyncify really instrumented the module: its exports are there.
        let exports: Vec<String> = wasmparser::Parser::new(0)
            .parse_all(&a.asyncified.wasm)
            .filter_map(|p| match p {
                Ok(wasmparser::Payload::ExportSection(r)) => Some(
                    r.into_iter()
                        .filter_map(|e| e.ok().map(|e| e.name.to_string()))
                        .collect::<Vec<_>>(),
                ),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(
            exports.iter().any(|e| e == "asyncify_start_unwind"),
            "{}: wasm-opt --asyncify left no asyncify_start_unwind export",
            w.name
        );
    }
}

#[test]
fn polls_only_has_the_same_poll_sites_as_the_checkpoint_transform() {
    for w in bench_workloads().iter().take(3) {
        let wasm = w.wasm();
        let policy = Policy {
            function_entry: true,
            ..Policy::default_counter()
        };
        let full = instrument_as(&wasm, &policy, Mode::Checkpoint).expect("checkpoint");
        let polls = instrument_as(&wasm, &policy, Mode::PollsOnly).expect("polls only");
        let count = |info: &mvvm_contract::ModuleInfo| {
            let mut c = [0usize; 3];
            for s in &info.sites {
                match s.kind {
                    mvvm_contract::SiteKind::Entry => c[0] += 1,
                    mvvm_contract::SiteKind::LoopHeader { .. } => c[1] += 1,
                    mvvm_contract::SiteKind::Import { .. } => c[2] += 1,
                    _ => {}
                }
            }
            c
        };
        let (a, b) = (count(&full.info), count(&polls.info));
        assert!(a[0] > 0 && a[1] > 0 && a[2] > 0, "{}: {a:?}", w.name);
        // The checkpoint transform places no site in code the validator knows is unreachable;
        // polls-only places them everywhere. Entries are the same.
        assert_eq!(a[0], b[0], "{}: entry sites", w.name);
        assert!(b[1] >= a[1] && b[2] >= a[2], "{}: {a:?} vs {b:?}", w.name);
        assert!(
            !polls.info.sites.iter().any(|s| matches!(
                s.kind,
                mvvm_contract::SiteKind::Call { .. } | mvvm_contract::SiteKind::CallIndirect { .. }
            )),
            "polls-only has no call sites"
        );
    }
}

/// The latency benchmark's program stops at `stop` (found by its export) and, resumed from the
/// checkpoint, prints what an uninterrupted run prints: its memory came back intact.
#[test]
fn fill_checkpointed_at_stop_resumes_with_its_memory() {
    let (p, stop) = mvvm_bench::fill_program();
    let fill = Workload {
        name: "fill",
        bench_scale: 1,
    };
    let (cfg, out, _) = fill.config(1);
    let run = p
        .run(&cfg, Trigger::FuncEntry { func: stop, nth: 1 })
        .expect("run");
    let Outcome::Checkpointed(snap) = run.outcome else {
        panic!("fill was not checkpointed at stop: {:?}", run.outcome)
    };
    assert!(
        out.contents().starts_with(b"ready "),
        "stopped after `ready`"
    );
    let resumed = p.resume(&cfg, &snap, Trigger::None).expect("resume");
    assert!(matches!(resumed.outcome, Outcome::Exited(0)));
    let expected =
        std::fs::read(mvvm_tests::guests_src().join("bench/fill.expected")).expect("fill.expected");
    assert_eq!(out.contents().to_vec(), expected);
}

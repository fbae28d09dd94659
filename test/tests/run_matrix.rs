//! Every guest prints exactly its expected output, instrumented or plain, natively and on pulley64.

use mvvm_runtime::{Isa, Outcome, Trigger};
use mvvm_tests::{all_guests, contents, policies, program};

#[test]
fn every_guest_under_every_policy_on_both_isas() {
    let mut runs = 0;
    for guest in all_guests() {
        let wasm = guest.wasm();
        let expected = guest.expected();
        for (label, policy) in policies() {
            if guest.big && !matches!(label, "plain" | "entry+counter-loop K=4") {
                continue; // two policies suffice for the big programs; the others cover the rest
            }
            for isa in [Isa::Native, Isa::Pulley64] {
                let p = program(&wasm, &policy, isa);
                let dir = tempfile::tempdir().expect("tempdir");
                let (cfg, out, err) = guest.config(Some(dir.path()));
                let run = p
                    .run(&cfg, Trigger::None)
                    .unwrap_or_else(|e| panic!("{} [{label}] {isa:?}: {e}", guest.name));
                let code = match run.outcome {
                    Outcome::Exited(c) => c,
                    Outcome::Checkpointed(_) => {
                        panic!("{} checkpointed without a trigger", guest.name)
                    }
                };
                assert_eq!(
                    String::from_utf8_lossy(&contents(&out)),
                    String::from_utf8_lossy(&expected),
                    "{} [{label}] {isa:?}: stdout differs (stderr: {})",
                    guest.name,
                    String::from_utf8_lossy(&contents(&err))
                );
                assert_eq!(
                    code, guest.exit,
                    "{} [{label}] {isa:?}: exit status",
                    guest.name
                );
                if guest.name == "fileio" {
                    let got =
                        std::fs::read(dir.path().join("out.txt")).expect("fileio leaves out.txt");
                    let want =
                        std::fs::read(mvvm_tests::guests_src().join("c/fileio.out.txt.expected"))
                            .expect("fileio.out.txt.expected");
                    assert_eq!(got, want, "fileio [{label}] {isa:?}: out.txt differs");
                }
                runs += 1;
            }
        }
    }
    assert!(runs >= 15 * 2 * 2, "only {runs} runs");
}

/// `Program::code_parts` tells the rewind clones from the functions a program runs: a module
/// with one function that loops (a site), one that calls it (so it may unwind) and a leaf that
/// neither loops nor calls has two clones; the plain build has none; a module whose functions
/// are not laid out as the transform lays them out gets no split.
#[test]
fn code_parts_count_one_clone_per_instrumented_function() {
    use mvvm_aot::transform::instrument;
    use mvvm_contract::EngineOptions;
    use mvvm_contract::Policy;
    use mvvm_runtime::Program;
    let wasm = wat::parse_str(
        r#"(module
          (memory (export "memory") 1)
          (func $leaf (param i32) (result i32) local.get 0 i32.const 3 i32.mul)
          (func $spin (param i32) (result i32)
            (local $i i32)
            (loop $l
              local.get $i local.get 0 i32.add local.set $i
              local.get $i i32.const 1000000 i32.lt_u br_if $l)
            local.get $i)
          (func (export "_start")
            i32.const 5 call $leaf call $spin drop))"#,
    )
    .expect("wat");
    for isa in [Isa::Native, Isa::Pulley64] {
        let plain = program(&wasm, &Policy::plain(), isa);
        let p = plain.code_parts().expect("plain layout");
        assert_eq!((p.clones, p.clones_bytes), (0, 0), "{isa:?} plain");
        assert!(p.functions_bytes > 0, "{isa:?} plain: {p:?}");
        assert_eq!(
            p.functions_bytes + p.other_bytes,
            plain.code_size(),
            "{isa:?} plain"
        );

        let inst = program(&wasm, &Policy::default_counter(), isa);
        let instrumented: Vec<bool> = inst.info.functions.iter().map(|f| f.instrumented).collect();
        assert_eq!(
            instrumented,
            [false, true, true],
            "{isa:?}: $leaf stays as it is"
        );
        let c = inst.code_parts().expect("mvvm-aot layout");
        assert_eq!(c.clones, 2, "{isa:?}: {c:?}");
        assert!(
            c.clones_bytes > 0 && c.functions_bytes > 0,
            "{isa:?}: {c:?}"
        );
        assert!(
            c.other_bytes > 0,
            "{isa:?}: the poll stub is neither: {c:?}"
        );
        assert_eq!(
            c.functions_bytes + c.clones_bytes + c.other_bytes,
            inst.code_size(),
            "{isa:?}"
        );
        // The instrumented module with the plain module's site table: a clone and a stub more
        // than the table accounts for.
        let out = instrument(&wasm, &Policy::default_counter()).expect("instrument");
        let plain_info = plain.info.as_ref().clone();
        let mismatched =
            Program::from_instrumented(&out.wasm, plain_info, isa, &EngineOptions::default())
                .expect("compiles");
        assert_eq!(mismatched.code_parts(), None, "{isa:?}");
    }
}

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

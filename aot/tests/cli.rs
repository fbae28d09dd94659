//! `mvvm-aot` as a user runs it: the demo's build, and input it refuses.

use mvvm_contract::status::BAD_INPUT;
use mvvm_contract::{AotFile, SiteKind, Target};
use mvvm_tests::tools::{assert_clear_error, demo_wat, stderr};
use std::path::Path;
use std::process::{Command, Output};

/// The `mvvm-aot` binary of this package.
const MVVM_AOT: &str = env!("CARGO_BIN_EXE_mvvm-aot");

fn mvvm_aot(args: &[&str], out: &Path, input: &Path) -> Output {
    Command::new(MVVM_AOT)
        .args(args)
        .arg("-o")
        .arg(out)
        .arg(input)
        .output()
        .expect("spawn mvvm-aot")
}

#[test]
fn the_demo_build_has_three_targets_and_the_policy_asked_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aot = dir.path().join("p.aot");
    let wasm = dir.path().join("p.wasm");
    let o = mvvm_aot(
        &[
            "--enable-checkpoint",
            "--enable-counter-loop-checkpoint",
            "--threshold-bits",
            "4",
            "--emit-wasm",
            wasm.to_str().expect("utf-8 path"),
        ],
        &aot,
        &demo_wat(),
    );
    assert!(o.status.success(), "mvvm-aot: {}", stderr(&o));
    let file = AotFile::read(&aot).expect("a readable .aot");
    let targets: Vec<Target> = file.artifacts.iter().map(|a| a.target).collect();
    assert_eq!(targets, Target::ALL.to_vec());
    assert!(file.info.policy.function_entry && file.info.policy.counter_loop);
    assert_eq!(file.info.policy.threshold_bits, 4);
    assert!(file.info.sites.iter().any(|s| s.kind == SiteKind::Entry));
    assert_eq!(
        std::fs::read(&wasm).expect("--emit-wasm wrote the module"),
        file.wasm.as_ref(),
        "--emit-wasm writes the module the .aot holds"
    );
}

#[test]
fn refused_input_gets_one_line_and_no_output() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let out = d.join("x.aot");

    // Not wasm at all.
    std::fs::write(d.join("notwasm.wasm"), b"hello, I am a text file\xff\xfe").expect("write");
    let o = mvvm_aot(&[], &out, &d.join("notwasm.wasm"));
    assert_clear_error(&o, BAD_INPUT, "not a wasm binary");
    assert!(!out.exists(), "no output on failure");
    // Text that is not WAT, and WAT with a mistake: one line each, the second with its place.
    std::fs::write(d.join("prose.wat"), "hello, I am prose").expect("write");
    let o = mvvm_aot(&[], &out, &d.join("prose.wat"));
    assert_clear_error(&o, BAD_INPUT, "not WAT text");
    std::fs::write(
        d.join("typo.wat"),
        ";; a module\n(module\n  (func (i32.cont 1)))",
    )
    .expect("write");
    let o = mvvm_aot(&[], &out, &d.join("typo.wat"));
    assert_clear_error(&o, BAD_INPUT, "cannot parse WAT at 3:");
    // A file that is not there.
    let o = mvvm_aot(&[], &out, &d.join("missing.wasm"));
    assert_clear_error(&o, BAD_INPUT, "cannot read input");
    // Success: one line saying what was written; -q silences it.
    std::fs::write(d.join("ok.wat"), "(module)").expect("write");
    let o = mvvm_aot(&["--target", "pulley64"], &out, &d.join("ok.wat"));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).starts_with("mvvm-aot: wrote "), "{}", stderr(&o));
    assert_eq!(
        stderr(&o).lines().count(),
        1,
        "piped: no progress: {}",
        stderr(&o)
    );
    let o = mvvm_aot(&["-v", "--target", "pulley64"], &out, &d.join("ok.wat"));
    assert!(
        stderr(&o).contains("mvvm-aot: info: compiling for pulley64 (1/1)"),
        "-v: {}",
        stderr(&o)
    );
    let o = mvvm_aot(&["-q", "--target", "pulley64"], &out, &d.join("ok.wat"));
    assert!(o.status.success() && o.stderr.is_empty(), "{}", stderr(&o));
    // An .aot is readable as the umask allows, like any output.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&out).expect("aot").permissions(),
    );
    assert_ne!(mode & 0o044, 0, "mode {mode:o}");
    std::fs::remove_file(&out).expect("remove");

    // Valid wasm using a proposal mvvm refuses: one line naming the proposal, the bad-input status, no output.
    let refused = [
        (
            "exn",
            r#"(module (tag $e) (func (export "_start") (throw $e)))"#,
            "exception handling",
        ),
        ("shared", "(module (memory 1 1 shared))", "threads"),
        ("m64", "(module (memory i64 1))", "memory64"),
        (
            "exact",
            r#"(module (type $t (func)) (import "m" "f" (func (exact (type $t)))))"#,
            "custom descriptors",
        ),
    ];
    for (name, text, proposal) in refused {
        let input = d.join(format!("{name}.wasm"));
        std::fs::write(&input, wat::parse_str(text).expect("wat")).expect("write");
        let o = mvvm_aot(&[], &out, &input);
        assert_clear_error(&o, BAD_INPUT, proposal);
        assert!(!out.exists(), "{name}: no output on failure");
    }

    // Invalid wasm (a truncated body).
    std::fs::write(d.join("trunc.wasm"), b"\0asm\x01\0\0\0\x01\x05").expect("write");
    let o = mvvm_aot(&[], &out, &d.join("trunc.wasm"));
    assert_clear_error(&o, BAD_INPUT, "not a valid WebAssembly module");
    assert!(!out.exists(), "no output on failure");
}

/// On a terminal, `mvvm-aot` shows which step it is at and clears that line before its last one.
/// The terminal is a pseudo-terminal made by `script` (util-linux, in every Debian install).
#[test]
fn progress_on_a_terminal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("p.aot");
    let command = format!(
        "{MVVM_AOT} --enable-checkpoint -o {} {}",
        out.display(),
        demo_wat().display()
    );
    let o = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("script (util-linux) runs mvvm-aot on a pseudo-terminal");
    let seen = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{seen}");
    assert!(
        seen.contains("mvvm-aot: instrumenting") || seen.contains("mvvm-aot: compiling for"),
        "no progress on a terminal: {seen:?}"
    );
    let last = seen.trim_end().rsplit('\r').next().unwrap_or_default();
    assert!(last.contains("mvvm-aot: wrote "), "the last line: {seen:?}");
    assert!(out.exists());
}

#[test]
fn a_shifted_stack_variant_is_built_and_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("heap_address-shifted.aot");
    let input = mvvm_tests::guests_dir().join("heap_address.wasm");
    let args = [
        "--shift-stack",
        "4096",
        "--shift-data",
        "65536",
        "--diversify",
        "9",
        "--target",
        "pulley64",
    ];
    let o = mvvm_aot(&args, &out, &input);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o)
            .contains("a variant: C stack shifted by 4096 bytes, heap shifted by 65536 bytes, code diversified with seed 9"),
        "{}",
        stderr(&o)
    );
    let bytes = std::fs::read(&out).expect("read the .aot");
    let aot = AotFile::decode("heap_address-shifted.aot", &bytes).expect("an .aot");
    let variant = mvvm_aot::variant::read(&aot.wasm).expect("a variant section");
    assert_eq!(variant.shift_stack, 4096);
    assert_eq!(variant.shift_data, 65536);
    assert_eq!(variant.diversify, Some(9));
    // A shift that breaks the stack's alignment, and a module without a named stack pointer.
    let o = mvvm_aot(&["--shift-stack", "100"], &out, &input);
    assert_clear_error(&o, BAD_INPUT, "multiple of 16");
    let o = mvvm_aot(&["--shift-stack", "4096"], &out, &demo_wat());
    assert_clear_error(&o, BAD_INPUT, "__stack_pointer");
    // A program that never calls malloc has no heap to move.
    let writes = mvvm_tests::guests_dir().join("writes.wasm");
    let o = mvvm_aot(&["--shift-data", "4096"], &out, &writes);
    assert_clear_error(&o, BAD_INPUT, "never calls malloc");
}

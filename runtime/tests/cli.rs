//! `mvvm` as a user runs it: the demo, arguments and exit statuses, and bad input. The `.aot`
//! files are built with the `mvvm-aot` library; `aot/tests/cli.rs` runs the `mvvm-aot` binary.

use mvvm_contract::status::{BAD_INPUT, NOT_TRIGGERED, TRAP};
use mvvm_contract::{Policy, Target};
use mvvm_tests::tools::{assert_clear_error, build_aot, demo_wat, stderr};
use std::process::{Command, Output};

/// The `mvvm` binary of this package.
const MVVM: &str = env!("CARGO_BIN_EXE_mvvm");

/// The demo's policy: function entries and counted loops with K = 4.
fn demo_policy() -> Policy {
    Policy {
        function_entry: true,
        threshold_bits: 4,
        ..Policy::default_counter()
    }
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

#[test]
fn demo_three_targets_and_identical_output_on_native_and_pulley() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aot = dir.path().join("p.aot");
    build_aot(&demo_wat(), &demo_policy(), &Target::ALL, &aot);

    let o = run(Command::new(MVVM).arg("inspect").arg(&aot));
    assert!(o.status.success(), "inspect: {}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for t in [
        "x86_64-unknown-linux-gnu",
        "aarch64-unknown-linux-gnu",
        "pulley64",
    ] {
        assert!(text.contains(t), "inspect lacks {t}:\n{text}");
    }
    assert!(text.contains("threshold K:  4"), "{text}");
    assert!(text.contains("function entry"), "{text}");
    // The code of the artifacts this host can load, split into functions and rewind clones.
    let host = mvvm_contract::Target::host()
        .expect("a supported host")
        .triple();
    for t in [host, "pulley64"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("code:         {t}: ")))
            .unwrap_or_else(|| panic!("inspect lacks the code of {t}:\n{text}"));
        assert!(line.contains(" rewind clones "), "{line}");
        assert!(!line.contains(" rewind clones 0 "), "{line}");
    }

    // The uninstrumented module, run by the same runtime from the .wat directly.
    let plain = run(Command::new(MVVM).args(["run", "-t"]).arg(demo_wat()));
    assert!(plain.status.success(), "plain: {}", stderr(&plain));
    assert!(!plain.stdout.is_empty());
    for isa in ["native", "pulley64"] {
        let o = run(Command::new(MVVM)
            .args(["run", "-t"])
            .arg(&aot)
            .args(["--isa", isa]));
        assert!(o.status.success(), "{isa}: {}", stderr(&o));
        assert_eq!(
            o.stdout, plain.stdout,
            "{isa} output differs from the uninstrumented module"
        );
        assert!(o.stderr.is_empty(), "{isa} wrote to stderr: {}", stderr(&o));
    }
}

#[test]
fn exit_status_args_and_env_pass_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aot = dir.path().join("argsenv.aot");
    let wasm = mvvm_tests::guests_dir().join("argsenv.wasm");
    build_aot(&wasm, &Policy::default_counter(), &[Target::X86_64], &aot);
    let dashdash = run(Command::new(MVVM).args(["run", "-t"]).arg(&aot).args([
        "-e",
        "MVVM_A=ay",
        "-e",
        "MVVM_B=bee",
        "--",
        "one",
        "two words",
    ]));
    assert_eq!(
        dashdash.status.code(),
        Some(3),
        "exit status is argc: {}",
        stderr(&dashdash)
    );
    let expected =
        std::fs::read(mvvm_tests::guests_src().join("c/argsenv.expected")).expect("expected");
    assert_eq!(
        String::from_utf8_lossy(&dashdash.stdout),
        String::from_utf8_lossy(&expected)
    );
    let comma = run(Command::new(MVVM).args(["run", "-t"]).arg(&aot).args([
        "-e",
        "MVVM_A=ay",
        "-e",
        "MVVM_B=bee",
        "-a",
        "one,two words",
    ]));
    assert_eq!(comma.status.code(), Some(3));
    assert_eq!(comma.stdout, dashdash.stdout, "-a a,b equals -- a b");
}

/// As in `wasmtime run`: options before the program, everything after it to the guest (flags
/// included), and `--env NAME` passes the host's value.
#[test]
fn positional_program_and_args_and_inherited_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aot = dir.path().join("argsenv.aot");
    let wasm = mvvm_tests::guests_dir().join("argsenv.wasm");
    build_aot(&wasm, &Policy::default_counter(), &[Target::X86_64], &aot);
    let expected =
        std::fs::read(mvvm_tests::guests_src().join("c/argsenv.expected")).expect("expected");
    let positional = run(Command::new(MVVM)
        .args(["run", "--env", "MVVM_A", "-e", "MVVM_B=bee"])
        .arg(&aot)
        .args(["one", "two words"])
        .env("MVVM_A", "ay"));
    assert_eq!(positional.status.code(), Some(3), "{}", stderr(&positional));
    assert_eq!(
        String::from_utf8_lossy(&positional.stdout),
        String::from_utf8_lossy(&expected)
    );
    // A guest argument that looks like a flag is the guest's.
    let flag = run(Command::new(MVVM)
        .args(["run", "-e", "MVVM_A=ay", "-e", "MVVM_B=bee"])
        .arg(&aot)
        .args(["--isa", "x"]));
    assert_eq!(flag.status.code(), Some(3), "{}", stderr(&flag));
    // `--env NAME` of a variable the host lacks is bad input.
    let o = run(Command::new(MVVM)
        .args(["run", "--env", "MVVM_SURELY_UNSET"])
        .arg(&aot)
        .env_remove("MVVM_SURELY_UNSET"));
    assert_clear_error(&o, BAD_INPUT, "MVVM_SURELY_UNSET");
}

/// `--invoke` calls another export; `--isa` takes the host's own name and refuses the other.
#[test]
fn invoke_and_isa_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("two.wat");
    std::fs::write(
        &w,
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") (call $exit (i32.const 4)))
             (func (export "other") (call $exit (i32.const 5))))"#,
    )
    .expect("write");
    let aot = dir.path().join("two.aot");
    build_aot(&w, &Policy::default_counter(), &Target::ALL, &aot);
    let o = run(Command::new(MVVM)
        .args(["run", "--invoke", "other"])
        .arg(&aot));
    assert_eq!(o.status.code(), Some(5), "{}", stderr(&o));
    let o = run(Command::new(MVVM)
        .args(["run", "--invoke", "missing"])
        .arg(&aot));
    assert_clear_error(&o, BAD_INPUT, "missing");
    let host = std::env::consts::ARCH;
    let o = run(Command::new(MVVM).args(["run", "--isa", host]).arg(&aot));
    assert_eq!(o.status.code(), Some(4), "--isa {host}: {}", stderr(&o));
    let other = if host == "x86_64" {
        "aarch64"
    } else {
        "x86_64"
    };
    let o = run(Command::new(MVVM).args(["run", "--isa", other]).arg(&aot));
    assert_eq!(
        o.status.code(),
        Some(i32::from(BAD_INPUT)),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("pulley64"), "{}", stderr(&o));
}

/// A checkpoint whose trigger never fires writes nothing and says so with its own status; a
/// usage error has the bad-input status; `proc_exit` outside WASI's 0..126 is a trap.
#[test]
fn statuses_a_script_can_trust() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aot = dir.path().join("argsenv.aot");
    let wasm = mvvm_tests::guests_dir().join("argsenv.wasm");
    build_aot(&wasm, &Policy::default_counter(), &[Target::X86_64], &aot);
    let o = run(Command::new(MVVM)
        .args(["checkpoint", "-c", "1000000"])
        .arg(&aot));
    assert_eq!(
        o.status.code(),
        Some(i32::from(NOT_TRIGGERED)),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("no image written"), "{}", stderr(&o));
    assert!(!aot.with_extension("ckpt").exists(), "no image");

    let o = run(Command::new(MVVM).args(["run", "--no-such-flag"]).arg(&aot));
    assert_eq!(
        o.status.code(),
        Some(i32::from(BAD_INPUT)),
        "{}",
        stderr(&o)
    );
    let o = run(Command::new(MVVM).arg("run"));
    assert_clear_error(&o, BAD_INPUT, "no program given");
    let o = run(Command::new(MVVM).args(["run", "--help"]));
    assert_eq!(o.status.code(), Some(0));
    for shell in ["bash", "zsh", "fish"] {
        let o = run(Command::new(MVVM).args(["completions", shell]));
        assert!(o.status.success(), "{shell}: {}", stderr(&o));
        let script = String::from_utf8_lossy(&o.stdout);
        assert!(
            script.contains("checkpoint") && script.contains("leave-running"),
            "{shell}"
        );
    }

    let w = dir.path().join("exit200.wat");
    std::fs::write(
        &w,
        r#"(module
             (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
             (memory (export "memory") 1)
             (func (export "_start") (call $exit (i32.const 200))))"#,
    )
    .expect("write");
    let exit200 = dir.path().join("exit200.aot");
    build_aot(&w, &Policy::default_counter(), &[Target::X86_64], &exit200);
    let o = run(Command::new(MVVM).arg("run").arg(&exit200));
    assert_eq!(o.status.code(), Some(i32::from(TRAP)), "{}", stderr(&o));
    assert!(stderr(&o).contains("outside of [0..126)"), "{}", stderr(&o));
}

/// `inspect --json` of an .aot file and of an image is JSON with the documented fields, and a
/// closed stdout ends `inspect` quietly.
#[test]
fn inspect_json_and_a_closed_pipe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let aot = dir.path().join("p.aot");
    build_aot(&demo_wat(), &demo_policy(), &Target::ALL, &aot);
    let o = run(Command::new(MVVM).args(["inspect", "--json"]).arg(&aot));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for field in [
        r#""kind": "aot""#,
        r#""targets""#,
        r#""sites""#,
        r#""policy""#,
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
    let taken = run(Command::new(MVVM)
        .args(["checkpoint", "-f", "3", "-x", "7"])
        .arg(&aot));
    assert_eq!(taken.status.code(), Some(0), "{}", stderr(&taken));
    let image = aot.with_extension("ckpt");
    let o = run(Command::new(MVVM).args(["inspect", "--json"]).arg(&image));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for field in [
        r#""kind": "image""#,
        r#""frames""#,
        r#""matches": true"#,
        r#""wasi""#,
    ] {
        assert!(text.contains(field), "{field} in {text}");
    }
    if Command::new("python3").arg("--version").output().is_ok() {
        let mut check = Command::new("python3")
            .args(["-m", "json.tool"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        std::io::Write::write_all(&mut check.stdin.take().expect("stdin"), &o.stdout)
            .expect("pipe");
        assert!(check.wait().expect("wait").success(), "json.tool: {text}");
    }
    // --functions: the indices and names `-f` takes, as text and as JSON; not for an image.
    let o = run(Command::new(MVVM)
        .args(["inspect", "--functions"])
        .arg(&aot));
    let listed = String::from_utf8_lossy(&o.stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.trim() == "3  mix  (instrumented, entry site)"),
        "{listed}"
    );
    let o = run(Command::new(MVVM)
        .args(["inspect", "--json", "--functions"])
        .arg(&aot));
    let value: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(value["functions"]["list"][3]["name"], "mix", "{value}");
    assert_eq!(value["functions"]["list"][3]["entry_site"], true, "{value}");
    let o = run(Command::new(MVVM)
        .args(["inspect", "--functions"])
        .arg(&image));
    assert_clear_error(&o, BAD_INPUT, "give it the .aot");
    // `| head -1`: the reader goes away after one line.
    let mut child = Command::new(MVVM)
        .arg("inspect")
        .arg(&image)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
}

#[test]
fn bad_input_gets_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();

    // Missing -t file.
    let o = run(Command::new(MVVM)
        .args(["run", "-t"])
        .arg(d.join("missing.aot")));
    assert_clear_error(&o, BAD_INPUT, "no such file");

    // -f NAME on a module without a name section says why names cannot work.
    let nameless = d.join("nameless.wat");
    std::fs::write(
        &nameless,
        "(module (func) (func (export \"_start\") call 0))",
    )
    .expect("write");
    let nameless_aot = d.join("nameless.aot");
    build_aot(
        &nameless,
        &demo_policy(),
        &[Target::Pulley64],
        &nameless_aot,
    );
    let o = run(Command::new(MVVM)
        .args(["checkpoint", "--isa", "pulley64", "-f", "main"])
        .arg(&nameless_aot));
    assert_clear_error(&o, BAD_INPUT, "its name section is gone");

    // A good .aot, then truncated, damaged and foreign versions of it.
    let good = d.join("good.aot");
    build_aot(
        &demo_wat(),
        &Policy::default_counter(),
        &[Target::Pulley64],
        &good,
    );
    let bytes = std::fs::read(&good).expect("read");

    // Files are mapped; what cannot be mapped is read: an .aot through a pipe runs, a directory
    // gets the read error.
    let mut piped = Command::new(MVVM)
        .args(["run", "-t", "/dev/stdin", "--isa", "pulley64"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = piped.stdin.take().expect("stdin");
    let feed = bytes.clone();
    let feeder = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &feed));
    let o = piped.wait_with_output().expect("wait");
    feeder.join().expect("feeder").expect("feed the pipe");
    assert!(o.status.success(), "{}", stderr(&o));
    let from_file = run(Command::new(MVVM)
        .args(["run", "-t"])
        .arg(&good)
        .args(["--isa", "pulley64"]));
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert_eq!(
        o.stdout, from_file.stdout,
        "the same program, piped or mapped"
    );
    let o = run(Command::new(MVVM).args(["run", "-t"]).arg(d));
    assert_clear_error(&o, BAD_INPUT, "Is a directory");

    std::fs::write(d.join("trunc.aot"), &bytes[..bytes.len() / 2]).expect("write");
    let o = run(Command::new(MVVM)
        .args(["run", "-t"])
        .arg(d.join("trunc.aot"))
        .args(["--isa", "pulley64"]));
    assert_clear_error(&o, BAD_INPUT, "truncated");

    let mut damaged = bytes.clone();
    let mid = damaged.len() / 2;
    damaged[mid] ^= 0x40;
    std::fs::write(d.join("damaged.aot"), &damaged).expect("write");
    let o = run(Command::new(MVVM)
        .args(["run", "-t"])
        .arg(d.join("damaged.aot")));
    assert_clear_error(&o, BAD_INPUT, "damaged");

    let mut foreign = bytes.clone();
    foreign[8] = 99; // version
    std::fs::write(d.join("foreign.aot"), &foreign).expect("write");
    let o = run(Command::new(MVVM).arg("inspect").arg(d.join("foreign.aot")));
    assert_clear_error(&o, BAD_INPUT, "version 99");

    let mut magic = bytes;
    magic[..4].copy_from_slice(b"ELF\x7f");
    std::fs::write(d.join("magic.aot"), &magic).expect("write");
    let o = run(Command::new(MVVM).arg("inspect").arg(d.join("magic.aot")));
    assert_clear_error(&o, BAD_INPUT, "not an mvvm .aot file");

    // No artifact for this ISA: a logged warning, then the embedded module is compiled and runs.
    let o = run(Command::new(MVVM).args(["run", "-t"]).arg(&good));
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("compiling the embedded module"),
        "{}",
        stderr(&o)
    );
    let plain = run(Command::new(MVVM).args(["run", "-t"]).arg(demo_wat()));
    assert_eq!(o.stdout, plain.stdout);

    // An .aot claiming fuel metering (mvvm-aot never writes one) is refused, not run out of fuel.
    let mut fuel = mvvm_contract::AotFile::read(&good).expect("read");
    fuel.engine.fuel = true;
    std::fs::write(d.join("fuel.aot"), fuel.encode()).expect("write");
    let o = run(Command::new(MVVM)
        .args(["run", "-t"])
        .arg(d.join("fuel.aot"))
        .args(["--isa", "pulley64"]));
    assert_clear_error(&o, BAD_INPUT, "fuel metering");
    // inspect still describes it, and says why its code cannot be loaded; it never compiles.
    let o = run(Command::new(MVVM).arg("inspect").arg(d.join("fuel.aot")));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(
            "code:         pulley64: not loadable here: this .aot was compiled with fuel metering"
        ),
        "{text}"
    );
    assert!(!stderr(&o).contains("compiling"), "{}", stderr(&o));

    // A missing --dir.
    let o = run(Command::new(MVVM).args(["run", "-t"]).arg(&good).args([
        "--isa",
        "pulley64",
        "--dir",
        "/definitely/not/here::/data",
    ]));
    assert_clear_error(&o, BAD_INPUT, "no such directory");
    // One colon where two were meant, and one guest path given twice.
    let o = run(Command::new(MVVM)
        .args(["run", "--dir", "d2:/data"])
        .arg(&good)
        .current_dir(d));
    assert_clear_error(&o, BAD_INPUT, "write --dir d2::/data");
    let (one, two) = (format!("{}::/data", d.display()), "/tmp::/data".to_string());
    let o = run(Command::new(MVVM)
        .args(["run", "--dir", &one, "--dir", &two])
        .arg(&good));
    assert_clear_error(&o, BAD_INPUT, "already given");
}

#[test]
fn a_trap_exits_134_with_the_trap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("trap.wat");
    std::fs::write(
        &w,
        r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#,
    )
    .expect("write");
    let aot = dir.path().join("trap.aot");
    build_aot(&w, &Policy::default_counter(), &[Target::X86_64], &aot);
    let o = run(Command::new(MVVM).args(["run", "-t"]).arg(&aot));
    assert_eq!(o.status.code(), Some(i32::from(TRAP)));
    assert!(stderr(&o).contains("unreachable"), "{}", stderr(&o));
}

/// A trap's backtrace names the original module's functions, so an index copied from it works
/// with `-f`; a frame that was resumed says so.
#[test]
fn trap_backtraces_use_the_original_function_indices() {
    let dir = tempfile::tempdir().expect("tempdir");
    let w = dir.path().join("deep.wat");
    std::fs::write(
        &w,
        r#"(module
  (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
  (func $deep (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then unreachable)
      (else (call $deep (i32.sub (local.get 0) (i32.const 1))))))
  (func $middle (result i32) (call $deep (i32.const 3)))
  (func (export "_start") (drop (call $middle))))"#,
    )
    .expect("write");
    let aot = dir.path().join("deep.aot");
    build_aot(&w, &demo_policy(), &[Target::Pulley64], &aot);
    let o = run(Command::new(MVVM)
        .args(["run", "--isa", "pulley64"])
        .arg(&aot));
    assert_eq!(o.status.code(), Some(i32::from(TRAP)));
    let trace = stderr(&o);
    // The import is function 0: $deep is 1, $middle 2, _start 3, whatever the transform added.
    for frame in [
        "0: function 1 deep",
        "4: function 2 middle",
        "5: function 3",
    ] {
        assert!(trace.contains(frame), "{frame:?} in {trace}");
    }
    let taken = run(Command::new(MVVM)
        .args([
            "checkpoint",
            "-q",
            "--isa",
            "pulley64",
            "-f",
            "1",
            "-x",
            "3",
        ])
        .arg(&aot));
    assert_eq!(taken.status.code(), Some(0), "{}", stderr(&taken));
    let resumed = run(Command::new(MVVM)
        .args(["restore", "-q", "--isa", "pulley64"])
        .arg(&aot));
    assert_eq!(resumed.status.code(), Some(i32::from(TRAP)));
    let trace = stderr(&resumed);
    assert!(
        trace.contains("2: function 1 deep (resumed: in its rewind clone)")
            && trace.contains("4: function 2 middle (resumed: in its rewind clone)")
            && trace.contains("0: function 1 deep\n"),
        "{trace}"
    );
}

/// mvvm's own lines never land inside a line the guest left open on stderr, and `-v` shows what
/// mvvm does: the checkpoint and restore lines start on a line of their own.
#[test]
fn own_lines_start_on_a_line_of_their_own() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wat = dir.path().join("half.wat");
    std::fs::write(
        &wat,
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "working...")
  (data (i32.const 32) "done")
  (func $say (param $at i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $at))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $tick)
  (func (export "_start") (local $i i32)
    (call $say (i32.const 16) (i32.const 10))
    (loop $again
      (call $tick)
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 100))))
    (call $say (i32.const 32) (i32.const 4))))"#,
    )
    .expect("write");
    let aot = dir.path().join("half.aot");
    build_aot(&wat, &demo_policy(), &[Target::Pulley64], &aot);
    let taken = run(Command::new(MVVM)
        .args(["checkpoint", "--isa", "pulley64", "-f", "tick", "-x", "50"])
        .arg(&aot));
    assert_eq!(taken.status.code(), Some(0), "{}", stderr(&taken));
    assert!(
        stderr(&taken).starts_with("working...\nmvvm: checkpoint: "),
        "{:?}",
        stderr(&taken)
    );
    let restored = run(Command::new(MVVM)
        .args(["restore", "-v", "--isa", "pulley64"])
        .arg(&aot));
    assert_eq!(restored.status.code(), Some(0), "{}", stderr(&restored));
    let err = stderr(&restored);
    assert!(err.starts_with("mvvm: info: restoring "), "{err:?}");
    assert!(err.contains("\ndone\nmvvm: restore: "), "{err:?}");
    assert!(err.contains("resumed on pulley64"), "{err:?}");
    // SPDLOG_LEVEL cannot make -v quieter; it can say more without -v.
    let both = run(Command::new(MVVM)
        .env("SPDLOG_LEVEL", "error")
        .args(["restore", "-q", "-v", "--isa", "pulley64"])
        .arg(&aot));
    assert!(
        stderr(&both).starts_with("mvvm: info: restoring "),
        "{:?}",
        stderr(&both)
    );
    let env_only = run(Command::new(MVVM)
        .env("SPDLOG_LEVEL", "info")
        .args(["restore", "-q", "--isa", "pulley64"])
        .arg(&aot));
    assert!(
        stderr(&env_only).starts_with("mvvm: info: restoring "),
        "{:?}",
        stderr(&env_only)
    );
    // Without -v, no info line; with -q, nothing of mvvm's at all.
    let quiet = run(Command::new(MVVM)
        .args(["restore", "-q", "--isa", "pulley64"])
        .arg(&aot));
    assert_eq!(stderr(&quiet), "done", "{:?}", stderr(&quiet));
}

#[test]
fn inspect_shows_a_variant() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = std::fs::read(mvvm_tests::guests_dir().join("heap_address.wasm")).expect("wasm");
    let variant = mvvm_aot::variant::Variant {
        shift_stack: 2048,
        shift_data: 65536,
        diversify: Some(7),
    };
    let shifted = dir.path().join("shifted.wasm");
    std::fs::write(
        &shifted,
        mvvm_aot::variant::make(&wasm, &variant).expect("shift"),
    )
    .expect("write");
    let aot = dir.path().join("shifted.aot");
    build_aot(
        &shifted,
        &Policy::default_counter(),
        &[Target::Pulley64],
        &aot,
    );
    let o = run(Command::new(MVVM).arg("inspect").arg(&aot));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("variant:      C stack shifted by 2048 bytes, heap shifted by 65536 bytes, code diversified with seed 7"),
        "{text}"
    );
    let o = run(Command::new(MVVM).args(["inspect", "--json"]).arg(&aot));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(json["variant"]["shift_stack"], 2048);
    assert_eq!(json["variant"]["shift_data"], 65536);
    assert_eq!(json["variant"]["diversify"], 7);
}

/// The addresses `heap_address.wasm` prints (heap, data, stack), run as the `variant` of it.
fn addresses(dir: &std::path::Path, variant: &mvvm_aot::variant::Variant) -> [u64; 3] {
    let wasm = std::fs::read(mvvm_tests::guests_dir().join("heap_address.wasm"))
        .expect("heap_address.wasm");
    let name = format!("{}-{}", variant.shift_data, variant.shift_stack);
    let variant_wasm = dir.join(format!("{name}.wasm"));
    let made = mvvm_aot::variant::make(&wasm, variant).expect("a variant");
    std::fs::write(&variant_wasm, made).expect("write");
    let aot = dir.join(format!("{name}.aot"));
    build_aot(
        &variant_wasm,
        &Policy::default_counter(),
        &[Target::Pulley64],
        &aot,
    );
    let o = run(Command::new(MVVM)
        .args(["run", "--isa", "pulley64"])
        .arg(&aot));
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    let value = |key: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {text:?}"))
    };
    [value("heap "), value("data "), value("stack ")]
}

#[test]
fn a_shifted_heap_moves_what_malloc_returns_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v = |shift_data, shift_stack| mvvm_aot::variant::Variant {
        shift_stack,
        shift_data,
        diversify: None,
    };
    let [heap, data, stack] = addresses(dir.path(), &v(0, 0));
    let shifted = addresses(dir.path(), &v(65552, 0));
    assert_eq!(shifted, [heap + 65552, data, stack], "heap, data, stack");
    let both = addresses(dir.path(), &v(4096, 1024));
    assert_eq!(both, [heap + 4096, data, stack - 1024], "heap, data, stack");
    // A shift that breaks alignment, and a module that is no C program.
    let wasm = std::fs::read(mvvm_tests::guests_dir().join("heap_address.wasm")).expect("wasm");
    let e = mvvm_aot::variant::make(&wasm, &v(100, 0)).expect_err("unaligned");
    assert!(e.to_string().contains("multiple of 16"), "{e}");
    let wat = wat::parse_file(demo_wat()).expect("wat");
    let e = mvvm_aot::variant::make(&wat, &v(4096, 0)).expect_err("no stack pointer");
    assert!(e.to_string().contains("__stack_pointer"), "{e}");
}

//! Checkpoint images through the command line, as a user moves a job between machines.
//!
//! Every guest is checkpointed by `mvvm checkpoint` at three sites (`-c` twice, `-f/-x` once), and
//! each image is restored natively, on pulley64, and by the aarch64 build under qemu; one more image
//! is taken under qemu and restored natively. Stdout, stderr, the exit status and the files left in
//! the preopened directory must equal those of an uninterrupted run, byte for byte. Then: the WAT
//! demo, SIGUSR1, damaged and foreign input, and SIGKILL while images are being written.

use mvvm_aot::build::build;
use mvvm_checkpoint::Image;
use mvvm_contract::{EngineOptions, Policy, Target};
use mvvm_runtime::{Isa, Outcome, Program, Trigger};
use mvvm_tests::tools::Host;
use mvvm_tests::{all_guests, dense_policy, Guest};
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A `mvvm` command on `host`: this package's binary, or its aarch64 build under qemu.
fn mvvm(host: Host) -> Command {
    mvvm_tests::tools::mvvm(Path::new(env!("CARGO_BIN_EXE_mvvm")), host)
}

/// What a command did, and the files it left in the guest's directory.
#[derive(Debug)]
struct Seen {
    out: Vec<u8>,
    err: Vec<u8>,
    code: Option<i32>,
}

fn exec(cmd: &mut Command) -> Seen {
    let o = cmd.output().expect("spawn mvvm");
    Seen {
        out: o.stdout,
        err: o.stderr,
        code: o.status.code(),
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).expect("read_dir") {
            let p = e.expect("dir entry").path();
            let rel = p
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            if p.is_dir() {
                out.insert(format!("{rel}/"), Vec::new());
                walk(root, &p, out);
            } else {
                out.insert(rel, std::fs::read(&p).expect("read"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for (rel, bytes) in files(from) {
        match rel.strip_suffix('/') {
            Some(d) => std::fs::create_dir_all(to.join(d)).expect("mkdir"),
            None => {
                // As `cp -p` does: a restore refuses files whose time changed.
                std::fs::write(to.join(&rel), bytes).expect("write");
                let modified = std::fs::metadata(from.join(&rel))
                    .and_then(|m| m.modified())
                    .expect("mtime");
                let file = std::fs::File::options()
                    .write(true)
                    .open(to.join(&rel))
                    .expect("open");
                file.set_modified(modified).expect("set mtime");
            }
        }
    }
}

/// Builds `guest` into `WORK/NAME.aot` for all three targets.
fn build_aot(guest: &Guest, policy: &Policy, work: &Path) -> (PathBuf, Program) {
    let aot = build(
        &guest.wasm(),
        policy,
        &Target::ALL,
        &EngineOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", guest.name));
    let path = work.join(format!("{}.aot", guest.name));
    std::fs::write(&path, aot.encode()).expect("write .aot");
    let program = Program::from_aot(&aot, Isa::Native).expect("load .aot");
    (path, program)
}

/// The guest's flags for `run` and `checkpoint`: directory, environment, arguments.
fn guest_flags(cmd: &mut Command, guest: &Guest, dir: &Path) {
    if guest.data_dir {
        cmd.arg("--dir").arg(format!("{}::/data", dir.display()));
    }
    for (k, v) in guest.env {
        cmd.arg("-e").arg(format!("{k}={v}"));
    }
    cmd.arg("--argv0")
        .arg(guest.name)
        .arg("--")
        .args(guest.args);
}

/// Polls of a whole run (every site polling), and an `-f/-x` trigger that fires mid-run.
fn trigger_points(guest: &Guest, p: &Program) -> (u64, (u32, u64)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, _, _) = guest.config(Some(dir.path()));
    let total = p
        .run(&cfg, Trigger::Poll(u64::MAX))
        .expect("trace run")
        .polls;
    let (cfg, _, _) = guest.config(Some(dir.path()));
    let Outcome::Checkpointed(snap) = p
        .run(&cfg, Trigger::Poll(total / 2 + 1))
        .expect("run")
        .outcome
    else {
        panic!("{}: no checkpoint at poll {}", guest.name, total / 2 + 1);
    };
    // The function running mid-way; take its latest entry of up to the third.
    let func = snap.frames[0].func;
    let nth = (1..=3u64)
        .rev()
        .find(|&nth| {
            let (cfg, _, _) = guest.config(Some(dir.path()));
            matches!(
                p.run(&cfg, Trigger::FuncEntry { func, nth })
                    .expect("run")
                    .outcome,
                Outcome::Checkpointed(_)
            )
        })
        .expect("the function on top of the stack was entered");
    (total, (func, nth))
}

/// Where an image is restored: by which build, with which `--isa`.
type Restore = (Host, &'static str);

/// Checkpoints and restores one guest everywhere; returns the number of restores checked.
fn matrix(guest: &Guest) -> usize {
    let work = tempfile::tempdir().expect("tempdir");
    let work = work.path();
    let (aot, program) = build_aot(guest, &dense_policy(), work);
    let (total, (func, nth)) = trigger_points(guest, &program);
    assert!(total > 4, "{}: only {total} polls", guest.name);
    // `-f` by the function's name where the module has a name section (every guest built here)
    let func_spec = program.info.functions[func as usize]
        .name
        .clone()
        .unwrap_or_else(|| func.to_string());
    assert_eq!(program.info.resolve_function(&func_spec), Some(func));

    let ref_dir = work.join("ref");
    std::fs::create_dir(&ref_dir).expect("mkdir");
    let mut cmd = mvvm(Host::Native);
    cmd.arg("run").arg("-t").arg(&aot);
    guest_flags(&mut cmd, guest, &ref_dir);
    let reference = exec(&mut cmd);
    assert_eq!(
        text(&reference.out),
        text(&guest.expected()),
        "{}: run",
        guest.name
    );
    assert_eq!(
        reference.code,
        Some(guest.exit),
        "{}: run status",
        guest.name
    );
    let ref_files = files(&ref_dir);

    let native_restores = [
        (Host::Native, "native"),
        (Host::Native, "pulley64"),
        (Host::Aarch64, "native"),
    ];
    let cases: Vec<(Host, Vec<String>, &[Restore])> = vec![
        (
            Host::Native,
            vec!["-c".into(), (total / 4 + 1).to_string()],
            &native_restores,
        ),
        (
            Host::Native,
            vec!["-c".into(), (3 * total / 4).to_string()],
            &native_restores,
        ),
        (
            Host::Native,
            vec!["-f".into(), func_spec.clone(), "-x".into(), nth.to_string()],
            &native_restores,
        ),
        (
            Host::Aarch64,
            vec!["-c".into(), (total / 2).to_string()],
            &[(Host::Native, "native"), (Host::Native, "pulley64")],
        ),
    ];
    let mut checked = 0;
    for (i, (taker, flags, restores)) in cases.iter().enumerate() {
        let what = format!("{} checkpoint {} on {taker:?}", guest.name, flags.join(" "));
        let dir = work.join(format!("ckpt{i}"));
        std::fs::create_dir(&dir).expect("mkdir");
        let image = work.join(format!("{i}.ckpt"));
        let mut cmd = mvvm(*taker);
        cmd.args(["checkpoint", "-q", "-t"])
            .arg(&aot)
            .arg("-o")
            .arg(&image)
            .args(flags);
        guest_flags(&mut cmd, guest, &dir);
        let taken = exec(&mut cmd);
        assert_eq!(taken.code, Some(0), "{what}: {}", text(&taken.err));
        assert!(image.exists(), "{what}: no image");
        for (j, (host, isa)) in restores.iter().enumerate() {
            let what = format!("{what}, restored by {host:?} --isa {isa}");
            let rdir = work.join(format!("restore{i}-{j}"));
            copy_dir(&dir, &rdir);
            let mut cmd = mvvm(*host);
            cmd.args(["restore", "-q", "-t"])
                .arg(&aot)
                .arg("-i")
                .arg(&image)
                .arg("--isa")
                .arg(isa);
            if guest.data_dir {
                cmd.arg("--dir").arg(format!("{}::/data", rdir.display()));
            }
            let r = exec(&mut cmd);
            assert_eq!(
                text(&[&taken.out[..], &r.out[..]].concat()),
                text(&reference.out),
                "{what}: stdout (stderr: {})",
                text(&r.err)
            );
            assert_eq!(
                text(&[&taken.err[..], &r.err[..]].concat()),
                text(&reference.err),
                "{what}: stderr"
            );
            assert_eq!(r.code, reference.code, "{what}: exit status");
            assert_eq!(files(&rdir), ref_files, "{what}: files in /data");
            checked += 1;
        }
    }
    checked
}

fn run_matrix(pick: impl Fn(&Guest) -> bool) {
    let mut checked = 0;
    for g in all_guests().iter().filter(|g| pick(g)) {
        checked += matrix(g);
    }
    assert!(checked > 0);
}

#[test]
fn every_wat_guest_checkpointed_three_ways_restored_on_three_isas() {
    run_matrix(|g| g.lang == "wat");
}

#[test]
fn every_c_guest_checkpointed_three_ways_restored_on_three_isas() {
    run_matrix(|g| g.lang == "c" && !g.big);
}

#[test]
fn sqlite_and_lua_checkpointed_three_ways_restored_on_three_isas() {
    run_matrix(|g| g.big);
}

fn guest(name: &str) -> Guest {
    all_guests()
        .into_iter()
        .find(|g| g.name == name)
        .expect("guest")
}

/// The transform issue's demo program, checkpointed at the 7th entry of function 3 (`$mix`), by
/// index and by name, continues exactly on pulley64 and on aarch64.
#[test]
fn demo_checkpoint_f3_x7_restores_on_pulley_and_aarch64() {
    let work = tempfile::tempdir().expect("tempdir");
    let p = guest("p");
    let (aot, _) = build_aot(&p, &dense_policy(), work.path());
    let full = exec(mvvm(Host::Native).arg("run").arg("-t").arg(&aot));
    assert_eq!(full.code, Some(0));
    for f in ["3", "mix"] {
        let image = work.path().join(format!("p-{f}.ckpt"));
        let taken = exec(
            mvvm(Host::Native)
                .args(["checkpoint", "-f", f, "-x", "7", "-t"])
                .arg(&aot)
                .arg("-o")
                .arg(&image),
        );
        assert_eq!(taken.code, Some(0), "-f {f}: {}", text(&taken.err));
        assert!(taken.out.len() < full.out.len(), "-f {f} stopped mid-way");
        let inspect = exec(
            mvvm(Host::Native)
                .arg("inspect")
                .arg(&image)
                .arg("-t")
                .arg(&aot),
        );
        let shown = text(&inspect.out);
        assert!(shown.contains("(matches)"), "{shown}");
        assert!(
            shown.contains("mix") && shown.contains("function entry"),
            "{shown}"
        );
        for (host, isa) in [(Host::Native, "pulley64"), (Host::Aarch64, "native")] {
            let r = exec(
                mvvm(host)
                    .arg("restore")
                    .arg("-t")
                    .arg(&aot)
                    .arg("-i")
                    .arg(&image)
                    .args(["--isa", isa]),
            );
            assert_eq!(r.code, Some(0), "{host:?} {isa}: {}", text(&r.err));
            assert_eq!(
                text(&[&taken.out[..], &r.out[..]].concat()),
                text(&full.out),
                "-f {f} -x 7 restored by {host:?} --isa {isa}"
            );
        }
    }
    // Both spellings name the same function: the two images are identical but for nothing.
    let a = Image::read(&work.path().join("p-3.ckpt")).expect("image");
    let b = Image::read(&work.path().join("p-mix.ckpt")).expect("image");
    assert_eq!(a.snapshot.frames, b.snapshot.frames);
}

/// `mvvm checkpoint -t sqlite_main.aot -f main`: a C guest stopped at the entry of `main`, found
/// by name in the name section the guest build keeps, finishes on pulley64 and on aarch64.
#[test]
fn a_c_guest_checkpointed_at_main_by_name() {
    let work = tempfile::tempdir().expect("tempdir");
    let sqlite = guest("sqlite_main");
    let (aot, program) = build_aot(&sqlite, &dense_policy(), work.path());
    assert!(
        program.info.resolve_function("main").is_some(),
        "sqlite_main has no function named main"
    );
    let dir = |name: &str| {
        let d = work.path().join(name);
        std::fs::create_dir_all(&d).expect("mkdir");
        d
    };
    let mut cmd = mvvm(Host::Native);
    cmd.arg("run").arg("-t").arg(&aot);
    guest_flags(&mut cmd, &sqlite, &dir("run"));
    let full = exec(&mut cmd);
    assert_eq!(full.code, Some(sqlite.exit), "run: {}", text(&full.err));
    let image = work.path().join("main.ckpt");
    let mut cmd = mvvm(Host::Native);
    cmd.args(["checkpoint", "-q", "-f", "main", "-t"])
        .arg(&aot)
        .arg("-o")
        .arg(&image);
    guest_flags(&mut cmd, &sqlite, &dir("ckpt"));
    let taken = exec(&mut cmd);
    assert_eq!(
        taken.code,
        Some(0),
        "checkpoint -f main: {}",
        text(&taken.err)
    );
    let shown = text(
        &exec(
            mvvm(Host::Native)
                .arg("inspect")
                .arg(&image)
                .arg("-t")
                .arg(&aot),
        )
        .out,
    );
    assert!(
        shown.contains("main"),
        "the image's top frame is main: {shown}"
    );
    for (host, isa) in [(Host::Native, "pulley64"), (Host::Aarch64, "native")] {
        let restore_dir = dir(&format!("restore-{host:?}"));
        copy_dir(&dir("ckpt"), &restore_dir);
        let mut cmd = mvvm(host);
        cmd.arg("restore")
            .arg("-t")
            .arg(&aot)
            .arg("-i")
            .arg(&image)
            .args(["--isa", isa]);
        if sqlite.data_dir {
            cmd.arg("--dir")
                .arg(format!("{}::/data", restore_dir.display()));
        }
        let r = exec(&mut cmd);
        assert_eq!(r.code, full.code, "{host:?} {isa}: {}", text(&r.err));
        assert_eq!(
            text(&[&taken.out[..], &r.out[..]].concat()),
            text(&full.out),
            "-f main restored by {host:?} --isa {isa}"
        );
    }
}

/// How a test stops a running program from outside.
#[derive(Clone, Copy, Debug)]
enum Interrupt {
    /// `mvvm checkpoint APP` with no trigger, then `kill -USR1`.
    CheckpointSignal,
    /// `mvvm run APP`, then `kill -USR1`.
    RunSignal,
    /// `mvvm run APP`, then `mvvm checkpoint --pid PID --wait`.
    RunPid,
}

/// A long loop at K=16, stopped from outside once it is running (`how`): the image goes to the
/// default path beside the .aot, `mvvm restore APP` finds it, and the two runs' output together
/// equal the uninterrupted run's.
fn interrupt_a_long_loop(how: Interrupt) {
    let work = tempfile::tempdir().expect("tempdir");
    let runs = work.path().join("runs");
    let loops = guest("loops");
    let (aot, _) = build_aot(&loops, &Policy::default_counter(), work.path());
    let full = exec(mvvm(Host::Native).arg("run").arg(&aot).arg("long"));
    assert_eq!(full.code, Some(0));
    let command = match how {
        Interrupt::CheckpointSignal => "checkpoint",
        Interrupt::RunSignal | Interrupt::RunPid => "run",
    };
    let mut child = mvvm(Host::Native)
        .arg(command)
        .arg(&aot)
        .arg("long")
        .env("XDG_RUNTIME_DIR", &runs)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    // The first progress lines: the loop is running.
    out.read_line(&mut first).expect("read");
    out.read_line(&mut first).expect("read");
    let pid = child.id() as libc::pid_t;
    let asker = match how {
        Interrupt::RunPid => Some(
            mvvm(Host::Native)
                .args(["checkpoint", "--wait", "--pid"])
                .arg(pid.to_string())
                .env("XDG_RUNTIME_DIR", &runs)
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn checkpoint --pid"),
        ),
        // SAFETY: sending a signal to our own child process.
        _ => {
            assert_eq!(unsafe { libc::kill(pid, libc::SIGUSR1) }, 0);
            None
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "{how:?}: no checkpoint within 60 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut out, &mut rest).expect("read");
    let taken = [first.as_bytes(), &rest].concat();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    let expected = match how {
        Interrupt::CheckpointSignal => 0,
        Interrupt::RunSignal | Interrupt::RunPid => mvvm_contract::status::CHECKPOINTED as i32,
    };
    assert_eq!(status.code(), Some(expected), "{how:?}: {err}");
    assert!(
        err.contains("mvvm: checkpoint: "),
        "{how:?}: the success line: {err}"
    );
    if let Some(asker) = asker {
        let o = asker.wait_with_output().expect("checkpoint --pid");
        let e = text(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "checkpoint --pid: {e}");
        assert!(e.contains("written to") && e.contains("loops.ckpt"), "{e}");
    }
    assert!(
        taken.len() < full.out.len(),
        "{how:?}: the loop was stopped mid-way"
    );
    assert!(aot.with_extension("ckpt").exists(), "image beside the .aot");
    assert!(
        std::fs::read_dir(runs.join("mvvm")).map_or(true, |d| d.count() == 0),
        "{how:?}: the run file is removed when the run ends"
    );
    let r = exec(mvvm(Host::Native).arg("restore").arg(&aot));
    assert_eq!(r.code, Some(0), "{}", text(&r.err));
    assert_eq!(text(&[&taken[..], &r.out[..]].concat()), text(&full.out));
}

#[test]
fn sigusr1_checkpoints_a_long_loop_under_checkpoint() {
    interrupt_a_long_loop(Interrupt::CheckpointSignal);
}

#[test]
fn sigusr1_checkpoints_a_long_loop_under_run() {
    interrupt_a_long_loop(Interrupt::RunSignal);
}

#[test]
fn checkpoint_pid_checkpoints_a_running_mvvm_run() {
    interrupt_a_long_loop(Interrupt::RunPid);
}

/// `mvvm checkpoint --pid` refuses a process that is not an `mvvm run`, and signals nothing.
#[test]
fn checkpoint_pid_refuses_a_process_that_is_not_an_mvvm_run() {
    let runs = tempfile::tempdir().expect("tempdir");
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .spawn()
        .expect("spawn sleep");
    let o = exec(
        mvvm(Host::Native)
            .args(["checkpoint", "--pid"])
            .arg(sleeper.id().to_string())
            .env("XDG_RUNTIME_DIR", runs.path()),
    );
    let still_running = sleeper.try_wait().expect("wait").is_none();
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert!(still_running, "the other process was not signalled");
    assert_clear_error(&o, "is not an mvvm run");
}

/// A change to an image's call stack.
type FrameChange = dyn Fn(&mut Vec<mvvm_checkpoint::Frame>);

/// One line on stderr, no panic, the bad-input exit status.
fn assert_clear_error(s: &Seen, mentions: &str) {
    let e = text(&s.err);
    let bad_input = i32::from(mvvm_contract::status::BAD_INPUT);
    assert_eq!(s.code, Some(bad_input), "exit status; stderr: {e}");
    assert!(!e.contains("panicked"), "panic: {e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(e.contains(mentions), "expected {mentions:?} in: {e}");
}

#[test]
fn damaged_truncated_foreign_images_wrong_module_missing_directory() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let fileio = guest("fileio");
    let (aot, _) = build_aot(&fileio, &dense_policy(), w);
    let (other, _) = build_aot(&guest("p"), &dense_policy(), w);
    let data = w.join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let image = w.join("fileio.ckpt");
    let taken = exec(
        mvvm(Host::Native)
            .args(["checkpoint", "-c", "300", "-t"])
            .arg(&aot)
            .arg("--dir")
            .arg(format!("{}::/data", data.display())),
    );
    assert_eq!(taken.code, Some(0), "{}", text(&taken.err));
    let good = std::fs::read(&image).expect("default image path");
    let restore = |img: &Path, t: &Path, dir: Option<&str>| {
        let mut c = mvvm(Host::Native);
        c.arg("restore").arg("-t").arg(t).arg("-i").arg(img);
        if let Some(d) = dir {
            c.arg("--dir").arg(d);
        }
        exec(&mut c)
    };
    let with = |name: &str, bytes: &[u8]| {
        let p = w.join(name);
        std::fs::write(&p, bytes).expect("write");
        p
    };
    let dir = format!("{}::/data", data.display());
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x10;
    assert_clear_error(
        &restore(&with("flipped", &flipped), &aot, Some(&dir)),
        "damaged (checksum mismatch)",
    );
    assert_clear_error(
        &restore(&with("short", &good[..mid]), &aot, Some(&dir)),
        "damaged (truncated",
    );
    assert_clear_error(&restore(&with("empty", b""), &aot, Some(&dir)), "bad magic");
    assert_clear_error(
        &restore(&aot, &aot, Some(&dir)),
        "not an mvvm checkpoint image",
    );
    let mut newer = good.clone();
    newer[8] = 99;
    assert_clear_error(
        &restore(&with("newer", &newer), &aot, Some(&dir)),
        "image version 99",
    );
    assert_clear_error(
        &restore(&image, &other, Some(&dir)),
        "taken from another program",
    );
    assert_clear_error(
        &restore(&image, &aot, Some("/no/such/dir::/data")),
        "no such directory",
    );
    assert_clear_error(
        &restore(
            &image,
            &aot,
            Some(&format!("{}::/elsewhere", data.display())),
        ),
        "pass --dir HOST::/data",
    );
    assert_clear_error(&restore(&w.join("none.ckpt"), &aot, None), "no such image");
    // Frames that do not fit the module: checked before anything runs.
    let decoded = Image::read(&image).expect("the good image");
    let misfit = |name: &str, change: &FrameChange| {
        let mut bad = decoded.clone();
        change(&mut bad.snapshot.frames);
        let p = w.join(name);
        bad.write(&p, None).expect("write");
        p
    };
    let cases: [(&str, &FrameChange, &str); 4] = [
        (
            "extra-slot",
            &|f| f[0].slots.push(mvvm_checkpoint::Value::I32(1)),
            "values where the site saves",
        ),
        (
            "no-such-site",
            &|f| f[0].site = 1_000_000,
            "names a site the module lacks",
        ),
        (
            "other-function",
            &|f| f[0].func = f.last().expect("frames").func.wrapping_add(1) % 3,
            "does not match this module",
        ),
        ("no-frames", &|f| f.clear(), "no frames"),
    ];
    for (name, change, mentions) in cases {
        let s = restore(&misfit(name, change), &aot, Some(&dir));
        assert_clear_error(&s, mentions);
        assert!(
            !text(&s.err).contains("trapped"),
            "{name}: bad input, not a trap"
        );
    }
    // Without --dir, the checkpoint's own directory is used only while it exists.
    let moved = w.join("moved");
    std::fs::rename(&data, &moved).expect("rename");
    assert_clear_error(&restore(&image, &aot, None), "pass --dir HOST::/data");
    // Bad triggers.
    let bad = |args: &[&str], mentions: &str| {
        let s = exec(
            mvvm(Host::Native)
                .arg("checkpoint")
                .arg("-t")
                .arg(&other)
                .args(args),
        );
        assert_clear_error(&s, mentions);
    };
    bad(&["-f", "nosuchfunction"], "no such function");
    bad(&["-f", "0"], "has no entry site");
    bad(&["-c", "0"], "polls count from 1");
    // None of the failures touched the good image.
    assert_eq!(std::fs::read(&image).expect("image"), good);
}

/// SIGKILL at random moments while `--leave-running` keeps writing images: the image on disk is
/// always complete, and restores to a run that ends exactly like an uninterrupted one.
#[test]
fn sigkill_while_writing_images_keeps_the_last_good_image() {
    let work = tempfile::tempdir().expect("tempdir");
    let loops = guest("loops");
    let (aot, _) = build_aot(&loops, &dense_policy(), work.path());
    let full = exec(
        mvvm(Host::Native)
            .arg("run")
            .arg("-t")
            .arg(&aot)
            .args(["--", "long"]),
    );
    assert_eq!(full.code, Some(0));
    let image = work.path().join("loops.ckpt");
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let first_seed = seed;
    let mut restored = 0;
    for round in 0..8 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_millis(30 + seed % 400);
        let mut child = mvvm(Host::Native)
            .args(["checkpoint", "--leave-running", "-c", "20000", "-t"])
            .arg(&aot)
            .args(["--", "long"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        child.kill().expect("SIGKILL");
        child.wait().expect("wait");
        if !image.exists() {
            assert_eq!(round, 0, "the image vanished (seed {first_seed})");
            continue;
        }
        let img =
            Image::read(&image).unwrap_or_else(|e| panic!("round {round}, seed {first_seed}: {e}"));
        assert!(!img.snapshot.frames.is_empty());
        let r = exec(mvvm(Host::Native).arg("restore").arg("-t").arg(&aot));
        assert_eq!(r.code, Some(0), "round {round}: {}", text(&r.err));
        assert!(
            full.out.ends_with(&r.out) && !r.out.is_empty(),
            "round {round} (seed {first_seed}): the restored run does not end like the full run:\n{}",
            text(&r.out)
        );
        restored += 1;
    }
    assert!(restored >= 6, "only {restored} rounds had an image");
}

/// `--leave-running`: the program is checkpointed again and again and goes on each time, rewinding
/// in place; its output and exit status are those of an uninterrupted run, and the last image it
/// wrote restores to the same ending. `--after` stops a running program by the clock.
#[test]
fn leave_running_goes_on_exactly_and_after_stops_by_the_clock() {
    for name in ["p", "fileio", "argsenv", "lua_main"] {
        let g = guest(name);
        let work = tempfile::tempdir().expect("tempdir");
        let w = work.path();
        let (aot, program) = build_aot(&g, &dense_policy(), w);
        let (total, _) = trigger_points(&g, &program);
        let ref_dir = w.join("ref");
        std::fs::create_dir(&ref_dir).expect("mkdir");
        let mut cmd = mvvm(Host::Native);
        cmd.arg("run").arg("-t").arg(&aot);
        guest_flags(&mut cmd, &g, &ref_dir);
        let full = exec(&mut cmd);
        let dir = w.join("data");
        std::fs::create_dir(&dir).expect("mkdir");
        let every = (total / 5).max(1).to_string();
        let mut cmd = mvvm(Host::Native);
        cmd.args(["checkpoint", "--leave-running", "-c", &every, "-t"])
            .arg(&aot);
        guest_flags(&mut cmd, &g, &dir);
        let kept = exec(&mut cmd);
        assert_eq!(
            text(&kept.out),
            text(&full.out),
            "{name}: --leave-running output"
        );
        assert_eq!(kept.code, full.code, "{name}: --leave-running exit status");
        assert_eq!(files(&dir), files(&ref_dir), "{name}: files");
        // The last image was taken at poll 4 * total / 5 or later.
        let img = Image::read(&aot.with_extension("ckpt")).expect("last image");
        assert!(
            img.snapshot.counters.polls >= 4 * (total / 5),
            "{name}: the last image is from poll {} of {total}",
            img.snapshot.counters.polls
        );
    }
    // --after on a long loop: stopped by the clock, restored to the same ending.
    let loops = guest("loops");
    let work = tempfile::tempdir().expect("tempdir");
    let (aot, _) = build_aot(&loops, &Policy::default_counter(), work.path());
    let full = exec(
        mvvm(Host::Native)
            .arg("run")
            .arg("-t")
            .arg(&aot)
            .args(["--", "long"]),
    );
    let taken = exec(
        mvvm(Host::Native)
            .args(["checkpoint", "--after", "150ms", "-t"])
            .arg(&aot)
            .args(["--", "long"]),
    );
    assert_eq!(taken.code, Some(0), "{}", text(&taken.err));
    assert!(
        taken.out.len() < full.out.len(),
        "--after stopped it mid-way"
    );
    let r = exec(mvvm(Host::Native).arg("restore").arg("-t").arg(&aot));
    assert_eq!(r.code, Some(0), "{}", text(&r.err));
    assert_eq!(
        text(&[&taken.out[..], &r.out[..]].concat()),
        text(&full.out)
    );
}

/// Files the program had open must be as they were: a file shorter than the program's offset is
/// refused, one that changed is refused unless `--allow-changed-files`, an unchanged copy resumes.
#[test]
fn files_changed_since_the_checkpoint_are_refused() {
    let work = tempfile::tempdir().expect("tempdir");
    let w = work.path();
    let (aot, _) = build_aot(&guest("renumber"), &dense_policy(), w);
    let data = w.join("data");
    std::fs::create_dir(&data).expect("mkdir");
    // By poll 24000 the program has written to a.txt and e.txt, and holds both open.
    let taken = exec(
        mvvm(Host::Native)
            .args(["checkpoint", "-q", "-c", "24000"])
            .arg("--dir")
            .arg(format!("{}::/data", data.display()))
            .arg(&aot),
    );
    assert_eq!(taken.code, Some(0), "{}", text(&taken.err));
    let restore = |dir: &Path, extra: &[&str]| {
        exec(
            mvvm(Host::Native)
                .arg("restore")
                .args(extra)
                .arg("--dir")
                .arg(format!("{}::/data", dir.display()))
                .arg(&aot),
        )
    };
    let copy = |name: &str| {
        let d = w.join(name);
        copy_dir(&data, &d);
        d
    };
    let short = copy("short");
    std::fs::write(short.join("a.txt"), b"a.t").expect("truncate");
    assert_clear_error(
        &restore(&short, &["--allow-changed-files"]),
        "shorter than the offset",
    );
    let grown = copy("grown");
    let mut a = std::fs::read(grown.join("a.txt")).expect("a.txt");
    a.extend_from_slice(b"someone else wrote this\n");
    std::fs::write(grown.join("a.txt"), &a).expect("append");
    assert_clear_error(&restore(&grown, &[]), "changed since the checkpoint");
    let r = restore(&grown, &["--allow-changed-files"]);
    assert_eq!(r.code, Some(0), "{}", text(&r.err));
    let same = copy("same");
    let r = restore(&same, &[]);
    assert_eq!(r.code, Some(0), "{}", text(&r.err));
    let expected =
        std::fs::read(mvvm_tests::guests_src().join("c/renumber.expected")).expect("expected");
    assert_eq!(
        text(&[&taken.out[..], &r.out[..]].concat()),
        text(&expected)
    );
}

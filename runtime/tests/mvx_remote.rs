//! Remote followers: `mvvm mvx --listen` with `mvvm mvx-follower --connect` over TCP on
//! 127.0.0.1, the follower natively or as the aarch64 build under qemu-aarch64; keys, refusals,
//! and a frame altered on the way.

use mvvm_contract::status::{BAD_INPUT, DIVERGED, HOST_FAILURE};
use mvvm_contract::{Policy, Target};
use mvvm_tests::tools::{assert_clear_error, build_aot, mvvm, number_after, stderr, Host};
use mvvm_tests::{all_guests, guests_dir, guests_src};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const MVVM: &str = env!("CARGO_BIN_EXE_mvvm");
/// How long any one process of these tests may take (qemu included).
const LIMIT: Duration = Duration::from_secs(120);

/// Builds guest `name` for this host, aarch64 and pulley64 into `dir`.
fn aot(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(format!("{name}.aot"));
    let wasm = guests_dir().join(format!("{name}.wasm"));
    let host = Target::host().expect("a supported host");
    let mut targets = vec![host, Target::Aarch64, Target::Pulley64];
    targets.dedup();
    build_aot(&wasm, &Policy::default_counter(), &targets, &out);
    out
}

/// A 32-byte key file in `dir`, different for each `seed`.
fn key_file(dir: &Path, seed: u8) -> PathBuf {
    let path = dir.join(format!("key{seed}"));
    let key: Vec<u8> = (0..32u8)
        .map(|b| b.wrapping_mul(31).wrapping_add(seed))
        .collect();
    std::fs::write(&path, key).expect("write the key");
    path
}

/// A master started with `mvvm mvx --listen 127.0.0.1:0 ARGS`, and the address it listens on.
struct Master {
    child: Child,
    addr: String,
    /// Its stderr after the line that says where it listens, as it arrives.
    stderr: Receiver<String>,
    /// The lines of `stderr` read so far.
    seen: Vec<String>,
}

impl Master {
    fn start(args: &[&str], app: &Path) -> Master {
        Master::start_with(args, app, &[])
    }

    /// `mvvm mvx --listen 127.0.0.1:0 ARGS APP GUEST_ARGS`.
    fn start_with(args: &[&str], app: &Path, guest_args: &[&str]) -> Master {
        let mut child = Command::new(MVVM)
            .args(["mvx", "--listen", "127.0.0.1:0"])
            .args(args)
            .arg(app)
            .args(guest_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the master");
        let (lines, stderr) = channel();
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        // Log lines (-v) may come first; the address ends the line that names it.
        let said = |l: &String| {
            l.starts_with("mvvm: mvx: waiting for") || l.starts_with("mvvm: mvx: running;")
        };
        let deadline = Instant::now() + LIMIT;
        let first = std::iter::from_fn(|| {
            stderr
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .ok()
        })
        .find(said)
        .expect("the master says where it listens");
        let addr = first.rsplit(' ').next().expect("an address").to_string();
        Master {
            child,
            addr,
            stderr,
            seen: Vec::new(),
        }
    }

    /// Waits (bounded) for the next stderr line that holds `needle`.
    fn line_with(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let line = self.stderr.recv_timeout(wait).unwrap_or_else(|_| {
                panic!("no line with {needle:?} in:\n{}", self.seen.join("\n"))
            });
            self.seen.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Waits (bounded) for the master to end: its status, stdout and the rest of its stderr.
    fn finish(mut self) -> (Option<i32>, String, String) {
        let status = wait_bounded(&mut self.child);
        let mut out = String::new();
        if let Some(mut o) = self.child.stdout.take() {
            o.read_to_string(&mut out).expect("read stdout");
        }
        let mut err = std::mem::take(&mut self.seen);
        err.extend(self.stderr.try_iter());
        (status, out, err.join("\n"))
    }

    /// The stderr lines that have arrived within `wait`.
    fn lines_within(&mut self, wait: Duration) -> String {
        let deadline = Instant::now() + wait;
        let mut got = Vec::new();
        while let Ok(line) = self
            .stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            got.push(line);
        }
        self.seen.extend(got.iter().cloned());
        got.join("\n")
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's exit status, waited for at most [`LIMIT`] (then it is killed and the test fails).
fn wait_bounded(child: &mut Child) -> Option<i32> {
    let deadline = Instant::now() + LIMIT;
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a process took longer than {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `mvvm mvx-follower --connect ADDR ARGS` on `host`, run to its end (bounded).
fn follower(host: Host, addr: &str, args: &[&str]) -> Output {
    finished(start_follower(host, addr, args))
}

/// `mvvm mvx-follower --connect ADDR ARGS` on `host`, started.
fn start_follower(host: Host, addr: &str, args: &[&str]) -> Child {
    mvvm(Path::new(MVVM), host)
        .args(["mvx-follower", "--connect", addr])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn the follower")
}

/// A started follower's output once it ends (bounded).
fn finished(mut child: Child) -> Output {
    wait_bounded(&mut child);
    child.wait_with_output().expect("the follower's output")
}

fn expected(name: &str) -> String {
    let g = all_guests().into_iter().find(|g| g.name == name);
    String::from_utf8(g.expect("a guest").expected()).expect("text")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn an_aarch64_follower_under_qemu_agrees_with_a_native_master_and_a_wrong_key_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = aot(dir.path(), "writes");
    let (key, wrong) = (key_file(dir.path(), 1), key_file(dir.path(), 2));
    let mut master = Master::start(&["--key-file", path(&key)], &writes);

    let refused = follower(
        Host::Native,
        &master.addr,
        &["--key-file", path(&wrong), path(&writes)],
    );
    assert_clear_error(&refused, BAD_INPUT, "does not hold this key");
    let unkeyed = follower(Host::Native, &master.addr, &[path(&writes)]);
    assert_clear_error(&unkeyed, BAD_INPUT, "does not hold this key");
    let warnings = master.lines_within(Duration::from_secs(2));
    assert_eq!(
        warnings
            .matches("refused a follower from 127.0.0.1")
            .count(),
        2,
        "{warnings}"
    );

    let joined = follower(
        Host::Aarch64,
        &master.addr,
        &["--key-file", path(&key), path(&writes)],
    );
    assert_eq!(joined.status.code(), Some(0), "{}", stderr(&joined));
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(out, expected("writes"));
}

#[test]
fn an_aarch64_follower_that_differs_at_its_tenth_write_stops_the_native_master_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = aot(dir.path(), "writes");
    let diverge = aot(dir.path(), "writes_diverge");
    let key = key_file(dir.path(), 3);
    let master = Master::start(&["--key-file", path(&key)], &writes);
    let f = follower(
        Host::Aarch64,
        &master.addr,
        &["--key-file", path(&key), path(&diverge)],
    );
    assert_eq!(f.status.code(), Some(i32::from(DIVERGED)), "{}", stderr(&f));
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(i32::from(DIVERGED)), "{err}");
    let nine: String = expected("writes").split_inclusive('\n').take(9).collect();
    assert_eq!(out, nine);
    for needle in [
        "follower 1 (writes_diverge.aot on aarch64 at 127.0.0.1:",
        "diverged from the master at event 10",
        "argument 1 of fd_write (the bytes of its iovecs)",
        "follower's wasm stack",
        "__original_main",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
}

#[test]
fn a_remote_follower_gets_arguments_environment_and_directories_from_the_master() {
    let dir = tempfile::tempdir().expect("tempdir");
    let argsenv = aot(dir.path(), "argsenv");
    let args = ["-e", "MVVM_A=1", "-e", "MVVM_B=two"];
    let master = Master::start(&args, &argsenv);
    let f = follower(Host::Native, &master.addr, &[path(&argsenv)]);
    let (status, out, err) = master.finish();
    // argsenv exits with argc (1); the follower with the same.
    assert_eq!(status, Some(1), "{err}");
    assert_eq!(f.status.code(), Some(1), "{}", stderr(&f));
    assert!(out.contains("env MVVM_A=1\nenv MVVM_B=two\n"), "{out}");

    let fileio = aot(dir.path(), "fileio");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).expect("mkdir");
    let map = format!("{}::/data", data.display());
    let master = Master::start(&["--dir", &map, "--followers", "2"], &fileio);
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| follower(Host::Native, &master.addr, &[path(&fileio)]));
        let b = s.spawn(|| {
            let args = ["--isa", "pulley64", path(&fileio)];
            follower(Host::Native, &master.addr, &args)
        });
        (a.join().expect("a"), b.join().expect("b"))
    });
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(a.status.code(), Some(0), "{}", stderr(&a));
    assert_eq!(b.status.code(), Some(0), "{}", stderr(&b));
    assert_eq!(out, expected("fileio"));
    let written = std::fs::read(data.join("out.txt")).expect("the master wrote out.txt");
    let want = std::fs::read(guests_src().join("c/fileio.out.txt.expected")).expect("expected");
    assert_eq!(written, want, "each write happened once, at the master");
}

/// Forwards one connection from `listener` to `to`, flipping the byte at `offset` of what the
/// dialing side sends (the handshake is 75 bytes: the first frame starts there).
fn tampering_proxy(listener: TcpListener, to: String, offset: usize) {
    std::thread::spawn(move || {
        let (mut dialer, _) = listener.accept().expect("accept");
        let mut server = TcpStream::connect(to).expect("connect to the master");
        let (mut d2, mut s2) = (
            dialer.try_clone().expect("clone"),
            server.try_clone().expect("clone"),
        );
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut s2, &mut d2);
            let _ = d2.shutdown(std::net::Shutdown::Write);
        });
        let mut seen = 0;
        let mut buf = [0u8; 4096];
        while let Ok(n) = dialer.read(&mut buf) {
            if n == 0 {
                break;
            }
            if (seen..seen + n).contains(&offset) {
                buf[offset - seen] ^= 0x20;
            }
            seen += n;
            if server.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = server.shutdown(std::net::Shutdown::Write);
    });
}

#[test]
fn a_tampered_frame_is_refused_and_reported_and_the_run_goes_on_with_an_honest_follower() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = aot(dir.path(), "writes");
    let key = key_file(dir.path(), 4);
    let mut master = Master::start(&["--key-file", path(&key)], &writes);
    let proxy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let proxy_addr = proxy.local_addr().expect("addr").to_string();
    // The follower's first frame says what it runs; one byte of its body is flipped.
    tampering_proxy(proxy, master.addr.clone(), 75 + 4 + 2);
    let mut tampered = mvvm(Path::new(MVVM), Host::Native)
        .args(["mvx-follower", "--connect", &proxy_addr, "--key-file"])
        .arg(&key)
        .arg(&writes)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let warning = master.lines_within(Duration::from_secs(3));
    assert!(
        warning.contains("refused a follower from 127.0.0.1:")
            && warning.contains("frame 0 from")
            && warning.contains("failed its authentication"),
        "{warning}"
    );
    // The tampered follower learns it was not accepted when the master drops its link.
    wait_bounded(&mut tampered);
    let o = tampered.wait_with_output().expect("output");
    assert_clear_error(&o, HOST_FAILURE, "closed the link");
    let honest = follower(
        Host::Native,
        &master.addr,
        &["--key-file", path(&key), path(&writes)],
    );
    assert_eq!(honest.status.code(), Some(0), "{}", stderr(&honest));
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(out, expected("writes"));
}

#[test]
fn without_a_key_only_loopback_is_allowed_and_bad_keys_are_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = aot(dir.path(), "writes");
    let o = Command::new(MVVM)
        .args(["mvx", "--listen", "0.0.0.0:0"])
        .arg(&writes)
        .env_remove("MVVM_KEY")
        .output()
        .expect("spawn");
    assert_clear_error(&o, BAD_INPUT, "is not a loopback address");
    let short = dir.path().join("short");
    std::fs::write(&short, "abc\n").expect("write");
    let o = Command::new(MVVM)
        .args(["mvx-follower", "--connect", "127.0.0.1:9", "--key-file"])
        .arg(&short)
        .arg(&writes)
        .output()
        .expect("spawn");
    assert_clear_error(&o, BAD_INPUT, "the key has 3 bytes; use at least 16");
    let o = Command::new(MVVM)
        .args(["mvx", "--listen", "127.0.0.1:0"])
        .arg(&writes)
        .env("MVVM_KEY", "short")
        .output()
        .expect("spawn");
    assert_clear_error(&o, BAD_INPUT, "MVVM_KEY: the key has 5 bytes");
}

/// What `mvvm run APP ARGS` prints, natively.
fn single_run(app: &Path, args: &[&str]) -> String {
    let o = Command::new(MVVM)
        .arg("run")
        .arg(app)
        .args(args)
        .output()
        .expect("spawn");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    String::from_utf8(o.stdout).expect("text")
}

#[test]
fn followers_join_a_running_master_from_its_image_natively_and_on_aarch64_under_qemu() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ticker = aot(dir.path(), "ticker");
    let key = key_file(dir.path(), 5);
    let (k, app) = (path(&key), path(&ticker));
    let ticks = ["150", "40"];
    let late = [
        "-v",
        "--key-file",
        k,
        "--followers",
        "2",
        "--join-after",
        "0.3",
    ];
    let mut master = Master::start_with(&late, &ticker, &ticks);
    // The native follower arrives before the delay is over and joins when it is; the aarch64
    // one is started only then, so it joins later, from a later snapshot.
    let native = start_follower(Host::Native, &master.addr, &["--key-file", k, app]);
    let first = master.line_with("joined after event");
    let arm = start_follower(Host::Aarch64, &master.addr, &["--key-file", k, app]);
    let second = master.line_with("joined after event");
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(out, single_run(&ticker, &ticks));
    let host = std::env::consts::ARCH;
    assert!(
        first.contains(&format!("follower 1 (ticker.aot on {host} at 127.0.0.1:")),
        "{first}"
    );
    assert!(
        second.contains("follower 2 (ticker.aot on aarch64 at 127.0.0.1:"),
        "{second}"
    );
    let (a, b) = (
        number_after(&first, "after event "),
        number_after(&second, "after event "),
    );
    assert!(0 < a && a < b, "joined after events {a} and {b}:\n{err}");
    let events: u64 = err
        .split(" events, on which every follower agreed")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no agreement in:\n{err}"));
    assert!(
        b < events,
        "the aarch64 follower joined after the end:\n{err}"
    );
    for (f, seq) in [(finished(native), a), (finished(arm), b)] {
        assert_eq!(f.status.code(), Some(0), "{}", stderr(&f));
        assert!(
            stderr(&f).contains(&format!("from its snapshot after event {seq}")),
            "{}",
            stderr(&f)
        );
        assert!(f.stdout.is_empty(), "a follower's output never leaves");
    }
}

#[test]
fn a_lost_remote_follower_frees_its_place_for_another_and_losing_the_last_one_stops_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ticker = aot(dir.path(), "ticker");
    let app = path(&ticker);
    let ticks = ["120", "40"];
    let late = ["-v", "--followers", "2", "--join-after", "0.2"];
    let mut master = Master::start_with(&late, &ticker, &ticks);
    let mut doomed = start_follower(Host::Native, &master.addr, &[app]);
    let kept = start_follower(Host::Native, &master.addr, &[app]);
    master.line_with("joined after event");
    master.line_with("joined after event");
    doomed.kill().expect("kill a follower");
    let _ = doomed.wait();
    let lost = master.line_with("mvx: lost follower");
    // A killed process's connection closes, or is reset if frames to it were unread.
    assert!(
        lost.contains("1 follower(s) go on, and a new one may join in its place"),
        "{lost}"
    );
    let third = start_follower(Host::Native, &master.addr, &[app]);
    let joined = master.line_with("follower 3 (ticker.aot");
    assert!(joined.contains("joined after event"), "{joined}");
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(0), "{err}");
    assert_eq!(out, single_run(&ticker, &ticks));
    assert!(err.contains("on which every follower agreed"), "{err}");
    for f in [finished(kept), finished(third)] {
        assert_eq!(f.status.code(), Some(0), "{}", stderr(&f));
    }

    // With one place, the follower lost is the last: the master must not run on unwatched.
    let one = ["-v", "--followers", "1", "--join-after", "0.2"];
    let mut master = Master::start_with(&one, &ticker, &ticks);
    let mut only = start_follower(Host::Native, &master.addr, &[app]);
    master.line_with("joined after event");
    only.kill().expect("kill the follower");
    let _ = only.wait();
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(i32::from(DIVERGED)), "{err}");
    assert!(
        err.contains("the follower stopped without a report") || err.contains("field:    link"),
        "{err}"
    );
    let whole = single_run(&ticker, &ticks);
    assert!(
        whole.starts_with(&out) && out.len() < whole.len(),
        "stopped early: {out}"
    );
}

#[test]
fn a_frame_tampered_mid_run_stops_the_master_before_the_call_it_was_to_agree_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = aot(dir.path(), "writes");
    let key = key_file(dir.path(), 6);
    let master = Master::start(&["--key-file", path(&key)], &writes);
    let proxy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let proxy_addr = proxy.local_addr().expect("addr").to_string();
    // The follower's frame 0 is its `Join` (a length, then "writes.aot" and the ISA's name, each
    // with a one-byte length, then the tag); frame 1 is its agreement to the first write.
    let join = 4 + (1 + "writes.aot".len()) + (1 + std::env::consts::ARCH.len()) + 32;
    tampering_proxy(proxy, master.addr.clone(), 75 + join + 4);
    let f = follower(
        Host::Native,
        &proxy_addr,
        &["--key-file", path(&key), path(&writes)],
    );
    let (status, out, err) = master.finish();
    assert_eq!(status, Some(i32::from(DIVERGED)), "{err}");
    assert_eq!(out, "", "nothing was written before the follower agreed");
    assert!(
        err.contains("field:    link")
            && err.contains("frame 1 from")
            && err.contains("failed its authentication"),
        "{err}"
    );
    assert_ne!(f.status.code(), Some(0), "{}", stderr(&f));
}

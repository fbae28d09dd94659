//! `--tcplisten`: an HTTP/1.1 server guest (`test/guests/c/http_server.c`) answers real TCP
//! clients on 127.0.0.1 under `mvvm run`, and under `mvvm mvx` with a pulley64 follower, which
//! is answered by the master and never touches the socket.

use mvvm_contract::{Policy, Target};
use mvvm_tests::guests_dir;
use mvvm_tests::tools::{build_aot, stderr};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MVVM: &str = env!("CARGO_BIN_EXE_mvvm");
const RESPONSE: &str =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\nhello from mvvm\n";

fn server_aot(dir: &Path) -> PathBuf {
    let out = dir.join("http_server.aot");
    let targets = [Target::host().expect("a supported host"), Target::Pulley64];
    build_aot(
        &guests_dir().join("http_server.wasm"),
        &Policy::default_counter(),
        &targets,
        &out,
    );
    out
}

/// A port that was free a moment ago.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// Connects to `port`, retrying while the server starts (bounded).
fn connect(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(30)))
                    .expect("timeout");
                return s;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("the server never listened: {e}"),
        }
    }
}

/// Reads exactly `n` responses from `s`.
fn responses(s: &mut TcpStream, n: usize) -> String {
    let want = RESPONSE.len() * n;
    let mut got = vec![0; want];
    s.read_exact(&mut got).expect("the responses");
    String::from_utf8(got).expect("text")
}

/// Two keep-alive requests on one connection (sent at once), then one that closes.
fn exercise(port: u16) {
    let mut s = connect(port);
    s.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /two HTTP/1.1\r\nHost: a\r\n\r\n")
        .expect("send");
    assert_eq!(responses(&mut s, 2), RESPONSE.repeat(2));
    drop(s);
    let mut s = connect(port);
    s.write_all(b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n")
        .expect("send");
    assert_eq!(responses(&mut s, 1), RESPONSE);
}

fn wait(mut child: Child) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the server did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("output")
}

fn spawn(args: &[&str], app: &Path, port: u16) -> Child {
    Command::new(MVVM)
        .args(args)
        .arg("--tcplisten")
        .arg(format!("127.0.0.1:{port}"))
        .arg(app)
        .arg("3")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

#[test]
fn a_server_answers_under_run_and_under_mvx_with_a_pulley64_follower() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = server_aot(dir.path());
    let follower = format!("{}@pulley64", app.display());
    for args in [vec!["run"], vec!["mvx", "--follower", &follower]] {
        let port = free_port();
        let child = spawn(&args, &app, port);
        exercise(port);
        let o = wait(child);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(String::from_utf8_lossy(&o.stdout), "served 3 requests\n");
    }
}

#[test]
fn a_port_in_use_is_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let app = server_aot(dir.path());
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let o = wait(spawn(&["run"], &app, port));
    mvvm_tests::tools::assert_clear_error(&o, 126, "cannot listen there");
}

//! The benchmark tools (overhead, latency, plot) refuse a bad command line with one line, the usage and exit status 2,
//! before measuring anything.

use std::process::Command;

fn refuses(tool: &str, exe: &str, args: &[&str], says: &str) {
    let out = Command::new(exe).args(args).output().expect("run the tool");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{tool} {args:?}: {err}");
    assert!(
        err.contains(says) && err.contains("usage: "),
        "{tool} {args:?} should say {says:?} and the usage: {err}"
    );
    assert!(out.stdout.is_empty(), "{tool} {args:?} measured something");
}

#[test]
fn overhead_refuses_bad_arguments() {
    let exe = env!("CARGO_BIN_EXE_overhead");
    refuses(
        "overhead",
        exe,
        &["--bogus"],
        "unknown argument \"--bogus\"",
    );
    refuses("overhead", exe, &["--pairs", "0"], "--pairs needs");
    refuses("overhead", exe, &["--scale-div"], "--scale-div needs");
    refuses("overhead", exe, &["--only", "nothing"], "workloads: matmul");
    refuses("overhead", exe, &["--variants", "nope"], "counter K=16");
}

#[test]
fn latency_refuses_bad_arguments() {
    let exe = env!("CARGO_BIN_EXE_latency");
    refuses("latency", exe, &["--csv"], "--csv needs a file");
    refuses("latency", exe, &["zero"], "\"zero\" is neither an option");
    refuses("latency", exe, &["0"], "size in MiB");
}

#[test]
fn plot_refuses_a_wrong_argument_count() {
    let exe = env!("CARGO_BIN_EXE_plot");
    refuses(
        "plot",
        exe,
        &["only-one.csv"],
        "expected three arguments, got 1",
    );
}

//! Shared helpers for mvvm's integration tests: the guest programs (built by `build.rs` into
//! `MVVM_GUESTS_DIR`), how each is run, and what it must print.

use mvvm_contract::{EngineOptions, Policy};
use mvvm_runtime::{DirMap, Isa, Output, Program, RunConfig};
use std::path::{Path, PathBuf};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// Where `build.rs` put the compiled guests.
pub fn guests_dir() -> PathBuf {
    PathBuf::from(env!("MVVM_GUESTS_DIR"))
}

/// The source directory of the guests (for `.expected` files).
pub fn guests_src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("guests")
}

/// One guest program and how to run it.
#[derive(Clone, Debug)]
pub struct Guest {
    /// File stem.
    pub name: &'static str,
    /// `wat` or `c`.
    pub lang: &'static str,
    /// Arguments after argv[0].
    pub args: &'static [&'static str],
    /// Environment.
    pub env: &'static [(&'static str, &'static str)],
    /// Needs an empty directory preopened as `/data`.
    pub data_dir: bool,
    /// Expected exit status.
    pub exit: i32,
    /// Large program (SQLite, Lua): fewer policy combinations in the slow tests.
    pub big: bool,
}

const fn g(name: &'static str, lang: &'static str) -> Guest {
    Guest {
        name,
        lang,
        args: &[],
        env: &[],
        data_dir: false,
        exit: 0,
        big: false,
    }
}

/// Every guest program.
pub fn all_guests() -> Vec<Guest> {
    vec![
        g("p", "wat"),
        g("blocks", "wat"),
        g("multivalue", "wat"),
        g("indirect", "wat"),
        g("simd", "wat"),
        g("tailcall", "wat"),
        g("loops", "wat"),
        g("globals", "wat"),
        g("switch", "wat"),
        g("compute", "c"),
        g("fnptr", "c"),
        Guest {
            data_dir: true,
            ..g("fileio", "c")
        },
        Guest {
            data_dir: true,
            ..g("renumber", "c")
        },
        Guest {
            args: &["one", "two words"],
            env: &[("MVVM_A", "ay"), ("MVVM_B", "bee"), ("OTHER", "x")],
            exit: 3,
            ..g("argsenv", "c")
        },
        g("simd128", "c"),
        g("writes", "c"),
        Guest {
            big: true,
            ..g("sqlite_main", "c")
        },
        Guest {
            big: true,
            ..g("lua_main", "c")
        },
    ]
}

impl Guest {
    /// The compiled module.
    pub fn wasm(&self) -> Vec<u8> {
        built_module(&guests_dir(), self.name)
    }

    /// The stdout it must print.
    pub fn expected(&self) -> Vec<u8> {
        let p = guests_src()
            .join(self.lang)
            .join(format!("{}.expected", self.name));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A run configuration capturing stdout and stderr; `dir` is preopened as `/data` if needed.
    pub fn config(&self, dir: Option<&Path>) -> (RunConfig, MemoryOutputPipe, MemoryOutputPipe) {
        let out = MemoryOutputPipe::new(1 << 24);
        let err = MemoryOutputPipe::new(1 << 24);
        let mut argv = vec![self.name.to_string()];
        argv.extend(self.args.iter().map(|s| s.to_string()));
        let cfg = RunConfig {
            argv,
            env: self
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dirs: match (self.data_dir, dir) {
                (true, Some(d)) => vec![DirMap {
                    host: d.to_path_buf(),
                    guest: "/data".into(),
                }],
                (true, None) => panic!("guest {} needs a data directory", self.name),
                _ => vec![],
            },
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
            ..RunConfig::default()
        };
        (cfg, out, err)
    }
}

/// `NAME.wasm` from `dir`, where `build.rs` put it.
fn built_module(dir: &std::path::Path, name: &str) -> Vec<u8> {
    let p = dir.join(format!("{name}.wasm"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{} not built ({e})", p.display()))
}

/// Where `build.rs` put the compiled benchmark workloads (`guests/bench/*.c`).
pub fn bench_dir() -> PathBuf {
    PathBuf::from(env!("MVVM_BENCH_DIR"))
}

/// A benchmark workload (`guests/bench/NAME.c`), run as `NAME SCALE`: the work grows linearly with
/// SCALE, and the output (checksums) is fixed for a given SCALE.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// File stem.
    pub name: &'static str,
    /// The SCALE benchmarks run it at (a few hundred milliseconds natively, uninstrumented).
    pub bench_scale: u32,
}

/// Every benchmark workload: our own kernels, then SQLite, Lua and zlib from crates.io sources.
pub fn bench_workloads() -> Vec<Workload> {
    let w = |name, bench_scale| Workload { name, bench_scale };
    vec![
        w("matmul", 80),
        w("lu", 100),
        w("nbody", 80),
        w("sort", 60),
        w("graph", 60),
        w("cipher", 80),
        w("strsearch", 60),
        w("recursion", 100),
        w("simd_kernel", 100),
        w("sqlite_bench", 25),
        w("lua_bench", 20),
        w("zlib_main", 25),
    ]
}

impl Workload {
    /// The compiled module.
    pub fn wasm(&self) -> Vec<u8> {
        built_module(&bench_dir(), self.name)
    }

    /// What it prints at SCALE 1.
    pub fn expected(&self) -> Vec<u8> {
        let p = guests_src()
            .join("bench")
            .join(format!("{}.expected", self.name));
        std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A run configuration at `scale`, capturing stdout and stderr.
    pub fn config(&self, scale: u32) -> (RunConfig, MemoryOutputPipe, MemoryOutputPipe) {
        let out = MemoryOutputPipe::new(1 << 24);
        let err = MemoryOutputPipe::new(1 << 24);
        let cfg = RunConfig {
            argv: vec![self.name.to_string(), scale.to_string()],
            stdout: Output::Capture(out.clone()),
            stderr: Output::Capture(err.clone()),
            ..RunConfig::default()
        };
        (cfg, out, err)
    }
}

/// The policies the tests exercise, with a label.
pub fn policies() -> Vec<(&'static str, Policy)> {
    let counter = |k: u8| Policy {
        threshold_bits: k,
        ..Policy::default_counter()
    };
    vec![
        ("plain", Policy::plain()),
        ("counter-loop K=16", counter(16)),
        (
            "entry+counter-loop K=4",
            Policy {
                function_entry: true,
                ..counter(4)
            },
        ),
        (
            "entry+loop",
            Policy {
                function_entry: true,
                loop_header: true,
                counter_loop: false,
                threshold_bits: 0,
                instrument: true,
            },
        ),
    ]
}

/// The policy with the most sites, used where checkpoints are taken.
pub fn dense_policy() -> Policy {
    Policy {
        function_entry: true,
        threshold_bits: 4,
        ..Policy::default_counter()
    }
}

/// Compiles a guest for an ISA.
pub fn program(wasm: &[u8], policy: &Policy, isa: Isa) -> Program {
    Program::from_wasm(wasm, policy, isa, &EngineOptions::default())
        .unwrap_or_else(|e| panic!("cannot build program: {e}"))
}

/// The output captured so far.
pub fn contents(p: &MemoryOutputPipe) -> Vec<u8> {
    p.contents().to_vec()
}
pub mod decode_fuzz;
pub mod referee;

/// Running the built command-line tools, natively and (the aarch64 build) under qemu.
pub mod tools {
    use mvvm_contract::{Policy, Target};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    /// The aarch64 build of `mvvm` (cross-compiled by `scripts/test.sh`), in the same target
    /// directory as `native`, the host's `mvvm` (`target/<profile>/mvvm`).
    pub fn aarch64_mvvm(native: &Path) -> PathBuf {
        let target_dir = native
            .parent()
            .and_then(Path::parent)
            .expect("mvvm lies in target/<profile>/");
        let p = target_dir.join("aarch64-unknown-linux-gnu/release/mvvm");
        assert!(
            p.exists(),
            "{} not built; `bash scripts/test.sh` cross-compiles it",
            p.display()
        );
        p
    }

    /// Builds `input` (`.wasm` or `.wat`) into an `.aot` at `out` for `targets`, as `mvvm-aot` does.
    pub fn build_aot(input: &Path, policy: &Policy, targets: &[Target], out: &Path) {
        let bytes = std::fs::read(input).expect("read the module");
        let wasm = mvvm_aot::transform::parse_input(&bytes).expect("a module");
        let aot = mvvm_aot::build::build(
            &wasm,
            policy,
            targets,
            &mvvm_contract::EngineOptions::default(),
        )
        .expect("build");
        mvvm_contract::file::atomic_write(out, &aot.encode()).expect("write the .aot");
    }

    /// A command's stderr, as text.
    pub fn stderr(o: &std::process::Output) -> String {
        String::from_utf8_lossy(&o.stderr).into_owned()
    }

    /// The number that follows the first `marker` in `text` (e.g. the event in mvvm's line
    /// `... joined after event 21, ...`).
    pub fn number_after(text: &str, marker: &str) -> u64 {
        let (_, after) = text
            .split_once(marker)
            .unwrap_or_else(|| panic!("no {marker:?} in:\n{text}"));
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no number after {marker:?} in:\n{text}"))
    }

    /// The demo program, `test/guests/wat/p.wat`.
    pub fn demo_wat() -> PathBuf {
        super::guests_src().join("wat/p.wat")
    }

    /// Asserts what a refused command must show: the exit status `code`, one line on stderr that
    /// mentions `mentions`, and no panic.
    pub fn assert_clear_error(o: &std::process::Output, code: u8, mentions: &str) {
        let e = String::from_utf8_lossy(&o.stderr);
        let code = i32::from(code);
        assert_eq!(o.status.code(), Some(code), "exit status; stderr: {e}");
        assert!(!e.contains("panicked"), "panic: {e}");
        assert_eq!(
            e.trim_end().lines().count(),
            1,
            "expected one line, got: {e}"
        );
        assert!(e.contains(mentions), "expected {mentions:?} in: {e}");
    }

    /// Where `mvvm` runs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Host {
        /// This machine.
        Native,
        /// The aarch64 build under `qemu-aarch64`.
        Aarch64,
    }

    /// A `mvvm` command on `host`, with stdin closed; `native` is the host's `mvvm` (in its own
    /// package's tests, `env!("CARGO_BIN_EXE_mvvm")`).
    pub fn mvvm(native: &Path, host: Host) -> Command {
        let mut c = match host {
            Host::Native => Command::new(native),
            Host::Aarch64 => {
                // The arm64 libc comes from Debian's multiarch libc6:arm64 (a dependency of
                // libstd-rust-web-dev:arm64). Not `-L /usr/aarch64-linux-gnu`: with the cross
                // toolchain's libc as sysroot, qemu 7.2 hangs in the first blocking WASI call.
                let mut c = Command::new("qemu-aarch64");
                c.arg(aarch64_mvvm(native));
                c
            }
        };
        c.stdin(Stdio::null());
        c
    }
}

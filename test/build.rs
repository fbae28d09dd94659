//! Build script of `mvvm-tests`: builds the guest programs the tests run and
//! the benchmark workloads.
//!
//! * `guests/wat/*.wat` -> `$OUT_DIR/guests/<name>.wasm` with the `wat` crate
//!   (the name section with the `$names` is emitted by default).
//! * `guests/c/*.c` -> `$OUT_DIR/guests/<name>.wasm` and
//!   `guests/bench/*.c` -> `$OUT_DIR/bench/<name>.wasm` with clang for
//!   `wasm32-wasi` against wasi-libc. A program's file name says what it is
//!   linked with: `sqlite_*.c` (`sqlite_main`, `sqlite_bench`) with the SQLite
//!   amalgamation shipped in the `libsqlite3-sys` crate, `lua_*.c`
//!   (`lua_main`, `lua_bench`) with the Lua 5.4 sources shipped in the
//!   `lua-src` crate, `zlib_*.c` (`zlib_main`) with the zlib sources shipped
//!   in the `libz-sys` crate (`src/zlib`). `simd*.c` get `-msimd128`. The
//!   libraries are compiled to objects in `$OUT_DIR/guest-obj`, each
//!   recompiled only when its source or its command line changed.
//!
//! The directories are exported to the tests as `MVVM_GUESTS_DIR` and
//! `MVVM_BENCH_DIR`.
//!
//! The flags below are the recipe; `guests/build-guests.sh` uses exactly the
//! same ones to build the guests by hand. Keep the two in sync.
//!
//! Environment:
//! * `MVVM_WASM_CC`: the C compiler (default `clang`).
//! * `MVVM_WASI_SYSROOT`: a WASI sysroot (e.g. wasi-sdk's). Default: a sysroot
//!   of symlinks made in `$OUT_DIR/wasi-sysroot` from Debian's `wasi-libc`
//!   (`include -> /usr/include/wasm32-wasi`,
//!   `lib/wasm32-wasi -> /usr/lib/wasm32-wasi`), so that no host (glibc)
//!   header can leak into a guest.
//! * `MVVM_SQLITE_SRC_DIR` / `MVVM_LUA_SRC_DIR` / `MVVM_ZLIB_SRC_DIR`:
//!   override where the SQLite amalgamation / Lua 5.4 sources / zlib sources
//!   are (see `find_sqlite_src`, `find_lua_src`, `find_zlib_src`).
//!
//! How the SQLite, Lua and zlib sources are found (no hard-coded paths):
//! none of the crates hands its source directory to dependents in a usable
//! way. `lua-src` has no build script and its library only knows its
//! directory through a private `env!("CARGO_MANIFEST_DIR")` inside
//! `Build::try_build`, which compiles Lua itself with flags this
//! clang/wasi-libc can't use (wasm exception handling, libsetjmp).
//! `libsqlite3-sys` prints `cargo:include=<crate>/sqlite3` (so dependents get
//! `DEP_SQLITE3_INCLUDE`) only with its `bundled` feature; `libz-sys` prints
//! `cargo:include` only for the system zlib's headers or for a copy of
//! `zlib.h`/`zconf.h` in its own `OUT_DIR`, never for its sources. And cargo
//! passes `DEP_*` variables only to the build scripts of packages that have
//! the `links` crate as a *normal* dependency, not as a build-dependency. So:
//! `DEP_SQLITE3_INCLUDE` is used when present, and otherwise the crates are
//! looked up where cargo extracted them,
//! `$CARGO_HOME/registry/src/*/<name>-<version>`, with the version this
//! package resolved to taken from the workspace's `Cargo.lock`. The three
//! crates are build-dependencies only so that cargo downloads and extracts
//! them; this script uses none of their code.

use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

// ---- the recipe (keep in sync with guests/build-guests.sh) ----
const TARGET_FLAG: &str = "--target=wasm32-wasi";
const OPT_FLAGS: &[&str] = &["-O2"];
const OWN_WARN: &[&str] = &["-Wall", "-Wextra"];
const THIRD_PARTY_WARN: &[&str] = &["-w"];
/// The link flags. A program is linked in a command of its own, without `-O`: on an optimizing
/// link clang runs binaryen's `wasm-opt` when it is installed, and `wasm-opt` drops the name
/// section that `-f NAME` and backtraces read, so the guests would differ with the machine.
const LDFLAGS: &[&str] = &["-Wl,-z,stack-size=1048576"];
const SIMD_FLAGS: &[&str] = &["-msimd128"];
const SQLITE_DEFS: &[&str] = &[
    "-DSQLITE_THREADSAFE=0",
    "-DSQLITE_OMIT_LOAD_EXTENSION",
    "-DSQLITE_OMIT_SHARED_CACHE",
    "-DSQLITE_OMIT_WAL",
    "-DSQLITE_TEMP_STORE=3",
    "-DSQLITE_DEFAULT_MEMSTATUS=0",
    "-DLONGDOUBLE_TYPE=double",
    "-D_WASI_EMULATED_MMAN",
    "-D_WASI_EMULATED_GETPID",
    "-D_WASI_EMULATED_SIGNAL",
    "-D_WASI_EMULATED_PROCESS_CLOCKS",
];
const SQLITE_LIBS: &[&str] = &[
    "-lwasi-emulated-mman",
    "-lwasi-emulated-getpid",
    "-lwasi-emulated-signal",
    "-lwasi-emulated-process-clocks",
];
// plus: -I<guests/c/lua-wasi> -include <guests/c/lua-wasi/lua_wasi.h> ... -I<lua src>
const LUA_DEFS: &[&str] = &["-D_WASI_EMULATED_SIGNAL", "-D_WASI_EMULATED_PROCESS_CLOCKS"];
const LUA_LIBS: &[&str] = &["-lwasi-emulated-signal", "-lwasi-emulated-process-clocks"];
// plus, for the programs using zlib: -I<zlib src>
const ZLIB_DEFS: &[&str] = &["-DHAVE_UNISTD_H", "-DHAVE_STDARG_H"];
// sources that are programs, not library code: Lua's interpreter and compiler,
// the test programs some zlib trees have beside the library
const LUA_SKIP: &[&str] = &["lua", "luac"];
const ZLIB_SKIP: &[&str] = &["example", "minigzip"];

const INSTALL_HINT: &str = "on Debian 12 install the toolchain with \
`apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`, or set MVVM_WASM_CC to a clang \
that can target wasm32 and MVVM_WASI_SYSROOT to a WASI sysroot (e.g. from wasi-sdk)";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let guests_src = manifest_dir.join("guests");
    let c_dir = guests_src.join("c");
    let bench_dir = guests_src.join("bench");
    let guests_out = out_dir.join("guests");
    let bench_out = out_dir.join("bench");
    for d in [&guests_out, &bench_out] {
        fs::create_dir_all(d).unwrap_or_else(|e| fail(format!("creating {}: {e}", d.display())));
    }
    let export_dirs = || {
        println!("cargo:rustc-env=MVVM_GUESTS_DIR={}", guests_out.display());
        println!("cargo:rustc-env=MVVM_BENCH_DIR={}", bench_out.display());
    };

    for var in [
        "MVVM_WASM_CC",
        "MVVM_WASI_SYSROOT",
        "MVVM_SQLITE_SRC_DIR",
        "MVVM_LUA_SRC_DIR",
        "MVVM_ZLIB_SRC_DIR",
        "CARGO_HOME",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rerun-if-changed={}",
        guests_src.join("wat").display()
    );
    println!("cargo:rerun-if-changed={}", c_dir.display());
    println!("cargo:rerun-if-changed={}", bench_dir.display());

    let mut outputs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut claim = |name: &str, src: &Path| {
        if let Some(prev) = outputs.insert(name.to_string(), src.to_path_buf()) {
            fail(format!(
                "guests {} and {} would both become {name}.wasm; rename one",
                prev.display(),
                src.display()
            ));
        }
    };

    // ---- WAT guests ----
    for wat_file in files_with_ext(&guests_src.join("wat"), "wat") {
        let name = stem(&wat_file);
        claim(&name, &wat_file);
        let wasm = wat::parse_file(&wat_file).unwrap_or_else(|e| fail(format!("{e}")));
        let dst = guests_out.join(format!("{name}.wasm"));
        fs::write(&dst, wasm).unwrap_or_else(|e| fail(format!("writing {}: {e}", dst.display())));
    }

    // ---- C guests (guests/c) and benchmark workloads (guests/bench) ----
    // (source, output, label for messages)
    let mut c_progs: Vec<(PathBuf, PathBuf, String)> = Vec::new();
    for c_file in files_with_ext(&c_dir, "c") {
        let name = stem(&c_file);
        claim(&name, &c_file);
        let dst = guests_out.join(format!("{name}.wasm"));
        c_progs.push((c_file, dst, name));
    }
    // bench/ has an output directory of its own, so its names cannot collide with the guests'
    for c_file in files_with_ext(&bench_dir, "c") {
        let name = stem(&c_file);
        let dst = bench_out.join(format!("{name}.wasm"));
        c_progs.push((c_file, dst, format!("bench/{name}")));
    }
    if c_progs.is_empty() {
        export_dirs();
        return;
    }
    let cc = env::var_os("MVVM_WASM_CC").unwrap_or_else(|| OsString::from("clang"));
    check_compiler(&cc);
    let sysroot = wasi_sysroot(&out_dir);
    let lua_wasi = c_dir.join("lua-wasi");

    let obj_dir = out_dir.join("guest-obj");
    fs::create_dir_all(&obj_dir)
        .unwrap_or_else(|e| fail(format!("creating {}: {e}", obj_dir.display())));

    let base = |warn: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![TARGET_FLAG.into(), flag_with_path("--sysroot=", &sysroot)];
        v.extend(OPT_FLAGS.iter().map(OsString::from));
        v.extend(warn.iter().map(OsString::from));
        v
    };

    // phase 1: every object (third-party and the programs'); phase 2: the links
    let mut phase1: Vec<Job> = Vec::new();
    let mut phase2: Vec<Job> = Vec::new();

    // ---- the libraries the programs are linked with (only those some program needs) ----
    let needed: BTreeSet<Lib> = c_progs
        .iter()
        .filter_map(|(src, _, _)| Lib::of_program(&stem(src)))
        .collect();
    let mut libs: BTreeMap<Lib, Built> = BTreeMap::new();
    for lib in needed {
        let spec = match lib {
            Lib::Sqlite => {
                let src = find_sqlite_src();
                let amalgamation = src.join("sqlite3.c");
                println!("cargo:rerun-if-changed={}", amalgamation.display());
                let defs: Vec<OsString> = SQLITE_DEFS.iter().map(OsString::from).collect();
                let mut guest_flags = defs.clone();
                guest_flags.push(flag_with_path("-I", &src));
                LibSpec {
                    obj_flags: defs,
                    guest_flags,
                    sources: vec![(amalgamation, obj_dir.join("sqlite3.o"), "sqlite3.c".into())],
                    extra_inputs: Vec::new(),
                    link: SQLITE_LIBS,
                }
            }
            Lib::Lua => {
                let src = find_lua_src();
                println!("cargo:rerun-if-changed={}", src.display());
                let mut flags: Vec<OsString> =
                    vec![flag_with_path("-I", &lua_wasi), "-include".into()];
                flags.push(lua_wasi.join("lua_wasi.h").into_os_string());
                flags.extend(LUA_DEFS.iter().map(OsString::from));
                flags.push(flag_with_path("-I", &src));
                LibSpec {
                    obj_flags: flags.clone(),
                    guest_flags: flags,
                    sources: objects_for(&src, LUA_SKIP, "lua", "Lua", &obj_dir),
                    extra_inputs: vec![lua_wasi.join("lua_wasi.h"), lua_wasi.join("setjmp.h")],
                    link: LUA_LIBS,
                }
            }
            Lib::Zlib => {
                let src = find_zlib_src();
                println!("cargo:rerun-if-changed={}", src.display());
                let defs: Vec<OsString> = ZLIB_DEFS.iter().map(OsString::from).collect();
                let mut guest_flags = defs.clone();
                guest_flags.push(flag_with_path("-I", &src));
                LibSpec {
                    obj_flags: defs,
                    guest_flags,
                    sources: objects_for(&src, ZLIB_SKIP, "zlib", "zlib", &obj_dir),
                    extra_inputs: Vec::new(),
                    link: &[],
                }
            }
        };
        let mut objs: Vec<PathBuf> = Vec::new();
        for (src, obj, what) in spec.sources {
            let mut args = base(THIRD_PARTY_WARN);
            args.extend(spec.obj_flags.iter().cloned());
            args.push("-c".into());
            args.push(src.clone().into_os_string());
            args.push("-o".into());
            args.push(obj.clone().into_os_string());
            let mut inputs = spec.extra_inputs.clone();
            inputs.push(src);
            phase1.push(Job::new(&cc, args, what).cached(&obj, inputs));
            objs.push(obj);
        }
        libs.insert(
            lib,
            Built {
                guest_flags: spec.guest_flags,
                objs,
                link: spec.link,
            },
        );
    }

    // ---- the programs: compiled in phase 1, linked in phase 2 (see LINK_FLAGS) ----
    for (c_file, dst, label) in c_progs {
        let name = stem(&c_file);
        let lib = Lib::of_program(&name).map(|l| &libs[&l]);
        let obj = obj_dir.join(format!("program-{}.o", label.replace('/', "-")));
        let mut compile = base(OWN_WARN);
        if name.starts_with("simd") {
            compile.extend(SIMD_FLAGS.iter().map(OsString::from));
        }
        if let Some(lib) = lib {
            compile.extend(lib.guest_flags.iter().cloned());
        }
        compile.push("-c".into());
        compile.push(c_file.into_os_string());
        compile.push("-o".into());
        compile.push(obj.clone().into_os_string());
        phase1.push(Job::new(&cc, compile, label.clone()));

        let mut link: Vec<OsString> =
            vec![TARGET_FLAG.into(), flag_with_path("--sysroot=", &sysroot)];
        link.extend(LDFLAGS.iter().map(OsString::from));
        link.push(obj.into_os_string());
        if let Some(lib) = lib {
            link.extend(lib.objs.iter().map(|o| o.clone().into_os_string()));
            link.extend(lib.link.iter().map(OsString::from));
        }
        link.push("-o".into());
        link.push(dst.into_os_string());
        phase2.push(Job::new(&cc, link, format!("{label} (link)")));
    }

    let jobs = env::var("NUM_JOBS")
        .ok()
        .and_then(|j| j.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    run_jobs(phase1, jobs);
    run_jobs(phase2, jobs);

    export_dirs();
}

/// A third-party C library a program is linked with, chosen by the program's
/// file name (the same rule as in `guests/build-guests.sh`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Lib {
    /// `sqlite_*.c`: the SQLite amalgamation from `libsqlite3-sys`
    Sqlite,
    /// `lua_*.c`: Lua 5.4 from `lua-src`, built with `lua-wasi/lua_wasi.h`
    Lua,
    /// `zlib_*.c`: zlib from `libz-sys`
    Zlib,
}

impl Lib {
    fn of_program(name: &str) -> Option<Lib> {
        [
            ("sqlite_", Lib::Sqlite),
            ("lua_", Lib::Lua),
            ("zlib_", Lib::Zlib),
        ]
        .into_iter()
        .find(|(prefix, _)| name.starts_with(prefix))
        .map(|(_, lib)| lib)
    }
}

/// How to build a library and use it.
struct LibSpec {
    /// compile flags of the library's own sources
    obj_flags: Vec<OsString>,
    /// compile flags of a program using it
    guest_flags: Vec<OsString>,
    /// (source, object, label for messages)
    sources: Vec<(PathBuf, PathBuf, String)>,
    /// files besides its source each object depends on (force-included headers)
    extra_inputs: Vec<PathBuf>,
    /// `-l` flags for the link
    link: &'static [&'static str],
}

/// A library whose objects are being built: what a program using it needs.
struct Built {
    guest_flags: Vec<OsString>,
    objs: Vec<PathBuf>,
    link: &'static [&'static str],
}

/// (source, object `<obj_dir>/<prefix>_<name>.o`, label) for the library's
/// `*.c` files in `dir`, without the programs named in `skip`.
fn objects_for(
    dir: &Path,
    skip: &[&str],
    prefix: &str,
    what: &str,
    obj_dir: &Path,
) -> Vec<(PathBuf, PathBuf, String)> {
    let v: Vec<(PathBuf, PathBuf, String)> = files_with_ext(dir, "c")
        .into_iter()
        .filter_map(|src| {
            let b = stem(&src);
            if skip.contains(&b.as_str()) {
                return None;
            }
            let obj = obj_dir.join(format!("{prefix}_{b}.o"));
            Some((src, obj, format!("{prefix} {b}.c")))
        })
        .collect();
    if v.is_empty() {
        fail(format!("no {what} sources (*.c) in {}", dir.display()));
    }
    v
}

// ---------------------------------------------------------------------------

fn fail(msg: impl AsRef<str>) -> ! {
    panic!("\n\nmvvm-tests build script: {}\n", msg.as_ref());
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn flag_with_path(flag: &str, p: &Path) -> OsString {
    let mut s = OsString::from(flag);
    s.push(p.as_os_str());
    s
}

/// Files directly in `dir` whose extension is `ext`, sorted; empty if no dir.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn check_compiler(cc: &OsString) {
    match Command::new(cc).arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            let first = version.lines().next().unwrap_or("").to_string();
            if let Some(path) = which(cc) {
                println!("cargo:rerun-if-changed={}", path.display());
            }
            if !first.to_ascii_lowercase().contains("clang") {
                println!("cargo:warning=MVVM_WASM_CC={} does not look like clang: {first}", cc.to_string_lossy());
            }
        }
        Ok(out) => fail(format!(
            "`{} --version` failed ({}): {}\n{INSTALL_HINT}",
            cc.to_string_lossy(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )),
        Err(e) => fail(format!(
            "cannot run the C compiler `{}` ({e}); it is needed to build the C guest programs.\n{INSTALL_HINT}",
            cc.to_string_lossy()
        )),
    }
}

fn which(cmd: &OsString) -> Option<PathBuf> {
    let p = Path::new(cmd);
    if p.components().count() > 1 {
        return Some(p.to_path_buf());
    }
    env::split_paths(&env::var_os("PATH")?)
        .map(|d| d.join(cmd))
        .find(|c| c.is_file())
}

/// The sysroot to pass to clang (see the module docs).
fn wasi_sysroot(out_dir: &Path) -> PathBuf {
    if let Some(s) = env::var_os("MVVM_WASI_SYSROOT") {
        let s = PathBuf::from(s);
        if !s.join("include").join("stdio.h").is_file() {
            fail(format!(
                "MVVM_WASI_SYSROOT={} has no include/stdio.h",
                s.display()
            ));
        }
        return s;
    }
    let inc = Path::new("/usr/include/wasm32-wasi");
    let lib = Path::new("/usr/lib/wasm32-wasi");
    if !inc.join("stdio.h").is_file() || !lib.join("libc.a").is_file() {
        fail(format!(
            "wasi-libc not found ({} and {} are missing); it is needed to build the C guest programs.\n{INSTALL_HINT}",
            inc.display(),
            lib.display()
        ));
    }
    println!("cargo:rerun-if-changed={}", lib.join("libc.a").display());
    let root = out_dir.join("wasi-sysroot");
    make_symlink(inc, &root.join("include"));
    make_symlink(lib, &root.join("lib").join("wasm32-wasi"));
    root
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) {
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent)
            .unwrap_or_else(|e| fail(format!("creating {}: {e}", parent.display())));
    }
    if fs::read_link(link).is_ok_and(|t| t == target) {
        return;
    }
    let _ = fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).unwrap_or_else(|e| {
        fail(format!(
            "symlink {} -> {}: {e}",
            link.display(),
            target.display()
        ))
    });
}

#[cfg(not(unix))]
fn make_symlink(_target: &Path, _link: &Path) {
    fail(format!(
        "set MVVM_WASI_SYSROOT to a WASI sysroot on this platform.\n{INSTALL_HINT}"
    ));
}

/// Directory holding `sqlite3.c` and `sqlite3.h`.
fn find_sqlite_src() -> PathBuf {
    const FILES: &[&str] = &["sqlite3.c", "sqlite3.h"];
    if let Some(d) = src_dir_from_env("MVVM_SQLITE_SRC_DIR", FILES) {
        return d;
    }
    // Only set if libsqlite3-sys (feature `bundled`) is also a normal dependency.
    if let Some(d) = env::var_os("DEP_SQLITE3_INCLUDE") {
        let d = PathBuf::from(d);
        if d.join("sqlite3.c").is_file() {
            return d;
        }
    }
    let krate = registry_crate_or_fail("libsqlite3-sys", "MVVM_SQLITE_SRC_DIR", "sqlite3.c");
    with_files(krate.join("sqlite3"), FILES, "libsqlite3-sys crate")
}

/// Directory holding the Lua 5.4 sources (`lapi.c`, `lua.h`, ...).
fn find_lua_src() -> PathBuf {
    const FILES: &[&str] = &["lua.h", "lapi.c"];
    if let Some(d) = src_dir_from_env("MVVM_LUA_SRC_DIR", FILES) {
        return d;
    }
    let krate = registry_crate_or_fail("lua-src", "MVVM_LUA_SRC_DIR", "the Lua 5.4 sources");
    // lua-src ships lua-5.1.x ... lua-5.4.x side by side: take the newest 5.4
    let mut dirs: Vec<(Vec<u64>, PathBuf)> = fs::read_dir(&krate)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let n = e.file_name().to_string_lossy().into_owned();
                    let v = n.strip_prefix("lua-5.4.")?.to_string();
                    Some((version_key(&format!("5.4.{v}")), e.path()))
                })
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    match dirs.pop() {
        Some((_, d)) => with_files(d, FILES, "lua-src crate"),
        None => fail(format!("no lua-5.4.* directory in {}", krate.display())),
    }
}

/// Directory holding the zlib sources (`zlib.h`, `deflate.c`, ...). libz-sys
/// ships stock zlib in `src/zlib` (beside zlib-ng, which is not used here).
fn find_zlib_src() -> PathBuf {
    const FILES: &[&str] = &["zlib.h", "deflate.c"];
    if let Some(d) = src_dir_from_env("MVVM_ZLIB_SRC_DIR", FILES) {
        return d;
    }
    let krate = registry_crate_or_fail("libz-sys", "MVVM_ZLIB_SRC_DIR", "the zlib sources");
    with_files(krate.join("src").join("zlib"), FILES, "libz-sys crate")
}

/// The directory named by the environment variable `var`, if set; it must hold `files`.
fn src_dir_from_env(var: &str, files: &[&str]) -> Option<PathBuf> {
    env::var_os(var).map(|d| with_files(PathBuf::from(d), files, var))
}

/// `dir`, after checking that it holds `files`; `how` says where `dir` came from.
fn with_files(dir: PathBuf, files: &[&str], how: &str) -> PathBuf {
    if files.iter().any(|f| !dir.join(f).is_file()) {
        fail(format!(
            "{how}: {} has no {}",
            dir.display(),
            files.join("/")
        ));
    }
    dir
}

/// The extracted registry crate `name` (see `registry_crate_dir`), or a
/// failure that says how to get it, or which variable to set instead.
fn registry_crate_or_fail(name: &str, var: &str, what: &str) -> PathBuf {
    registry_crate_dir(name).unwrap_or_else(|| {
        fail(format!(
            "cannot find the sources of the {name} crate in {}/registry/src (is it a build-dependency \
             of mvvm-tests? try `cargo fetch`), or set {var} to a directory with {what}",
            cargo_home().display()
        ))
    })
}

fn cargo_home() -> PathBuf {
    if let Some(h) = env::var_os("CARGO_HOME") {
        return PathBuf::from(h);
    }
    let home = env::var_os("HOME")
        .or_else(|| env::var_os("USERPROFILE"))
        .unwrap_or_default();
    PathBuf::from(home).join(".cargo")
}

/// `$CARGO_HOME/registry/src/<index>/<name>-<version>` for the version of
/// `name` in Cargo.lock (the one this package depends on if several are
/// locked); if Cargo.lock names none that is extracted, the newest extracted.
fn registry_crate_dir(name: &str) -> Option<PathBuf> {
    let roots: Vec<PathBuf> = fs::read_dir(cargo_home().join("registry").join("src"))
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    for version in locked_versions(name) {
        for root in &roots {
            let d = root.join(format!("{name}-{version}"));
            if d.join("Cargo.toml").is_file() {
                return Some(d);
            }
        }
    }
    let prefix = format!("{name}-");
    let mut found: Vec<(Vec<u64>, PathBuf)> = Vec::new();
    for root in &roots {
        let Ok(rd) = fs::read_dir(root) else { continue };
        for e in rd.filter_map(|e| e.ok()) {
            let n = e.file_name().to_string_lossy().into_owned();
            if let Some(v) = n.strip_prefix(&prefix) {
                if v.starts_with(|c: char| c.is_ascii_digit())
                    && e.path().join("Cargo.toml").is_file()
                {
                    found.push((version_key(v), e.path()));
                }
            }
        }
    }
    found.sort();
    found.pop().map(|(_, p)| p)
}

/// "548.1.2" -> [548, 1, 2]; pre-release/build suffixes are ignored.
fn version_key(v: &str) -> Vec<u64> {
    v.split(['-', '+'])
        .next()
        .unwrap_or("")
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0))
        .collect()
}

/// Versions of `name` in the workspace's Cargo.lock: the one this package's
/// entry names first, then all others, newest first.
fn locked_versions(name: &str) -> Vec<String> {
    let mut dir = env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
    let mut lock_text = None;
    while let Some(d) = dir {
        let lock = d.join("Cargo.lock");
        if lock.is_file() {
            println!("cargo:rerun-if-changed={}", lock.display());
            lock_text = fs::read_to_string(&lock).ok();
            break;
        }
        dir = d.parent().map(Path::to_path_buf);
    }
    let Some(text) = lock_text else {
        return Vec::new();
    };

    struct Pkg {
        name: String,
        version: String,
        deps: Vec<String>,
    }
    let mut pkgs: Vec<Pkg> = Vec::new();
    let mut in_deps = false;
    let unquote = |s: &str| {
        s.trim()
            .trim_end_matches(',')
            .trim()
            .trim_matches('"')
            .to_string()
    };
    for line in text.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            pkgs.push(Pkg {
                name: String::new(),
                version: String::new(),
                deps: Vec::new(),
            });
            in_deps = false;
            continue;
        }
        let Some(p) = pkgs.last_mut() else { continue };
        if in_deps {
            if line.starts_with(']') {
                in_deps = false;
            } else if !line.is_empty() {
                p.deps.push(unquote(line));
            }
        } else if let Some(v) = line.strip_prefix("name = ") {
            p.name = unquote(v);
        } else if let Some(v) = line.strip_prefix("version = ") {
            p.version = unquote(v);
        } else if line.starts_with("dependencies = [") {
            // either `dependencies = [` followed by lines, or all on one line
            let rest = line.trim_start_matches("dependencies = [");
            if let Some(inner) = rest.strip_suffix(']') {
                p.deps
                    .extend(inner.split(',').map(unquote).filter(|s| !s.is_empty()));
            } else {
                in_deps = true;
            }
        }
    }

    let mut all: Vec<String> = pkgs
        .iter()
        .filter(|p| p.name == name)
        .map(|p| p.version.clone())
        .collect();
    all.sort_by_key(|v| std::cmp::Reverse(version_key(v)));
    all.dedup();
    let me = env::var("CARGO_PKG_NAME").unwrap_or_default();
    let mut preferred: Option<String> = None;
    for p in pkgs.iter().filter(|p| p.name == me) {
        for d in &p.deps {
            let mut it = d.split_whitespace();
            if it.next() == Some(name) {
                preferred = it
                    .next()
                    .map(str::to_string)
                    .or_else(|| (all.len() == 1).then(|| all[0].clone()));
            }
        }
    }
    if let Some(v) = preferred {
        all.retain(|x| *x != v);
        all.insert(0, v);
    }
    all
}

// ---- running the compiler ----

struct Job {
    program: OsString,
    args: Vec<OsString>,
    what: String,
    /// (output, inputs): skip the job if the output is newer than every input
    /// and was made by the same command line.
    cache: Option<(PathBuf, Vec<PathBuf>)>,
}

impl Job {
    fn new(program: &OsString, args: Vec<OsString>, what: String) -> Job {
        Job {
            program: program.clone(),
            args,
            what,
            cache: None,
        }
    }

    fn cached(mut self, output: &Path, inputs: Vec<PathBuf>) -> Job {
        self.cache = Some((output.to_path_buf(), inputs));
        self
    }

    fn command_line(&self) -> String {
        let mut s = self.program.to_string_lossy().into_owned();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    fn up_to_date(&self) -> bool {
        let Some((out, inputs)) = &self.cache else {
            return false;
        };
        let stamp = stamp_path(out);
        let (Ok(meta), Ok(cmd)) = (fs::metadata(out), fs::read_to_string(&stamp)) else {
            return false;
        };
        if cmd != self.command_line() {
            return false;
        }
        let out_time = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        inputs.iter().all(|i| {
            fs::metadata(i)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t <= out_time)
        })
    }

    /// Runs the job; Err(message) on failure.
    fn run(&self) -> Result<(), String> {
        if self.up_to_date() {
            return Ok(());
        }
        let output = Command::new(&self.program)
            .args(&self.args)
            .output()
            .map_err(|e| {
                format!(
                    "cannot run {}: {e}\n{INSTALL_HINT}",
                    self.program.to_string_lossy()
                )
            })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let mut hint = String::new();
            if stderr.contains("libclang_rt.builtins-wasm32") {
                hint.push_str("\nhint: the wasm32 compiler-rt builtins are missing (Debian: libclang-rt-dev-wasm32)");
            }
            if stderr.contains("\"wasm-ld\" doesn't exist") || stderr.contains("wasm-ld: not found")
            {
                hint.push_str("\nhint: the wasm linker wasm-ld is missing (Debian: lld)");
            }
            if stderr.contains("file not found") || stderr.contains("unable to find library") {
                hint.push_str("\nhint: is wasi-libc installed (Debian: wasi-libc)?");
            }
            return Err(format!(
                "building guest {} failed ({}):\n  {}\n{}{}{hint}\n{INSTALL_HINT}",
                self.what,
                output.status,
                self.command_line(),
                String::from_utf8_lossy(&output.stdout),
                stderr
            ));
        }
        if let Some((out, _)) = &self.cache {
            let _ = fs::write(stamp_path(out), self.command_line());
        }
        Ok(())
    }
}

fn stamp_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".cmd");
    PathBuf::from(s)
}

/// Runs the jobs on up to `parallel` threads; fails the build on any error.
fn run_jobs(jobs: Vec<Job>, parallel: usize) {
    if jobs.is_empty() {
        return;
    }
    let next = AtomicUsize::new(0);
    let errors: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel.min(jobs.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(job) = jobs.get(i) else { break };
                if let Err(e) = job.run() {
                    errors.lock().unwrap().push(e);
                }
            });
        }
    });
    let errors = errors.into_inner().unwrap();
    if !errors.is_empty() {
        fail(errors.join("\n\n"));
    }
}

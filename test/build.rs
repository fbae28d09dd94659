//! Build script of `mvvm-tests`: builds the guest programs the tests run.
//!
//! * `guests/wat/*.wat` -> `$OUT_DIR/guests/<name>.wasm` with the `wat` crate
//!   (the name section with the `$names` is emitted by default).
//! * `guests/c/*.c` -> `$OUT_DIR/guests/<name>.wasm` with clang for
//!   `wasm32-wasi` against wasi-libc. `sqlite_main.c` is linked with the SQLite
//!   amalgamation shipped in the `libsqlite3-sys` crate, `lua_main.c` with the
//!   Lua 5.4 sources shipped in the `lua-src` crate. `simd*.c` get `-msimd128`.
//!
//! The directory is exported to the tests as `MVVM_GUESTS_DIR`.
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
//! * `MVVM_SQLITE_SRC_DIR` / `MVVM_LUA_SRC_DIR`: override where the SQLite
//!   amalgamation / Lua 5.4 sources are (see `find_sqlite_src`).
//!
//! How the SQLite and Lua sources are found (no hard-coded paths):
//! neither crate hands its source directory to dependents in a usable way.
//! `lua-src` has no build script and its library only knows its directory
//! through a private `env!("CARGO_MANIFEST_DIR")` inside `Build::try_build`,
//! which compiles Lua itself with flags this clang/wasi-libc can't use
//! (wasm exception handling, libsetjmp). `libsqlite3-sys` prints
//! `cargo:include=<crate>/sqlite3` (so dependents get `DEP_SQLITE3_INCLUDE`)
//! only with its `bundled` feature, and cargo passes `DEP_*` variables only to
//! the build scripts of packages that have the `links` crate as a *normal*
//! dependency, not as a build-dependency. So: `DEP_SQLITE3_INCLUDE` is used
//! when present, and otherwise both crates are looked up where cargo
//! extracted them, `$CARGO_HOME/registry/src/*/<name>-<version>`, with the
//! version this package resolved to taken from the workspace's `Cargo.lock`.
//! The two crates are build-dependencies only so that cargo downloads and
//! extracts them; this script uses neither crate's code.

use std::collections::BTreeMap;
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

const INSTALL_HINT: &str = "on Debian 12 install the toolchain with \
`apt-get install clang lld wasi-libc libclang-rt-dev-wasm32`, or set MVVM_WASM_CC to a clang \
that can target wasm32 and MVVM_WASI_SYSROOT to a WASI sysroot (e.g. from wasi-sdk)";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let guests_src = manifest_dir.join("guests");
    let guests_out = out_dir.join("guests");
    fs::create_dir_all(&guests_out)
        .unwrap_or_else(|e| fail(format!("creating {}: {e}", guests_out.display())));

    for var in [
        "MVVM_WASM_CC",
        "MVVM_WASI_SYSROOT",
        "MVVM_SQLITE_SRC_DIR",
        "MVVM_LUA_SRC_DIR",
        "CARGO_HOME",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rerun-if-changed={}",
        guests_src.join("wat").display()
    );
    println!("cargo:rerun-if-changed={}", guests_src.join("c").display());

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

    // ---- C guests ----
    let c_dir = guests_src.join("c");
    let c_files = files_with_ext(&c_dir, "c");
    if c_files.is_empty() {
        println!("cargo:rustc-env=MVVM_GUESTS_DIR={}", guests_out.display());
        return;
    }
    let cc = env::var_os("MVVM_WASM_CC").unwrap_or_else(|| OsString::from("clang"));
    check_compiler(&cc);
    let sysroot = wasi_sysroot(&out_dir);
    let sqlite_src = find_sqlite_src();
    let lua_src = find_lua_src();
    let lua_wasi = c_dir.join("lua-wasi");
    println!(
        "cargo:rerun-if-changed={}",
        sqlite_src.join("sqlite3.c").display()
    );
    println!("cargo:rerun-if-changed={}", lua_src.display());

    let obj_dir = out_dir.join("guest-obj");
    fs::create_dir_all(&obj_dir)
        .unwrap_or_else(|e| fail(format!("creating {}: {e}", obj_dir.display())));

    let base = |warn: &[&str]| -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![TARGET_FLAG.into(), flag_with_path("--sysroot=", &sysroot)];
        v.extend(OPT_FLAGS.iter().map(OsString::from));
        v.extend(warn.iter().map(OsString::from));
        v
    };
    let lua_flags = || -> Vec<OsString> {
        let mut v: Vec<OsString> = vec![flag_with_path("-I", &lua_wasi), "-include".into()];
        v.push(lua_wasi.join("lua_wasi.h").into_os_string());
        v.extend(LUA_DEFS.iter().map(OsString::from));
        v.push(flag_with_path("-I", &lua_src));
        v
    };

    // phase 1: third-party objects and the single-file guests; phase 2: links
    let mut phase1: Vec<Job> = Vec::new();
    let mut phase2: Vec<Job> = Vec::new();

    let sqlite_obj = obj_dir.join("sqlite3.o");
    let mut lua_objs: Vec<PathBuf> = Vec::new();
    let mut needs_sqlite = false;
    let mut needs_lua = false;

    for c_file in &c_files {
        let name = stem(c_file);
        claim(&name, c_file);
        let dst = guests_out.join(format!("{name}.wasm"));
        match name.as_str() {
            "sqlite_main" => {
                needs_sqlite = true;
                let mut args = base(OWN_WARN);
                args.extend(SQLITE_DEFS.iter().map(OsString::from));
                args.push(flag_with_path("-I", &sqlite_src));
                args.extend(LDFLAGS.iter().map(OsString::from));
                args.push(c_file.clone().into_os_string());
                args.push(sqlite_obj.clone().into_os_string());
                args.extend(SQLITE_LIBS.iter().map(OsString::from));
                args.push("-o".into());
                args.push(dst.into_os_string());
                phase2.push(Job::new(&cc, args, name));
            }
            "lua_main" => {
                needs_lua = true;
                let mut args = base(OWN_WARN);
                args.extend(lua_flags());
                args.extend(LDFLAGS.iter().map(OsString::from));
                args.push(c_file.clone().into_os_string());
                // filled in below, once the object list is known
                args.push("@LUA_OBJS@".into());
                args.extend(LUA_LIBS.iter().map(OsString::from));
                args.push("-o".into());
                args.push(dst.into_os_string());
                phase2.push(Job::new(&cc, args, name));
            }
            _ => {
                let mut args = base(OWN_WARN);
                if name.starts_with("simd") {
                    args.extend(SIMD_FLAGS.iter().map(OsString::from));
                }
                args.extend(LDFLAGS.iter().map(OsString::from));
                args.push(c_file.clone().into_os_string());
                args.push("-o".into());
                args.push(dst.into_os_string());
                phase1.push(Job::new(&cc, args, name));
            }
        }
    }

    if needs_sqlite {
        let src = sqlite_src.join("sqlite3.c");
        let mut args = base(THIRD_PARTY_WARN);
        args.extend(SQLITE_DEFS.iter().map(OsString::from));
        args.push("-c".into());
        args.push(src.clone().into_os_string());
        args.push("-o".into());
        args.push(sqlite_obj.clone().into_os_string());
        phase1.push(Job::new(&cc, args, "sqlite3.c".into()).cached(&sqlite_obj, vec![src]));
    }
    if needs_lua {
        let headers = vec![lua_wasi.join("lua_wasi.h"), lua_wasi.join("setjmp.h")];
        for src in files_with_ext(&lua_src, "c") {
            let b = stem(&src);
            if b == "lua" || b == "luac" {
                continue; // the standalone interpreter and compiler
            }
            let obj = obj_dir.join(format!("lua_{b}.o"));
            let mut args = base(THIRD_PARTY_WARN);
            args.extend(lua_flags());
            args.push("-c".into());
            args.push(src.clone().into_os_string());
            args.push("-o".into());
            args.push(obj.clone().into_os_string());
            let mut inputs = headers.clone();
            inputs.push(src.clone());
            phase1.push(Job::new(&cc, args, format!("lua {b}.c")).cached(&obj, inputs));
            lua_objs.push(obj);
        }
        if lua_objs.is_empty() {
            fail(format!("no Lua sources (*.c) in {}", lua_src.display()));
        }
        for job in &mut phase2 {
            let mut args = Vec::with_capacity(job.args.len() + lua_objs.len());
            for a in job.args.drain(..) {
                if a == "@LUA_OBJS@" {
                    args.extend(lua_objs.iter().map(|o| o.clone().into_os_string()));
                } else {
                    args.push(a);
                }
            }
            job.args = args;
        }
    }

    let jobs = env::var("NUM_JOBS")
        .ok()
        .and_then(|j| j.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    run_jobs(phase1, jobs);
    run_jobs(phase2, jobs);

    println!("cargo:rustc-env=MVVM_GUESTS_DIR={}", guests_out.display());
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
    let check = |d: PathBuf, how: &str| -> PathBuf {
        if !d.join("sqlite3.c").is_file() || !d.join("sqlite3.h").is_file() {
            fail(format!("{how}: {} has no sqlite3.c/sqlite3.h", d.display()));
        }
        d
    };
    if let Some(d) = env::var_os("MVVM_SQLITE_SRC_DIR") {
        return check(PathBuf::from(d), "MVVM_SQLITE_SRC_DIR");
    }
    // Only set if libsqlite3-sys (feature `bundled`) is also a normal dependency.
    if let Some(d) = env::var_os("DEP_SQLITE3_INCLUDE") {
        let d = PathBuf::from(d);
        if d.join("sqlite3.c").is_file() {
            return d;
        }
    }
    match registry_crate_dir("libsqlite3-sys") {
        Some(c) => check(c.join("sqlite3"), "libsqlite3-sys crate"),
        None => fail(format!(
            "cannot find the sources of the libsqlite3-sys crate in {}/registry/src (is it a build-dependency \
             of mvvm-tests? try `cargo fetch`), or set MVVM_SQLITE_SRC_DIR to a directory with sqlite3.c",
            cargo_home().display()
        )),
    }
}

/// Directory holding the Lua 5.4 sources (`lapi.c`, `lua.h`, ...).
fn find_lua_src() -> PathBuf {
    let check = |d: PathBuf, how: &str| -> PathBuf {
        if !d.join("lua.h").is_file() || !d.join("lapi.c").is_file() {
            fail(format!("{how}: {} has no lua.h/lapi.c", d.display()));
        }
        d
    };
    if let Some(d) = env::var_os("MVVM_LUA_SRC_DIR") {
        return check(PathBuf::from(d), "MVVM_LUA_SRC_DIR");
    }
    let Some(krate) = registry_crate_dir("lua-src") else {
        fail(format!(
            "cannot find the sources of the lua-src crate in {}/registry/src (is it a build-dependency of \
             mvvm-tests? try `cargo fetch`), or set MVVM_LUA_SRC_DIR to a directory with the Lua 5.4 sources",
            cargo_home().display()
        ));
    };
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
        Some((_, d)) => check(d, "lua-src crate"),
        None => fail(format!("no lua-5.4.* directory in {}", krate.display())),
    }
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

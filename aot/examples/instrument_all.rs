//! Writes the instrumented wasm of each module given, under several policies and in both transform
//! modes, into one directory:
//!
//! ```text
//! cargo run --release -p mvvm-aot --example instrument_all -- OUT_DIR MODULE.wasm...
//! ```
//!
//! The policies are the ones the tests use (`mvvm_tests::policies`). A refactor of the transform
//! that must not change its output is checked by running this on the test guests and benchmark
//! workloads before and after, and comparing the two directories
//! (`diff -r BEFORE AFTER`). Each (module, policy, mode) gives `NAME.POLICY.MODE.wasm` and
//! `NAME.POLICY.MODE.info`, the site table in its debug form.
use mvvm_aot::transform::{instrument_as, Mode};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let Some(out) = args.next() else {
        eprintln!("usage: instrument_all OUT_DIR MODULE.wasm...");
        return ExitCode::from(2);
    };
    let modules: Vec<PathBuf> = args.collect();
    match write_all(&out, &modules) {
        Ok(n) => {
            println!("{n} instrumented modules written to {}", out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("instrument_all: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_all(out: &Path, modules: &[PathBuf]) -> Result<usize, String> {
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut written = 0;
    for module in modules {
        let wasm = std::fs::read(module).map_err(|e| format!("{}: {e}", module.display()))?;
        let name = module.file_stem().unwrap_or_default().to_string_lossy();
        for (label, policy) in mvvm_tests::policies() {
            let label: String = label
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            for (mode_name, mode) in [("checkpoint", Mode::Checkpoint), ("polls", Mode::PollsOnly)]
            {
                let stem = format!("{name}.{label}.{mode_name}");
                let result =
                    instrument_as(&wasm, &policy, mode).map_err(|e| format!("{stem}: {e}"))?;
                let write = |ext: &str, bytes: &[u8]| {
                    let path = out.join(format!("{stem}.{ext}"));
                    std::fs::write(&path, bytes)
                        .map_err(|e| format!("cannot write {}: {e}", path.display()))
                };
                write("wasm", &result.wasm)?;
                write("info", format!("{:#?}\n", result.info).as_bytes())?;
                written += 1;
            }
        }
    }
    Ok(written)
}

//! Writes the referee's module for a seed to a file: `smith_dump SEED OUT.wasm` (for reproducing
//! a mismatch with `mvvm-aot`).
fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(seed), Some(out)) = (args.get(1).and_then(|s| s.parse().ok()), args.get(2)) else {
        eprintln!("usage: smith_dump SEED OUT.wasm");
        return std::process::ExitCode::from(2);
    };
    match std::fs::write(out, mvvm_tests::referee::module(seed)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("smith_dump: cannot write {out}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

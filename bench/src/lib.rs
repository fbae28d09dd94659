//! mvvm's benchmarks. `artifact/overhead.sh` (the `overhead` binary) measures what
//! instrumentation costs beside Binaryen's Asyncify; `artifact/ckpt.sh` (`latency`) checkpoint and
//! restore latency beside CRIU; `artifact/plots.sh` (`plot`) draws both; `cost` is a quick look at
//! the small test guests; `cargo bench -p mvvm-bench` runs the criterion benches (the transform,
//! image encode/decode).

use mvvm_aot::transform::{instrument, instrument_as, Instrumented, Mode};
use mvvm_contract::Policy;
use std::path::Path;
use std::process::Command;

/// Median of a non-empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Features `wasm-opt` must accept and keep (what clang's output and the transform's use).
const WASM_OPT_FEATURES: &[&str] = &[
    "--enable-simd",
    "--enable-bulk-memory",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-mutable-globals",
    "--enable-multivalue",
    "--enable-reference-types",
];

/// Runs Binaryen's `wasm-opt ARGS` on `wasm`, through files in `dir`.
pub fn wasm_opt(wasm: &[u8], args: &[&str], dir: &Path) -> Result<Vec<u8>, String> {
    let input = dir.join("wasm-opt-in.wasm");
    let output = dir.join("wasm-opt-out.wasm");
    std::fs::write(&input, wasm).map_err(|e| format!("{}: {e}", input.display()))?;
    let status = Command::new("wasm-opt")
        .arg(&input)
        .args(WASM_OPT_FEATURES)
        .args(args)
        .arg("-o")
        .arg(&output)
        .status()
        .map_err(|e| {
            format!("cannot run wasm-opt ({e}); install Binaryen: bash scripts/setup.sh --bench")
        })?;
    if !status.success() {
        return Err(format!("wasm-opt {args:?} failed ({status})"));
    }
    std::fs::read(&output).map_err(|e| format!("{}: {e}", output.display()))
}

/// The Asyncify comparison for one program.
pub struct Asyncified {
    /// The uninstrumented program after `wasm-opt -O2` (and the plain transform's exports).
    pub baseline: Instrumented,
    /// The program with counter-loop K=16 poll sites ([`Mode::PollsOnly`]), made unwindable at
    /// `mvvm.poll` by `wasm-opt --asyncify`, then `-O2`: Binaryen's way to the same sites.
    pub asyncified: Instrumented,
}

/// Builds the Asyncify comparison for `wasm` (temporary files go to `dir`). Both modules run
/// under mvvm's runtime like any instrumented module (the poll import and globals are mvvm's).
pub fn asyncify(wasm: &[u8], dir: &Path) -> Result<Asyncified, String> {
    let o2 = wasm_opt(wasm, &["-O2"], dir)?;
    let baseline = instrument(&o2, &Policy::plain()).map_err(|e| e.to_string())?;
    let polls = instrument_as(wasm, &Policy::default_counter(), Mode::PollsOnly)
        .map_err(|e| e.to_string())?;
    let wasm = wasm_opt(
        &polls.wasm,
        &["--asyncify", "--pass-arg=asyncify-imports@mvvm.poll", "-O2"],
        dir,
    )?;
    Ok(Asyncified {
        baseline,
        asyncified: Instrumented {
            wasm,
            info: polls.info,
        },
    })
}

/// `guests/bench/fill.c` (fills `fill MIB` MiB with pseudo-random data, calls `stop`, checks a
/// sample and exits; `artifact/criu.sh` builds the same file natively for CRIU), compiled with
/// function-entry and counter-loop sites, and the index of its `stop` for a
/// [`Trigger::FuncEntry`](mvvm_runtime::Trigger::FuncEntry).
pub fn fill_program() -> (mvvm_runtime::Program, u32) {
    let path = mvvm_tests::bench_dir().join("fill.wasm");
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let policy = Policy {
        function_entry: true,
        ..Policy::default_counter()
    };
    let p = mvvm_runtime::Program::from_wasm(
        &wasm,
        &policy,
        mvvm_runtime::Isa::Native,
        &mvvm_contract::EngineOptions::default(),
    )
    .unwrap_or_else(|e| panic!("building fill: {e}"));
    let stop = p
        .info
        .resolve_function("stop")
        .unwrap_or_else(|| panic!("{}: no function named stop", path.display()));
    (p, stop)
}

//! Building an `.aot` file: transform, then precompile for every requested target.

use crate::transform::{instrument, TransformError};
use mvvm_contract::config::{engine_config, EngineOptions, Target};
use mvvm_contract::container::{module_hash, AotFile, Artifact};
use mvvm_contract::Policy;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The transform refused the module.
    #[error(transparent)]
    Transform(#[from] TransformError),
    /// Cranelift could not compile for a target.
    #[error("compiling for {0} failed: {1:#}")]
    Compile(Target, wasmtime::Error),
}

/// A step of [`build_reporting`], announced as it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Instrumenting the module.
    Instrument,
    /// Precompiling for `target`, the `index`-th (from 1) of `of` targets.
    Compile {
        /// The target being compiled for.
        target: Target,
        /// Which target this is, counting from 1.
        index: usize,
        /// How many targets there are.
        of: usize,
    },
}

/// Instruments `wasm` and precompiles it for `targets`.
pub fn build(
    wasm: &[u8],
    policy: &Policy,
    targets: &[Target],
    engine: &EngineOptions,
) -> Result<AotFile<'static>, BuildError> {
    build_reporting(wasm, policy, targets, engine, &mut |_| {})
}

/// [`build`], calling `progress` as each step starts, so that a tool can show where a long
/// build is (compiling a large module for three targets takes tens of seconds).
pub fn build_reporting(
    wasm: &[u8],
    policy: &Policy,
    targets: &[Target],
    engine: &EngineOptions,
    progress: &mut dyn FnMut(Step),
) -> Result<AotFile<'static>, BuildError> {
    progress(Step::Instrument);
    let out = instrument(wasm, policy)?;
    let mut artifacts = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        progress(Step::Compile {
            target: *t,
            index: i + 1,
            of: targets.len(),
        });
        let bytes = precompile(&out.wasm, *t, engine).map_err(|e| BuildError::Compile(*t, e))?;
        artifacts.push(Artifact {
            target: *t,
            bytes: bytes.into(),
        });
    }
    Ok(AotFile {
        producer: format!("mvvm-aot {}", env!("CARGO_PKG_VERSION")),
        module_hash: module_hash(&out.wasm),
        wasm: out.wasm.into(),
        info: out.info,
        engine: engine.clone(),
        artifacts,
    })
}

/// Precompiles `wasm` for `target` with the shared configuration.
pub fn precompile(
    wasm: &[u8],
    target: Target,
    engine: &EngineOptions,
) -> wasmtime::Result<Vec<u8>> {
    let e = wasmtime::Engine::new(&engine_config(target, engine)?)?;
    e.precompile_module(wasm)
}

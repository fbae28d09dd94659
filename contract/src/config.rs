//! The one place a wasmtime [`Config`] is built.
//!
//! `mvvm-aot` precompiles with it and the runtime loads with it; wasmtime refuses an artifact whose
//! compilation settings differ from the engine's, so both sides must call [`engine_config`].

use serde::{Deserialize, Serialize};
use wasmtime::{Config, OptLevel};

/// A compilation target an `.aot` file can carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Target {
    /// `x86_64-unknown-linux-gnu`
    X86_64,
    /// `aarch64-unknown-linux-gnu`
    Aarch64,
    /// `pulley64`: wasmtime's portable interpreter, a second ISA that runs on any host.
    Pulley64,
}

impl Target {
    /// Every target, in the order `mvvm-aot` builds them by default.
    pub const ALL: [Target; 3] = [Target::X86_64, Target::Aarch64, Target::Pulley64];

    /// The target triple wasmtime knows it by.
    pub fn triple(self) -> &'static str {
        match self {
            Target::X86_64 => "x86_64-unknown-linux-gnu",
            Target::Aarch64 => "aarch64-unknown-linux-gnu",
            Target::Pulley64 => "pulley64",
        }
    }

    /// The short name: `x86_64`, `aarch64` or `pulley64`.
    pub fn name(self) -> &'static str {
        match self {
            Target::X86_64 => "x86_64",
            Target::Aarch64 => "aarch64",
            Target::Pulley64 => "pulley64",
        }
    }

    /// Parses a triple or a short name (`x86_64`, `aarch64`, `pulley64`).
    pub fn parse(s: &str) -> Option<Target> {
        Target::ALL
            .into_iter()
            .find(|t| t.triple() == s || t.triple().split('-').next() == Some(s))
    }

    /// The native target of the running process, if mvvm supports it.
    pub fn host() -> Option<Target> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Target::X86_64),
            "aarch64" => Some(Target::Aarch64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.triple())
    }
}

/// Compilation settings recorded in an `.aot` file; the runtime rebuilds the same [`Config`] from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineOptions {
    /// Cranelift optimisation level, 0 to 3 (`--opt-level`).
    pub opt_level: u8,
    /// Instrument for fuel (used by the differential referee; never in `.aot` files).
    pub fuel: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            opt_level: 2,
            fuel: false,
        }
    }
}

/// Builds the wasmtime configuration for `target`.
///
/// Deterministic across ISAs: NaNs are canonicalised and relaxed SIMD is deterministic, so a program
/// resumed on another ISA computes the same bits. The target is always set explicitly, so x86_64 code
/// uses the baseline ISA rather than whatever the compiling host happens to have, and an artifact
/// built on one machine loads on another.
pub fn engine_config(target: Target, opts: &EngineOptions) -> wasmtime::Result<Config> {
    let mut c = Config::new();
    c.target(target.triple())?;
    c.cranelift_opt_level(match opts.opt_level {
        0 => OptLevel::None,
        1 | 2 => OptLevel::Speed,
        _ => OptLevel::SpeedAndSize,
    });
    c.cranelift_nan_canonicalization(true);
    c.relaxed_simd_deterministic(true);
    c.wasm_simd(true);
    c.wasm_relaxed_simd(true);
    c.wasm_multi_value(true);
    c.wasm_bulk_memory(true);
    c.wasm_reference_types(true);
    c.wasm_tail_call(true);
    c.wasm_multi_memory(true);
    c.wasm_threads(false);
    c.wasm_memory64(false);
    c.wasm_gc(false);
    c.wasm_function_references(false);
    c.wasm_exceptions(false);
    // The transform marks its slow paths (poll, unwind, rewind) unlikely in a
    // `metadata.code.branch_hint` section; Cranelift then lays them out after the hot code.
    // Advisory only: a module without hints (the plain baseline) compiles exactly as before.
    c.wasm_branch_hinting(true);
    c.consume_fuel(opts.fuel);
    // No epoch interruption: it would put a check of the engine's epoch at every function entry
    // and loop header of plain and instrumented code alike. The sites' own countdown is all a
    // doorbell needs: it lives in a memory page the doorbell writes directly (runtime/src/doorbell.rs).
    c.epoch_interruption(false);
    Ok(c)
}

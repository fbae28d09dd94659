//! The differential referee: random valid modules from wasm-smith, run plain and instrumented with
//! the same inputs, must give the same results, traps, final memories, globals and tables; and a
//! checkpoint taken at a random site poll, resumed (on pulley64 every other time), must end exactly
//! like the uninterrupted run.

use arbitrary::Unstructured;
use mvvm_contract::{EngineOptions, Policy};
use mvvm_runtime::{Isa, ProbeEnd, Program, RunConfig, Trigger};

/// Fuel for the plain run; modules that exhaust it are counted, not compared.
pub const FUEL: u64 = 200_000;

/// How one module fared.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Same results, traps and final state, plain vs instrumented and through a checkpoint.
    Agree {
        /// Whether a checkpoint round trip was also checked (the module polled at least once).
        checkpointed: bool,
    },
    /// The plain run ran out of fuel or stack (or its start function trapped): nothing to compare.
    Inconclusive,
    /// A mismatch: the referee's whole point. The string says what differed.
    Mismatch(String),
}

/// Counts over a batch.
#[derive(Debug, Default)]
pub struct Tally {
    /// Modules that agreed.
    pub agree: u64,
    /// Of those, modules also checked through a checkpoint.
    pub checkpointed: u64,
    /// Modules with nothing to compare.
    pub inconclusive: u64,
    /// Mismatches, with seed and description.
    pub mismatches: Vec<(u64, String)>,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The wasm-smith configuration: exactly the features mvvm supports, no imports, everything
/// exported so that the referee can observe it.
pub fn smith_config() -> wasm_smith::Config {
    wasm_smith::Config {
        min_exports: 1,
        max_imports: 0,
        export_everything: true,
        min_funcs: 1,
        max_funcs: 12,
        max_instructions: 200,
        max_memory32_bytes: 4 << 16,
        max_table_elements: 64,
        max_tables: 2,
        max_memories: 1,
        exceptions_enabled: false,
        gc_enabled: false,
        threads_enabled: false,
        memory64_enabled: false,
        shared_everything_threads_enabled: false,
        custom_page_sizes_enabled: false,
        wide_arithmetic_enabled: false,
        tail_call_enabled: true,
        simd_enabled: true,
        relaxed_simd_enabled: true,
        reference_types_enabled: true,
        multi_value_enabled: true,
        bulk_memory_enabled: true,
        extended_const_enabled: true,
        ..wasm_smith::Config::default()
    }
}

/// The module for a seed: the first of the seed's byte streams from which wasm-smith builds a
/// module exporting at least one function (it sometimes generates none, whatever `min_funcs`
/// says). Deterministic per seed.
pub fn module(seed: u64) -> Vec<u8> {
    let mut s = seed;
    for _ in 0..64 {
        let bytes: Vec<u8> = (0..2048)
            .flat_map(|_| splitmix(&mut s).to_le_bytes())
            .collect();
        let mut u = Unstructured::new(&bytes);
        if let Ok(m) = wasm_smith::Module::new(smith_config(), &mut u) {
            let wasm = m.to_bytes();
            if !exports(&wasm).is_empty() {
                return wasm;
            }
        }
    }
    panic!("seed {seed}: wasm-smith produced no module with an exported function in 64 tries")
}

fn exports(wasm: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    for p in wasmparser::Parser::new(0).parse_all(wasm).flatten() {
        if let wasmparser::Payload::ExportSection(r) = p {
            for e in r.into_iter().flatten() {
                if e.kind == wasmparser::ExternalKind::Func {
                    out.push(e.name.to_string());
                }
            }
        }
    }
    out
}

fn build(wasm: &[u8], policy: &Policy, isa: Isa) -> Result<Program, String> {
    Program::from_wasm(
        wasm,
        policy,
        isa,
        &EngineOptions {
            opt_level: 2,
            fuel: true,
        },
    )
    .map_err(|e| e.to_string())
}

/// Judges the module of `seed`.
pub fn judge(seed: u64) -> Verdict {
    let wasm = module(seed);
    let names = exports(&wasm);
    let plain = match build(&wasm, &Policy::plain(), Isa::Native) {
        Ok(p) => p,
        Err(e) => return Verdict::Mismatch(format!("plain build failed: {e}")),
    };
    let policy = Policy {
        function_entry: true,
        loop_header: false,
        counter_loop: true,
        threshold_bits: 2,
        instrument: true,
    };
    let inst = match build(&wasm, &policy, Isa::Native) {
        Ok(p) => p,
        Err(e) => return Verdict::Mismatch(format!("instrumented build failed: {e}")),
    };
    let cfg = |fuel: u64| RunConfig {
        fuel: Some(fuel),
        ..RunConfig::default()
    };
    let reference = match plain.probe(&cfg(FUEL), &names, 0, None, Trigger::None) {
        Ok(ProbeEnd::Done { results, state, .. }) => {
            if results
                .iter()
                // Resource exhaustion is not semantics: instrumented frames are larger, so a
                // module that exhausts the stack does so at another depth, with another state.
                .any(|r| matches!(r, mvvm_runtime::CallResult::Trap(t) if t == "OutOfFuel" || t == "StackOverflow"))
            {
                return Verdict::Inconclusive;
            }
            (results, state)
        }
        Ok(ProbeEnd::Checkpointed { .. }) => {
            return Verdict::Mismatch("plain module checkpointed".into())
        }
        Err(e) if e.to_string().contains("start function") => return Verdict::Inconclusive,
        Err(e) if e.to_string().contains("cannot instantiate") => {
            // Instantiation itself traps (e.g. an out-of-bounds data segment): so must the
            // instrumented module's, identically.
            return match inst.probe(&cfg(FUEL * 50), &names, 0, None, Trigger::None) {
                Err(e2) if e2.to_string() == e.to_string() => Verdict::Agree {
                    checkpointed: false,
                },
                other => Verdict::Mismatch(format!(
                    "plain failed to instantiate ({e}), instrumented: {other:?}"
                )),
            };
        }
        Err(e) => return Verdict::Mismatch(format!("plain run failed: {e}")),
    };
    let big = FUEL * 50;
    let same = |results: &[mvvm_runtime::CallResult],
                state: &mvvm_checkpoint::Snapshot,
                what: &str|
     -> Option<String> {
        if results != reference.0.as_slice() {
            return Some(format!(
                "{what}: results differ: plain {:?} vs {results:?}",
                reference.0
            ));
        }
        if state.memories != reference.1.memories {
            return Some(format!("{what}: final memory differs"));
        }
        if state.globals != reference.1.globals {
            return Some(format!(
                "{what}: final globals differ: plain {:?} vs {:?}",
                reference.1.globals, state.globals
            ));
        }
        if state.tables != reference.1.tables {
            return Some(format!("{what}: final tables differ"));
        }
        None
    };
    let polls = match inst.probe(&cfg(big), &names, 0, None, Trigger::Poll(u64::MAX)) {
        Ok(ProbeEnd::Done {
            results,
            state,
            polls,
        }) => {
            if let Some(m) = same(&results, &state, "instrumented") {
                return Verdict::Mismatch(m);
            }
            polls
        }
        Ok(ProbeEnd::Checkpointed { .. }) => {
            return Verdict::Mismatch("instrumented run checkpointed without a trigger".into())
        }
        Err(e) => return Verdict::Mismatch(format!("instrumented run failed: {e}")),
    };
    if polls == 0 {
        return Verdict::Agree {
            checkpointed: false,
        };
    }
    // Checkpoint at a random poll, resume (on pulley64 for odd seeds), then call the rest.
    let mut s = seed ^ 0xC0FFEE;
    let n = 1 + splitmix(&mut s) % polls;
    let (index, mut results, snap) = match inst.probe(&cfg(big), &names, 0, None, Trigger::Poll(n))
    {
        Ok(ProbeEnd::Checkpointed {
            index,
            results,
            snap,
            ..
        }) => (index, results, snap),
        Ok(ProbeEnd::Done { .. }) => {
            return Verdict::Mismatch(format!("no checkpoint at poll {n} of {polls}"))
        }
        Err(e) => return Verdict::Mismatch(format!("checkpoint run failed: {e}")),
    };
    let resumer = if seed % 2 == 1 {
        match build(&wasm, &policy, Isa::Pulley64) {
            Ok(p) => p,
            Err(e) => return Verdict::Mismatch(format!("pulley64 build failed: {e}")),
        }
    } else {
        inst
    };
    match resumer.probe(&cfg(big), &names, index, Some(&snap), Trigger::None) {
        Ok(ProbeEnd::Done {
            results: rest,
            state,
            ..
        }) => {
            results.extend(rest);
            match same(
                &results,
                &state,
                &format!("resumed after poll {n} of {polls}"),
            ) {
                Some(m) => Verdict::Mismatch(m),
                None => Verdict::Agree { checkpointed: true },
            }
        }
        Ok(ProbeEnd::Checkpointed { .. }) => {
            Verdict::Mismatch("resumed run checkpointed without a trigger".into())
        }
        Err(e) => Verdict::Mismatch(format!("resume after poll {n} failed: {e}")),
    }
}

/// Judges seeds `first..first + count`.
pub fn run(first: u64, count: u64) -> Tally {
    let mut t = Tally::default();
    for seed in first..first + count {
        match judge(seed) {
            Verdict::Agree { checkpointed } => {
                t.agree += 1;
                t.checkpointed += u64::from(checkpointed);
            }
            Verdict::Inconclusive => t.inconclusive += 1,
            Verdict::Mismatch(m) => t.mismatches.push((seed, m)),
        }
    }
    t
}

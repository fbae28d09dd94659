//! The checkpoint-site transform: wasm in, instrumented wasm plus its site table out.
//!
//! [`instrument`] adds checkpoint sites according to a [`Policy`], makes every function that can reach
//! a site able to unwind its frame into the host and rewind it later (see the `body` module), removes the start
//! section (exported as [`abi::EXPORT_START`](mvvm_contract::abi::EXPORT_START) so a restore never runs it
//! twice), and exports every mutable global, memory, table and address-taken function under reserved
//! names. Functions that cannot reach a site are left untouched.
//!
//! With [`Policy::plain`] nothing is instrumented: only the exports and the start-section change are
//! made, which gives the fair baseline every cost is measured against.
//!
//! [`instrument_as`] is the recipe, in five phases: `analyze` reads and validates the module and
//! scans each body for its calls and loops (`loops` decides what each loop header gets); `reach`
//! finds the functions that can reach a site; `plan` places everything the transform adds in the
//! index spaces; `code` rewrites each such body (`body`, with `liveness`); `assemble` writes the
//! output module section by section.

mod analyze;
mod assemble;
mod body;
mod code;
mod liveness;
mod loops;
mod plan;
mod reach;

use mvvm_contract::{ModuleInfo, Policy};
use wasmparser::{Validator, WasmFeatures};

/// The result of [`instrument`].
pub struct Instrumented {
    /// The instrumented module.
    pub wasm: Vec<u8>,
    /// Its site table and function list.
    pub info: ModuleInfo,
}

/// Why a module could not be transformed.
#[derive(Debug, thiserror::Error)]
pub enum TransformError {
    /// Not a valid WebAssembly module.
    #[error("not a valid WebAssembly module: {0}")]
    Invalid(String),
    /// Uses a proposal mvvm cannot checkpoint.
    #[error("unsupported WebAssembly proposal: {proposal} ({detail}); mvvm cannot checkpoint modules that use it")]
    Unsupported {
        /// The proposal's name.
        proposal: &'static str,
        /// What in the module uses it.
        detail: String,
    },
    /// The module already uses names the transform reserves.
    #[error("the module already uses the reserved name {0:?}; was it instrumented twice?")]
    Reserved(String),
    /// A bug in the transform.
    #[error("internal transform error: {0}")]
    Internal(&'static str),
    /// Re-encoding failed.
    #[error("re-encoding failed: {0}")]
    Reencode(String),
}

impl TransformError {
    fn reencode<E: std::fmt::Debug>(e: wasm_encoder::reencode::Error<E>) -> TransformError {
        TransformError::Reencode(format!("{e:?}"))
    }
}

impl From<wasmparser::BinaryReaderError> for TransformError {
    fn from(e: wasmparser::BinaryReaderError) -> Self {
        TransformError::Invalid(e.to_string())
    }
}

/// The wasm features mvvm accepts.
pub fn supported_features() -> WasmFeatures {
    WasmFeatures::WASM2
        | WasmFeatures::TAIL_CALL
        | WasmFeatures::EXTENDED_CONST
        | WasmFeatures::MULTI_MEMORY
        | WasmFeatures::RELAXED_SIMD
}

/// Names the proposal behind a validation error under [`supported_features`].
fn classify_unsupported(msg: &str) -> &'static str {
    let m = msg.to_ascii_lowercase();
    let table: [(&[&str], &'static str); 7] = [
        (&["exception", "tag", "try", "throw"], "exception handling"),
        (
            &["shared", "thread", "atomic"],
            "threads (shared memory and atomics)",
        ),
        (&["memory64", "64-bit", "table64", "index type"], "memory64"),
        (&["component"], "component model"),
        (&["stack switching", "cont"], "stack switching"),
        (
            &[
                "gc",
                "struct",
                "array",
                "i31",
                "heap type",
                "subtype",
                "rec group",
            ],
            "GC",
        ),
        (
            &["function reference", "typed"],
            "typed function references",
        ),
    ];
    for (words, name) in table {
        if words.iter().any(|w| m.contains(w)) {
            return name;
        }
    }
    "a post-2.0 proposal"
}

/// Validates `wasm`, returning a typed error that names the proposal when it is valid wasm that
/// mvvm does not support.
pub fn check_features(wasm: &[u8]) -> Result<(), TransformError> {
    if wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] != [1, 0, 0, 0] {
        return Err(TransformError::Unsupported {
            proposal: "component model",
            detail: "the input is a component, not a core module".into(),
        });
    }
    let supported = Validator::new_with_features(supported_features()).validate_all(wasm);
    match supported {
        Ok(_) => Ok(()),
        Err(e) => match Validator::new_with_features(WasmFeatures::all()).validate_all(wasm) {
            Err(e) => Err(TransformError::Invalid(e.to_string())),
            Ok(_) => Err(TransformError::Unsupported {
                proposal: classify_unsupported(e.message()),
                detail: e.to_string(),
            }),
        },
    }
}

/// What the transform makes of the functions that can reach a site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Make them able to unwind into the host and rewind: what `mvvm-aot` builds.
    Checkpoint,
    /// Only add the policy's poll sites, calling the same `mvvm.poll`, and nothing that could
    /// unwind. Such a module cannot be checkpointed; it is what a generic unwinder (Binaryen's
    /// Asyncify, in `bench/`) is measured on, so that both pay for the same sites. The countdown
    /// code is the one Asyncify runs fastest with: one countdown per activation for every loop
    /// header, and the site id as a constant (see `body::add_polls`).
    PollsOnly,
}

/// Instruments `wasm` (binary) according to `policy` ([`Mode::Checkpoint`]).
pub fn instrument(wasm: &[u8], policy: &Policy) -> Result<Instrumented, TransformError> {
    instrument_as(wasm, policy, Mode::Checkpoint)
}

/// Instruments `wasm` (binary) according to `policy`, in `mode`.
pub fn instrument_as(
    wasm: &[u8],
    policy: &Policy,
    mode: Mode,
) -> Result<Instrumented, TransformError> {
    check_features(wasm)?;
    // Phase 1: read and validate; scan each body for its calls and loops.
    let (mut facts, bodies) = analyze::read_module(wasm)?;
    let scans = analyze::scan_bodies(&mut facts, &bodies, policy)?;
    // Phase 2: which functions can reach a site.
    let reach = reach::reach(policy, &facts, &scans);
    for (f, may_unwind) in facts.functions.iter_mut().zip(&reach.may_unwind) {
        f.instrumented = *may_unwind;
    }
    // Phase 3: where the transform's additions go.
    let mut plan = plan::plan(policy, mode, &facts, reach);
    // Phase 4: rewrite the bodies of the functions that can reach a site.
    let code = code::rewrite_bodies(&mut plan, mode, bodies, &scans)?;
    // Phase 5: the output module.
    let wasm = assemble::assemble(&facts, &plan, &code)?;
    let info = ModuleInfo {
        policy: policy.clone(),
        imported_funcs: facts.imported_funcs,
        functions: facts.functions,
        sites: code.sites,
        has_start: facts.start.is_some(),
        slots: plan.slots.types,
    };
    Ok(Instrumented { wasm, info })
}

/// Reads `.wasm` or `.wat` bytes (text is detected by content, not by file name).
pub fn parse_input(bytes: &[u8]) -> Result<Vec<u8>, TransformError> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes.to_vec());
    }
    let not_a_module =
        || TransformError::Invalid("not a wasm binary (no \\0asm magic) and not WAT text".into());
    let text = std::str::from_utf8(bytes).map_err(|_| not_a_module())?;
    if !looks_like_wat(text) {
        return Err(not_a_module());
    }
    wat::parse_str(text).map_err(|e| TransformError::Invalid(wat_error(&e)))
}

/// Whether `text` starts like WAT: after blank space and `;;` comments, a `(`.
fn looks_like_wat(text: &str) -> bool {
    let mut rest = text.trim_start();
    while let Some(after) = rest.strip_prefix(";;") {
        rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
    }
    rest.starts_with('(')
}

/// A WAT parse error in one line: `cannot parse WAT at LINE:COLUMN: message`.
fn wat_error(e: &wat::Error) -> String {
    let text = e.to_string();
    let message = text.lines().next().unwrap_or("unknown error");
    let at = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "))
        .and_then(|l| {
            l.rsplit_once(':')
                .and_then(|(a, col)| Some((a.rsplit_once(':')?.1, col)))
        });
    match at {
        Some((line, col)) => format!("cannot parse WAT at {line}:{col}: {message}"),
        None => format!("cannot parse WAT: {message}"),
    }
}

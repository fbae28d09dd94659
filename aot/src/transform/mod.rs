//! The checkpoint-site transform: wasm in, instrumented wasm plus its site table out.
//!
//! [`instrument`] adds checkpoint sites according to a [`Policy`], makes every function that can reach
//! a site able to unwind its frame into the host and rewind it later (see [`body`]), removes the start
//! section (exported as [`abi::EXPORT_START`](mvvm_contract::abi::EXPORT_START) so a restore never runs it
//! twice), and exports every mutable global, memory, table and address-taken function under reserved
//! names. Functions that cannot reach a site are left untouched.
//!
//! With [`Policy::plain`] nothing is instrumented: only the exports and the start-section change are
//! made, which gives the fair baseline every cost is measured against.

mod analyze;
mod body;
mod liveness;
mod loops;
mod reach;

use mvvm_contract::abi::{self, HostFunc, SlotType};
use mvvm_contract::{ModuleInfo, Policy, SiteInfo};
use std::collections::HashMap;
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasmparser::{FuncType, Payload, Validator, WasmFeatures};

/// Name of the branch-hinting proposal's custom section.
const BRANCH_HINT_SECTION: &str = "metadata.code.branch_hint";

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

/// Re-encodes with the function index space shifted by the host imports.
#[derive(Clone, Copy)]
pub(crate) struct Shift {
    imported_funcs: u32,
    added: u32,
}

impl Reencode for Shift {
    type Error = std::convert::Infallible;
    fn function_index(&mut self, func: u32) -> Result<u32, wasm_encoder::reencode::Error> {
        Ok(if func < self.imported_funcs {
            func
        } else {
            func + self.added
        })
    }
}

/// Module-level facts the body rewriter needs.
pub(crate) struct ModCtx {
    /// The function a poll site calls: the module's poll stub, or the `poll` import.
    poll_target: u32,
    policy: Policy,
    imported_funcs: u32,
    types: Vec<Option<FuncType>>,
    func_types: Vec<u32>,
    may_unwind: Vec<bool>,
    type_unwind: Vec<bool>,
    canonical: Vec<u32>,
    state_global: u32,
    countdown: Countdown,
    rsite_global: u32,
    shift: Shift,
}

/// Where an instrumented module keeps its countdown (see [`abi::EXPORT_COUNTDOWN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Countdown {
    /// A one-page memory of that index, which the host may write from any thread.
    Memory(u32),
    /// A mutable global of that index ([`Mode::PollsOnly`]).
    Global(u32),
}

impl Countdown {
    /// The instructions that push the countdown's current value.
    fn get(self) -> Vec<wasm_encoder::Instruction<'static>> {
        use wasm_encoder::Instruction as I;
        match self {
            Countdown::Memory(m) => vec![
                I::I32Const(0),
                I::I32Load(wasm_encoder::MemArg {
                    offset: abi::COUNTDOWN_OFFSET,
                    align: 2,
                    memory_index: m,
                }),
            ],
            Countdown::Global(g) => vec![I::GlobalGet(g)],
        }
    }

    /// Whether `ins` is the last instruction of [`Countdown::get`] (the original code cannot
    /// name the countdown, so this recognises the transform's own reads).
    fn read_by(self, ins: &wasm_encoder::Instruction<'_>) -> bool {
        use wasm_encoder::Instruction as I;
        match (self, ins) {
            (Countdown::Memory(m), I::I32Load(a)) => a.memory_index == m,
            (Countdown::Global(g), I::GlobalGet(h)) => *h == g,
            _ => false,
        }
    }
}

impl ModCtx {
    fn host(&self, f: HostFunc) -> u32 {
        self.imported_funcs + f as u32
    }
    /// Index of frame slot global 0 (`mvvm:slot:0`).
    fn slot_base(&self) -> u32 {
        self.rsite_global + 1
    }
    /// The instructions that push the countdown's current value.
    fn countdown_get(&self) -> Vec<wasm_encoder::Instruction<'static>> {
        self.countdown.get()
    }
    fn reencoder(&self) -> Shift {
        self.shift
    }
    fn type_at(&self, idx: u32) -> &FuncType {
        self.types[idx as usize]
            .as_ref()
            .expect("validated: call types are function types")
    }
    fn func_type(&self, f: u32) -> &FuncType {
        self.type_at(self.func_types[f as usize])
    }
    fn type_may_unwind(&self, idx: u32) -> bool {
        self.type_unwind.get(idx as usize).copied().unwrap_or(false)
    }
}

/// The frame slot globals, appended after `mvvm:rsite` as the bodies ask for them.
pub(crate) struct SlotPool {
    base: u32,
    types: Vec<SlotType>,
    by_type: HashMap<SlotType, Vec<u32>>,
}

impl SlotPool {
    /// The global index of the `k`-th slot global of type `t`.
    fn global(&mut self, t: SlotType, k: usize) -> u32 {
        let list = self.by_type.entry(t).or_default();
        while list.len() <= k {
            list.push(self.types.len() as u32);
            self.types.push(t);
        }
        self.base + list[k]
    }
}

/// Function types appended to the type section (block types and host imports), deduplicated.
pub(crate) struct BlockTypes {
    base: u32,
    list: Vec<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>)>,
    index: HashMap<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>), u32>,
}

impl BlockTypes {
    fn intern(
        &mut self,
        params: Vec<wasm_encoder::ValType>,
        results: Vec<wasm_encoder::ValType>,
    ) -> u32 {
        let key = (params, results);
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        let i = self.base + self.list.len() as u32;
        self.list.push(key.clone());
        self.index.insert(key, i);
        i
    }
}

fn host_signature(f: HostFunc) -> (Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>) {
    use wasm_encoder::ValType as V;
    match f {
        HostFunc::Poll => (vec![V::I32], vec![]),
        HostFunc::SaveFrame => (vec![V::I32, V::I32], vec![]),
        HostFunc::RestoreFrame => (vec![V::I32], vec![V::I32]),
        HostFunc::RewindIndex => (vec![V::I32, V::I32], vec![V::I32]),
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
    let reach::Reach {
        may_unwind,
        type_unwind,
    } = reach::reach(policy, &facts, &scans);
    let analyze::Facts {
        sections,
        types,
        func_types,
        mut functions,
        imported_funcs,
        mutable_globals,
        n_globals,
        n_memories,
        n_tables,
        address_taken,
        start,
        canonical,
    } = facts;
    for (i, f) in functions.iter_mut().enumerate() {
        f.instrumented = may_unwind[i];
    }
    let n_funcs = func_types.len();

    let added = if policy.instrument {
        HostFunc::ALL.len() as u32
    } else {
        0
    };
    // Poll sites call a stub defined after the clones rather than the import (contract/FORMAT.md §3,
    // "Poll stub"): Cranelift hoists an import's code pointer and context out of the loops around
    // the call; a call to a function of the same module needs neither.
    let n_defined_funcs = (n_funcs as u32).saturating_sub(imported_funcs);
    let n_clones = match mode {
        Mode::Checkpoint => may_unwind[imported_funcs as usize..]
            .iter()
            .filter(|m| **m)
            .count() as u32,
        Mode::PollsOnly => 0,
    };
    let ctx = ModCtx {
        poll_target: if n_clones > 0 {
            imported_funcs + added + n_defined_funcs + n_clones
        } else {
            imported_funcs + HostFunc::Poll as u32
        },
        policy: policy.clone(),
        imported_funcs,
        types: types.clone(),
        func_types: func_types.clone(),
        may_unwind,
        type_unwind,
        canonical,
        state_global: n_globals,
        // Checkpointable modules keep the countdown in a memory of their own, appended after
        // the module's memories, so that a doorbell can zero it from another thread.
        countdown: match mode {
            Mode::Checkpoint => Countdown::Memory(n_memories),
            Mode::PollsOnly => Countdown::Global(n_globals + 1),
        },
        rsite_global: n_globals + 1 + u32::from(mode == Mode::PollsOnly),
        shift: Shift {
            imported_funcs,
            added,
        },
    };
    let mut block_types = BlockTypes {
        base: types.len() as u32,
        list: Vec::new(),
        index: HashMap::new(),
    };
    let host_types: Vec<u32> = HostFunc::ALL
        .iter()
        .map(|h| {
            let (p, r) = host_signature(*h);
            block_types.intern(p, r)
        })
        .collect();

    let mut slots = SlotPool {
        base: ctx.slot_base(),
        types: Vec::new(),
        by_type: HashMap::new(),
    };

    // Phase 3: rewrite the bodies of the functions that can unwind.
    let mut sites: Vec<SiteInfo> = Vec::new();
    let mut code = wasm_encoder::CodeSection::new();
    let mut allocs = wasmparser::FuncValidatorAllocations::default();
    // Rewind clones of the instrumented functions (original index, body), appended after every
    // defined function: the clone has the rewind dispatches, the function itself does not.
    let n_defined = bodies.len() as u32;
    let mut clones: Vec<(u32, body::Rewritten)> = Vec::new();
    // Branch hints of the instrumentation's own branches, by final function index (ascending:
    // the functions, then the clones, in order).
    let mut hints = wasm_encoder::BranchHints::new();
    for (i, (fv, body)) in bodies.into_iter().enumerate() {
        let f = imported_funcs + i as u32;
        if ctx.may_unwind[f as usize] {
            let v = fv.into_validator(std::mem::take(&mut allocs));
            let func = match mode {
                Mode::Checkpoint => {
                    let clone_index = imported_funcs + added + n_defined + clones.len() as u32;
                    let (func, clone) = body::rewrite(
                        &ctx,
                        &mut block_types,
                        &mut slots,
                        &mut sites,
                        body::FuncIds {
                            func: f,
                            clone: clone_index,
                            loops: &scans[i].loops,
                        },
                        &body,
                        v,
                    )?;
                    clones.push((f, clone));
                    if !func.hints.is_empty() {
                        hints.function_hints(f + added, func.hints);
                    }
                    func.func
                }
                Mode::PollsOnly => body::add_polls(&ctx, &mut sites, f, &body, &scans[i].loops, v)?,
            };
            code.function(&func);
        } else {
            let mut re = ctx.reencoder();
            re.parse_function_body(&mut code, body)
                .map_err(TransformError::reencode)?;
        }
    }
    for (k, (_, c)) in clones.iter().enumerate() {
        code.function(&c.func);
        if !c.hints.is_empty() {
            let index = imported_funcs + added + n_defined + k as u32;
            hints.function_hints(index, c.hints.iter().copied());
        }
    }
    if clones.len() as u32 != n_clones {
        return Err(TransformError::Internal(
            "clone count differs from the stub's index",
        ));
    }
    if !clones.is_empty() {
        let mut f = wasm_encoder::Function::new([]);
        f.instruction(&wasm_encoder::Instruction::LocalGet(0));
        f.instruction(&wasm_encoder::Instruction::Call(ctx.host(HostFunc::Poll)));
        f.instruction(&wasm_encoder::Instruction::End);
        code.function(&f);
    }

    // Phase 4: reassemble the module.
    let mut module = wasm_encoder::Module::new();
    let mut re = ctx.reencoder();
    let mut customs: Vec<&Payload<'_>> = Vec::new();
    // Which of the sections the transform extends were written: types, imports, globals, exports,
    // memories.
    let mut wrote = [false; 5];

    let emit_types = |module: &mut wasm_encoder::Module,
                      base: Option<&wasmparser::TypeSectionReader<'_>>,
                      bt: &BlockTypes|
     -> Result<(), TransformError> {
        let mut s = wasm_encoder::TypeSection::new();
        if let Some(r) = base {
            RoundtripReencoder
                .parse_type_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        for (p, r) in &bt.list {
            s.ty().function(p.iter().copied(), r.iter().copied());
        }
        module.section(&s);
        Ok(())
    };
    let emit_imports = |module: &mut wasm_encoder::Module,
                        base: Option<&wasmparser::ImportSectionReader<'_>>|
     -> Result<(), TransformError> {
        let mut s = wasm_encoder::ImportSection::new();
        if let Some(r) = base {
            RoundtripReencoder
                .parse_import_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        if policy.instrument {
            for (h, t) in HostFunc::ALL.iter().zip(&host_types) {
                s.import(
                    abi::IMPORT_MODULE,
                    h.name(),
                    wasm_encoder::EntityType::Function(*t),
                );
            }
        }
        module.section(&s);
        Ok(())
    };
    let emit_memories = |module: &mut wasm_encoder::Module,
                         base: Option<&wasmparser::MemorySectionReader<'_>>|
     -> Result<(), TransformError> {
        let mut s = wasm_encoder::MemorySection::new();
        if let Some(r) = base {
            ctx.reencoder()
                .parse_memory_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        if policy.instrument {
            if let Countdown::Memory(_) = ctx.countdown {
                // The countdown's page: it never grows, so the host's pointer into it stays valid.
                s.memory(wasm_encoder::MemoryType {
                    minimum: 1,
                    maximum: Some(1),
                    memory64: false,
                    shared: false,
                    page_size_log2: None,
                });
            }
        }
        if !s.is_empty() {
            module.section(&s);
        }
        Ok(())
    };
    let emit_globals = |module: &mut wasm_encoder::Module,
                        base: Option<&wasmparser::GlobalSectionReader<'_>>|
     -> Result<(), TransformError> {
        let mut s = wasm_encoder::GlobalSection::new();
        if let Some(r) = base {
            ctx.reencoder()
                .parse_global_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        if policy.instrument {
            let g = wasm_encoder::GlobalType {
                val_type: wasm_encoder::ValType::I32,
                mutable: true,
                shared: false,
            };
            s.global(g, &wasm_encoder::ConstExpr::i32_const(State::Normal as i32));
            if let Countdown::Global(_) = ctx.countdown {
                s.global(
                    g,
                    &wasm_encoder::ConstExpr::i32_const(policy.countdown_reset()),
                );
            }
            s.global(g, &wasm_encoder::ConstExpr::i32_const(0)); // mvvm:rsite
            for t in &slots.types {
                let (val_type, init) = slot_global(*t);
                s.global(
                    wasm_encoder::GlobalType {
                        val_type,
                        mutable: true,
                        shared: false,
                    },
                    &init,
                );
            }
        }
        module.section(&s);
        Ok(())
    };
    use mvvm_contract::abi::State;
    let emit_exports = |module: &mut wasm_encoder::Module,
                        base: Option<&wasmparser::ExportSectionReader<'_>>|
     -> Result<(), TransformError> {
        let mut s = wasm_encoder::ExportSection::new();
        if let Some(r) = base {
            ctx.reencoder()
                .parse_export_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        if policy.instrument {
            s.export(
                abi::EXPORT_STATE,
                wasm_encoder::ExportKind::Global,
                ctx.state_global,
            );
            let (kind, index) = match ctx.countdown {
                Countdown::Memory(m) => (wasm_encoder::ExportKind::Memory, m),
                Countdown::Global(g) => (wasm_encoder::ExportKind::Global, g),
            };
            s.export(abi::EXPORT_COUNTDOWN, kind, index);
            s.export(
                abi::EXPORT_RSITE,
                wasm_encoder::ExportKind::Global,
                ctx.rsite_global,
            );
            for n in 0..slots.types.len() as u32 {
                s.export(
                    &abi::export_slot(n),
                    wasm_encoder::ExportKind::Global,
                    slots.base + n,
                );
            }
        }
        for g in &mutable_globals {
            s.export(
                &abi::export_global(*g),
                wasm_encoder::ExportKind::Global,
                *g,
            );
        }
        for m in 0..n_memories {
            s.export(&abi::export_memory(m), wasm_encoder::ExportKind::Memory, m);
        }
        for t in 0..n_tables {
            s.export(&abi::export_table(t), wasm_encoder::ExportKind::Table, t);
        }
        for f in &address_taken {
            let idx = ctx
                .reencoder()
                .function_index(*f)
                .map_err(TransformError::reencode)?;
            s.export(&abi::export_func(*f), wasm_encoder::ExportKind::Func, idx);
        }
        if let Some(f) = start {
            let idx = ctx
                .reencoder()
                .function_index(f)
                .map_err(TransformError::reencode)?;
            s.export(abi::EXPORT_START, wasm_encoder::ExportKind::Func, idx);
        }
        module.section(&s);
        Ok(())
    };

    // Section order: type import function table memory global export start elem datacount code data.
    let order = |p: &Payload<'_>| -> u8 {
        match p {
            Payload::TypeSection(_) => 1,
            Payload::ImportSection(_) => 2,
            Payload::FunctionSection(_) => 3,
            Payload::TableSection(_) => 4,
            Payload::MemorySection(_) => 5,
            Payload::GlobalSection(_) => 6,
            Payload::ExportSection(_) => 7,
            Payload::StartSection { .. } => 8,
            Payload::ElementSection(_) => 9,
            Payload::DataCountSection { .. } => 10,
            Payload::CodeSectionStart { .. } => 11,
            Payload::DataSection(_) => 12,
            _ => 0,
        }
    };
    let fill_missing = |module: &mut wasm_encoder::Module,
                        upto: u8,
                        wrote: &mut [bool; 5]|
     -> Result<(), TransformError> {
        if upto > 1 && !wrote[0] {
            emit_types(module, None, &block_types)?;
            wrote[0] = true;
        }
        if upto > 2 && !wrote[1] {
            emit_imports(module, None)?;
            wrote[1] = true;
        }
        if upto > 5 && !wrote[4] {
            emit_memories(module, None)?;
            wrote[4] = true;
        }
        if upto > 6 && !wrote[2] {
            emit_globals(module, None)?;
            wrote[2] = true;
        }
        if upto > 7 && !wrote[3] {
            emit_exports(module, None)?;
            wrote[3] = true;
        }
        Ok(())
    };
    for p in &sections {
        let o = order(p);
        if o != 0 {
            fill_missing(&mut module, o, &mut wrote)?;
        }
        match p {
            Payload::TypeSection(r) => {
                emit_types(&mut module, Some(r), &block_types)?;
                wrote[0] = true;
            }
            Payload::ImportSection(r) => {
                emit_imports(&mut module, Some(r))?;
                wrote[1] = true;
            }
            Payload::GlobalSection(r) => {
                emit_globals(&mut module, Some(r))?;
                wrote[2] = true;
            }
            Payload::ExportSection(r) => {
                emit_exports(&mut module, Some(r))?;
                wrote[3] = true;
            }
            Payload::StartSection { .. } => {}
            Payload::FunctionSection(r) => {
                let mut s = wasm_encoder::FunctionSection::new();
                re.parse_function_section(&mut s, r.clone())
                    .map_err(TransformError::reencode)?;
                for (f, _) in &clones {
                    s.function(ctx.func_types[*f as usize]);
                }
                if !clones.is_empty() {
                    s.function(host_types[HostFunc::Poll as usize]);
                }
                module.section(&s);
            }
            Payload::TableSection(r) => {
                let mut s = wasm_encoder::TableSection::new();
                re.parse_table_section(&mut s, r.clone())
                    .map_err(TransformError::reencode)?;
                module.section(&s);
            }
            Payload::MemorySection(r) => {
                emit_memories(&mut module, Some(r))?;
                wrote[4] = true;
            }
            Payload::ElementSection(r) => {
                let mut s = wasm_encoder::ElementSection::new();
                re.parse_element_section(&mut s, r.clone())
                    .map_err(TransformError::reencode)?;
                module.section(&s);
            }
            Payload::DataCountSection { count, .. } => {
                module.section(&wasm_encoder::DataCountSection { count: *count });
            }
            Payload::CodeSectionStart { .. } => {
                // The branch-hinting proposal places the hints before the code they describe.
                if !hints.is_empty() {
                    module.section(&hints);
                }
                module.section(&code);
            }
            Payload::DataSection(r) => {
                let mut s = wasm_encoder::DataSection::new();
                re.parse_data_section(&mut s, r.clone())
                    .map_err(TransformError::reencode)?;
                module.section(&s);
            }
            // The input's own branch hints name offsets of the code before rewriting.
            Payload::CustomSection(c) if c.name() == BRANCH_HINT_SECTION => {}
            Payload::CustomSection(_) => customs.push(p),
            _ => {}
        }
    }
    fill_missing(&mut module, 8, &mut wrote)?;
    for p in customs {
        if let Payload::CustomSection(c) = p {
            re.parse_custom_section(&mut module, c.clone())
                .map_err(TransformError::reencode)?;
        }
    }
    let wasm = module.finish();
    let info = ModuleInfo {
        policy: policy.clone(),
        imported_funcs,
        functions,
        sites,
        has_start: start.is_some(),
        slots: slots.types.clone(),
    };
    Ok(Instrumented { wasm, info })
}

/// The wasm type and initial value of a frame slot global.
fn slot_global(t: SlotType) -> (wasm_encoder::ValType, wasm_encoder::ConstExpr) {
    use wasm_encoder::{ConstExpr as C, HeapType, ValType as V};
    match t {
        SlotType::I32 => (V::I32, C::i32_const(0)),
        SlotType::I64 => (V::I64, C::i64_const(0)),
        SlotType::F32 => (V::F32, C::f32_const(0.0f32.into())),
        SlotType::F64 => (V::F64, C::f64_const(0.0f64.into())),
        SlotType::V128 => (V::V128, C::v128_const(0)),
        SlotType::FuncRef => (V::FUNCREF, C::ref_null(HeapType::FUNC)),
        SlotType::ExternRef => (V::EXTERNREF, C::ref_null(HeapType::EXTERN)),
    }
}

/// Reads `.wasm` or `.wat` bytes (text is detected by content, not by file name).
pub fn parse_input(bytes: &[u8]) -> Result<Vec<u8>, TransformError> {
    if bytes.starts_with(b"\0asm") {
        return Ok(bytes.to_vec());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        TransformError::Invalid(
            "input is neither wasm binary (no \\0asm magic) nor UTF-8 text".into(),
        )
    })?;
    wat::parse_str(text).map_err(|e| TransformError::Invalid(format!("cannot parse WAT: {e}")))
}

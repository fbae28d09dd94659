//! Phase 5 of the transform: the output module. Every input section is re-emitted in order; the
//! sections the transform extends (types, imports, memories, globals, exports, functions) get
//! their additions, and those the input lacks but the additions need are written where they
//! belong. The start section is dropped (its function is exported instead), and so are the
//! input's branch hints, which name offsets of the code before rewriting.

use super::analyze::Facts;
use super::code::Code;
use super::plan::{Countdown, Plan};
use super::TransformError;
use mvvm_contract::abi::{self, HostFunc, SlotType, State};
use wasm_encoder::reencode::{Reencode, RoundtripReencoder};
use wasm_encoder::{ConstExpr, ExportKind, GlobalType, Module};
use wasmparser::Payload;

/// Name of the branch-hinting proposal's custom section.
const BRANCH_HINT_SECTION: &str = "metadata.code.branch_hint";

/// Builds the output module from the input's sections, the plan and the rewritten code.
pub(super) fn assemble(
    facts: &Facts<'_>,
    plan: &Plan,
    code: &Code,
) -> Result<Vec<u8>, TransformError> {
    let mut assembler = Assembler {
        facts,
        plan,
        code,
        module: Module::new(),
        written: Written::default(),
    };
    let mut customs = Vec::new();
    for payload in &facts.sections {
        let order = section_order(payload);
        if order != 0 {
            assembler.fill_missing(order)?;
        }
        match payload {
            // The input's own branch hints name offsets of the code before rewriting.
            Payload::CustomSection(c) if c.name() == BRANCH_HINT_SECTION => {}
            Payload::CustomSection(c) => customs.push(c),
            _ => assembler.section(payload)?,
        }
    }
    assembler.fill_missing(START_ORDER)?;
    for custom in customs {
        plan.context
            .reencoder()
            .parse_custom_section(&mut assembler.module, custom.clone())
            .map_err(TransformError::reencode)?;
    }
    Ok(assembler.module.finish())
}

/// The position of a section in the binary format's order (type import function table memory
/// global export start elem datacount code data), 0 for custom and unknown sections.
fn section_order(p: &Payload<'_>) -> u8 {
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
}

/// The [`section_order`] of the start section: every section the transform extends comes before
/// it.
const START_ORDER: u8 = 8;

/// Which of the sections the transform extends have been written.
#[derive(Default)]
struct Written {
    types: bool,
    imports: bool,
    memories: bool,
    globals: bool,
    exports: bool,
}

/// The output module being written.
struct Assembler<'a, 'm> {
    facts: &'a Facts<'m>,
    plan: &'a Plan,
    code: &'a Code,
    module: Module,
    written: Written,
}

impl Assembler<'_, '_> {
    /// Re-emits one non-custom input section, with the transform's additions.
    fn section(&mut self, payload: &Payload<'_>) -> Result<(), TransformError> {
        let mut re = self.plan.context.reencoder();
        match payload {
            Payload::TypeSection(r) => self.types(Some(r))?,
            Payload::ImportSection(r) => self.imports(Some(r))?,
            Payload::FunctionSection(r) => self.functions(r)?,
            Payload::TableSection(r) => {
                let mut s = wasm_encoder::TableSection::new();
                re.parse_table_section(&mut s, r.clone())
                    .map_err(TransformError::reencode)?;
                self.module.section(&s);
            }
            Payload::MemorySection(r) => self.memories(Some(r))?,
            Payload::GlobalSection(r) => self.globals(Some(r))?,
            Payload::ExportSection(r) => self.exports(Some(r))?,
            Payload::StartSection { .. } => {}
            Payload::ElementSection(r) => {
                let mut s = wasm_encoder::ElementSection::new();
                re.parse_element_section(&mut s, r.clone())
                    .map_err(TransformError::reencode)?;
                self.module.section(&s);
            }
            Payload::DataCountSection { count, .. } => {
                self.module
                    .section(&wasm_encoder::DataCountSection { count: *count });
            }
            Payload::CodeSectionStart { .. } => {
                // The branch-hinting proposal places the hints before the code they describe.
                if !self.code.hints.is_empty() {
                    self.module.section(&self.code.hints);
                }
                self.module.section(&self.code.section);
            }
            Payload::DataSection(r) => {
                let mut s = wasm_encoder::DataSection::new();
                re.parse_data_section(&mut s, r.clone())
                    .map_err(TransformError::reencode)?;
                self.module.section(&s);
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes the extended sections that come before `order` and were not in the input.
    fn fill_missing(&mut self, order: u8) -> Result<(), TransformError> {
        if order > 1 && !self.written.types {
            self.types(None)?;
        }
        if order > 2 && !self.written.imports {
            self.imports(None)?;
        }
        if order > 5 && !self.written.memories {
            self.memories(None)?;
        }
        if order > 6 && !self.written.globals {
            self.globals(None)?;
        }
        if order > 7 && !self.written.exports {
            self.exports(None)?;
        }
        Ok(())
    }

    /// The input's types, then the block types and host import types.
    fn types(
        &mut self,
        base: Option<&wasmparser::TypeSectionReader<'_>>,
    ) -> Result<(), TransformError> {
        let mut s = wasm_encoder::TypeSection::new();
        if let Some(r) = base {
            RoundtripReencoder
                .parse_type_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        for (p, r) in &self.plan.block_types.list {
            s.ty().function(p.iter().copied(), r.iter().copied());
        }
        self.module.section(&s);
        self.written.types = true;
        Ok(())
    }

    /// The input's imports, then the host functions (`mvvm.*`).
    fn imports(
        &mut self,
        base: Option<&wasmparser::ImportSectionReader<'_>>,
    ) -> Result<(), TransformError> {
        let mut s = wasm_encoder::ImportSection::new();
        if let Some(r) = base {
            RoundtripReencoder
                .parse_import_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        if self.plan.context.policy.instrument {
            for (h, t) in HostFunc::ALL.iter().zip(&self.plan.host_types) {
                s.import(
                    abi::IMPORT_MODULE,
                    h.name(),
                    wasm_encoder::EntityType::Function(*t),
                );
            }
        }
        self.module.section(&s);
        self.written.imports = true;
        Ok(())
    }

    /// The input's functions, then the rewind clones (each of its function's type) and the poll
    /// stub.
    fn functions(
        &mut self,
        r: &wasmparser::FunctionSectionReader<'_>,
    ) -> Result<(), TransformError> {
        let mut s = wasm_encoder::FunctionSection::new();
        self.plan
            .context
            .reencoder()
            .parse_function_section(&mut s, r.clone())
            .map_err(TransformError::reencode)?;
        for f in &self.code.cloned {
            s.function(self.plan.context.func_types[*f as usize]);
        }
        if !self.code.cloned.is_empty() {
            s.function(self.plan.host_types[HostFunc::Poll as usize]);
        }
        self.module.section(&s);
        Ok(())
    }

    /// The input's memories, then the countdown's page.
    fn memories(
        &mut self,
        base: Option<&wasmparser::MemorySectionReader<'_>>,
    ) -> Result<(), TransformError> {
        let mut s = wasm_encoder::MemorySection::new();
        if let Some(r) = base {
            self.plan
                .context
                .reencoder()
                .parse_memory_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        let context = &self.plan.context;
        if let (true, Countdown::Memory(_)) = (context.policy.instrument, context.countdown) {
            // The countdown's page: it never grows, so the host's pointer into it stays valid.
            s.memory(wasm_encoder::MemoryType {
                minimum: 1,
                maximum: Some(1),
                memory64: false,
                shared: false,
                page_size_log2: None,
            });
        }
        if !s.is_empty() {
            self.module.section(&s);
        }
        self.written.memories = true;
        Ok(())
    }

    /// The input's globals, then the state, the countdown (if it is a global), `$rsite` and the
    /// frame slots.
    fn globals(
        &mut self,
        base: Option<&wasmparser::GlobalSectionReader<'_>>,
    ) -> Result<(), TransformError> {
        let mut s = wasm_encoder::GlobalSection::new();
        let context = &self.plan.context;
        if let Some(r) = base {
            context
                .reencoder()
                .parse_global_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        if context.policy.instrument {
            let g = GlobalType {
                val_type: wasm_encoder::ValType::I32,
                mutable: true,
                shared: false,
            };
            s.global(g, &ConstExpr::i32_const(State::Normal as i32));
            if let Countdown::Global(_) = context.countdown {
                s.global(g, &ConstExpr::i32_const(context.policy.countdown_reset()));
            }
            s.global(g, &ConstExpr::i32_const(0)); // mvvm:rsite
            for t in &self.plan.slots.types {
                let (val_type, init) = slot_global(*t);
                let ty = GlobalType {
                    val_type,
                    mutable: true,
                    shared: false,
                };
                s.global(ty, &init);
            }
        }
        self.module.section(&s);
        self.written.globals = true;
        Ok(())
    }

    /// The input's exports, then the reserved names of the transform's globals and of the state
    /// an image holds (mutable globals, memories, tables, address-taken functions, the start
    /// function).
    fn exports(
        &mut self,
        base: Option<&wasmparser::ExportSectionReader<'_>>,
    ) -> Result<(), TransformError> {
        let mut s = wasm_encoder::ExportSection::new();
        let context = &self.plan.context;
        if let Some(r) = base {
            context
                .reencoder()
                .parse_export_section(&mut s, r.clone())
                .map_err(TransformError::reencode)?;
        }
        if context.policy.instrument {
            s.export(abi::EXPORT_STATE, ExportKind::Global, context.state_global);
            let (kind, index) = match context.countdown {
                Countdown::Memory(m) => (ExportKind::Memory, m),
                Countdown::Global(g) => (ExportKind::Global, g),
            };
            s.export(abi::EXPORT_COUNTDOWN, kind, index);
            s.export(abi::EXPORT_RSITE, ExportKind::Global, context.rsite_global);
            let slots = &self.plan.slots;
            for n in 0..slots.types.len() as u32 {
                s.export(&abi::export_slot(n), ExportKind::Global, slots.base + n);
            }
        }
        let facts = self.facts;
        for g in &facts.mutable_globals {
            s.export(&abi::export_global(*g), ExportKind::Global, *g);
        }
        for m in 0..facts.n_memories {
            s.export(&abi::export_memory(m), ExportKind::Memory, m);
        }
        for t in 0..facts.n_tables {
            s.export(&abi::export_table(t), ExportKind::Table, t);
        }
        let mut re = context.reencoder();
        for f in &facts.address_taken {
            let idx = re.function_index(*f).map_err(TransformError::reencode)?;
            s.export(&abi::export_func(*f), ExportKind::Func, idx);
        }
        if let Some(f) = facts.start {
            let idx = re.function_index(f).map_err(TransformError::reencode)?;
            s.export(abi::EXPORT_START, ExportKind::Func, idx);
        }
        self.module.section(&s);
        self.written.exports = true;
        Ok(())
    }
}

/// The wasm type and initial value of a frame slot global.
fn slot_global(t: SlotType) -> (wasm_encoder::ValType, ConstExpr) {
    use wasm_encoder::{HeapType, ValType as V};
    match t {
        SlotType::I32 => (V::I32, ConstExpr::i32_const(0)),
        SlotType::I64 => (V::I64, ConstExpr::i64_const(0)),
        SlotType::F32 => (V::F32, ConstExpr::f32_const(0.0f32.into())),
        SlotType::F64 => (V::F64, ConstExpr::f64_const(0.0f64.into())),
        SlotType::V128 => (V::V128, ConstExpr::v128_const(0)),
        SlotType::FuncRef => (V::FUNCREF, ConstExpr::ref_null(HeapType::FUNC)),
        SlotType::ExternRef => (V::EXTERNREF, ConstExpr::ref_null(HeapType::EXTERN)),
    }
}

//! Variants of a module for multi-variant execution: the same program with its addresses moved,
//! so that an exploit which needs an absolute address can be right for at most one variant,
//! while every variant behaves the same on benign input.
//!
//! Three kinds of difference, which combine: a shifted stack moves every stack address, a
//! shifted heap ([`heap`]) every address `malloc` returns, and a diversified code section (locals
//! shuffled, junk stores inserted, as a seed chooses) makes every function's compiled code differ
//! in size and layout. A variant says what it is in a custom section of its own, [`SECTION`],
//! which the transform keeps and `mvvm inspect` shows (contract/FORMAT.md, "Variant section").

mod heap;

use wasm_encoder::reencode::{self, Reencode};
use wasmparser::{KnownCustom, Name, Operator, Parser, Payload, TypeRef};

/// The custom section that describes a variant.
pub const SECTION: &str = "mvvm.variant";

/// What makes a variant differ from the module it was made from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// How many bytes lower the C shadow stack starts (`__stack_pointer`'s initial value).
    pub shift_stack: u32,
    /// How many bytes higher the heap starts (the address wasm-ld gives `__heap_base`).
    pub shift_data: u32,
    /// The seed of the semantics-preserving rewrites, if the code is diversified.
    pub diversify: Option<u64>,
}

impl Variant {
    /// Whether this changes nothing.
    pub fn is_identity(&self) -> bool {
        *self == Variant::default()
    }

    /// The section's contents: one `key=value` line per setting.
    fn encode(&self) -> Vec<u8> {
        let mut text = format!("shift-stack={}\n", self.shift_stack);
        if self.shift_data != 0 {
            text += &format!("shift-data={}\n", self.shift_data);
        }
        if let Some(seed) = self.diversify {
            text += &format!("diversify={seed}\n");
        }
        text.into_bytes()
    }

    /// How the variant differs, in words (`mvvm-aot` and `mvvm inspect` say it).
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.shift_stack != 0 {
            parts.push(format!("C stack shifted by {} bytes", self.shift_stack));
        }
        if self.shift_data != 0 {
            parts.push(format!("heap shifted by {} bytes", self.shift_data));
        }
        if let Some(seed) = self.diversify {
            parts.push(format!("code diversified with seed {seed}"));
        }
        parts.join(", ")
    }

    /// Reads a section's contents; unknown keys are skipped, so that newer variants still read.
    fn decode(bytes: &[u8]) -> Option<Variant> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut v = Variant::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("shift-stack", n)) => v.shift_stack = n.parse().ok()?,
                Some(("shift-data", n)) => v.shift_data = n.parse().ok()?,
                Some(("diversify", seed)) => v.diversify = Some(seed.parse().ok()?),
                _ => {}
            }
        }
        Some(v)
    }
}

/// Why a variant could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VariantError {
    /// The module has no `__stack_pointer` global it defines itself.
    #[error("--shift-stack and --shift-data need the __stack_pointer global, which this module does not name or does not define (build it with clang and wasm-ld, which keep the name section unless linked with -O, and without -fPIC)")]
    NoStackPointer,
    /// The stack pointer's initial value is not a constant.
    #[error("--shift-stack and --shift-data need __stack_pointer to start at a constant, and it does not")]
    NotConstant,
    /// The shift does not fit.
    #[error("--shift-stack {bytes}: {why}")]
    BadShift {
        /// The shift asked for.
        bytes: u32,
        /// Why it does not fit.
        why: String,
    },
    /// The heap shift does not fit.
    #[error("--shift-data {bytes}: {why}")]
    BadDataShift {
        /// The shift asked for.
        bytes: u32,
        /// Why it does not fit.
        why: String,
    },
    /// The module's data does not lie below its stack, so the heap's start is unknown.
    #[error("--shift-data: the module's data does not lie below its stack at fixed addresses, so where its heap starts is unknown (link it without --stack-first and without -fPIC)")]
    DataAboveStack,
    /// No padded reference to the heap's start was found.
    #[error("--shift-data: found no reference to the heap's start as wasm-ld writes it (a padded i32.const); a program that never calls malloc has no heap to move, and a module rewritten after linking (wasm-opt) has lost the mark")]
    NoHeapBase,
    /// The module is not valid wasm.
    #[error("the module cannot be read: {0}")]
    Parse(String),
    /// The module is a variant already.
    #[error("the module is a variant already (it has a {SECTION} section); make variants of the original")]
    AlreadyVariant,
}

/// The variant `wasm` is, if it is one.
pub fn read(wasm: &[u8]) -> Option<Variant> {
    Parser::new(0).parse_all(wasm).find_map(|p| match p {
        Ok(Payload::CustomSection(c)) if c.name() == SECTION => Variant::decode(c.data()),
        _ => None,
    })
}

/// The index (among all globals, imports first) of the global named `__stack_pointer`, and
/// how many globals are imported.
fn stack_pointer(wasm: &[u8]) -> Result<(u32, u32), VariantError> {
    let parse = |e: wasmparser::BinaryReaderError| VariantError::Parse(e.to_string());
    let mut imported = 0;
    let mut found = None;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.map_err(parse)? {
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    if matches!(import.map_err(parse)?.ty, TypeRef::Global(_)) {
                        imported += 1;
                    }
                }
            }
            Payload::CustomSection(c) if c.name() == SECTION => {
                return Err(VariantError::AlreadyVariant)
            }
            Payload::CustomSection(c) => {
                if let KnownCustom::Name(names) = c.as_known() {
                    for name in names {
                        if let Ok(Name::Global(map)) = name {
                            for naming in map.into_iter().flatten() {
                                if naming.name == "__stack_pointer" {
                                    found = Some(naming.index);
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    match found {
        Some(index) if index >= imported => Ok((index, imported)),
        _ => Err(VariantError::NoStackPointer),
    }
}

/// Re-encodes a module with one defined global's constant initial value lowered.
struct LowerGlobal {
    /// The global's index among all globals.
    target: u32,
    /// The index the next defined global has.
    next: u32,
    /// By how much.
    bytes: u32,
    /// What went wrong, if anything.
    error: Option<VariantError>,
}

impl Reencode for LowerGlobal {
    type Error = std::convert::Infallible;

    fn parse_global(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        global: wasmparser::Global<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let index = self.next;
        self.next += 1;
        if index != self.target {
            return reencode::utils::parse_global(self, globals, global);
        }
        let mut ops = global.init_expr.get_operators_reader();
        let start = match (ops.read(), ops.read()) {
            (Ok(Operator::I32Const { value }), Ok(Operator::End)) => value as u32,
            _ => {
                self.error = Some(VariantError::NotConstant);
                return reencode::utils::parse_global(self, globals, global);
            }
        };
        let lowered = self.lowered(start).unwrap_or(start);
        globals.global(
            self.global_type(global.ty)?,
            &wasm_encoder::ConstExpr::i32_const(lowered as i32),
        );
        Ok(())
    }
}

impl LowerGlobal {
    /// `start` lowered by the shift, or `None` (with the error kept) if it does not fit.
    fn lowered(&mut self, start: u32) -> Option<u32> {
        let bytes = self.bytes;
        let why = if !bytes.is_multiple_of(16) {
            Some("the C stack stays 16-byte aligned only if the shift is a multiple of 16".into())
        } else if bytes >= start / 2 {
            Some(format!(
                "the stack starts at {start}; shift it by less than half of that, since its size is less"
            ))
        } else {
            None
        };
        if let Some(why) = why {
            self.error = Some(VariantError::BadShift { bytes, why });
            return None;
        }
        Some(start - bytes)
    }
}

/// `wasm` made into `variant`: the heap starts `shift_data` bytes higher, `__stack_pointer`
/// starts `shift_stack` bytes lower (the stack gets as much smaller), the code is rewritten as
/// `diversify` chooses, and a [`SECTION`] says so.
pub fn make(wasm: &[u8], variant: &Variant) -> Result<Vec<u8>, VariantError> {
    if variant.is_identity() {
        return Ok(wasm.to_vec());
    }
    if read(wasm).is_some() {
        return Err(VariantError::AlreadyVariant);
    }
    // The heap first, since it starts where the original stack does; then the stack, found by
    // its name, which a rewrite may drop.
    let raised = match variant.shift_data {
        0 => wasm.to_vec(),
        bytes => heap::shift_heap(wasm, stack_start(wasm)?, bytes)?,
    };
    let shifted = match variant.shift_stack {
        0 => raised,
        bytes => shift_stack(&raised, bytes)?,
    };
    let rewritten = match variant.diversify {
        None => shifted,
        Some(seed) => diversify(&shifted, seed)?,
    };
    let mut module = reencode_with(&mut wasm_encoder::reencode::RoundtripReencoder, &rewritten)?;
    module.section(&wasm_encoder::CustomSection {
        name: SECTION.into(),
        data: variant.encode().into(),
    });
    Ok(module.finish())
}

/// `wasm` re-encoded by `reencoder`, which rewrites what it overrides and copies the rest.
fn reencode_with(
    reencoder: &mut impl Reencode<Error = std::convert::Infallible>,
    wasm: &[u8],
) -> Result<wasm_encoder::Module, VariantError> {
    let mut module = wasm_encoder::Module::new();
    reencoder
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| VariantError::Parse(e.to_string()))?;
    Ok(module)
}

/// Where `__stack_pointer` starts: its constant initial value.
fn stack_start(wasm: &[u8]) -> Result<u32, VariantError> {
    let parse = |e: wasmparser::BinaryReaderError| VariantError::Parse(e.to_string());
    let (target, imported) = stack_pointer(wasm)?;
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::GlobalSection(section) = payload.map_err(parse)? else {
            continue;
        };
        let Some(global) = section.into_iter().nth((target - imported) as usize) else {
            break;
        };
        let mut ops = global.map_err(parse)?.init_expr.get_operators_reader();
        return match (ops.read(), ops.read()) {
            (Ok(Operator::I32Const { value }), Ok(Operator::End)) => Ok(value as u32),
            _ => Err(VariantError::NotConstant),
        };
    }
    Err(VariantError::NoStackPointer)
}

/// `wasm` with `__stack_pointer` starting `bytes` lower.
fn shift_stack(wasm: &[u8], bytes: u32) -> Result<Vec<u8>, VariantError> {
    let (target, imported) = stack_pointer(wasm)?;
    let mut lower = LowerGlobal {
        target,
        next: imported,
        bytes,
        error: None,
    };
    let module = reencode_with(&mut lower, wasm)?;
    match lower.error {
        Some(e) => Err(e),
        None => Ok(module.finish()),
    }
}

/// One in how many instructions gets a junk store before it.
const JUNK_EVERY: u64 = 12;

/// `wasm` with its code diversified by `seed`: in every function body the declared locals are
/// shuffled (their indices rewritten to match), and before about one instruction in
/// [`JUNK_EVERY`] a store of a random constant to a global of its own is inserted, which the
/// compiler must keep, so that the native code of every function differs in size and layout.
/// Neither changes what the program computes: the locals hold the same values under other
/// numbers, and nothing reads the junk global. The same seed gives the same bytes.
fn diversify(wasm: &[u8], seed: u64) -> Result<Vec<u8>, VariantError> {
    let parse = |e: wasmparser::BinaryReaderError| VariantError::Parse(e.to_string());
    let (params, globals) = function_params(wasm).map_err(parse)?;
    // The junk global goes at the end of the global section; a module without one gets no junk.
    let mut shuffler = Shuffler {
        random: SplitMix(seed),
        params,
        next_body: 0,
        junk: globals,
    };
    let out = reencode_with(&mut shuffler, wasm)?.finish();
    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
        .validate_all(&out)
        .map_err(parse)?;
    Ok(out)
}

/// The parameter count of every defined function, in order, and the index a global added after
/// every other would have, if the module has a global section to add it to.
fn function_params(wasm: &[u8]) -> Result<(Vec<u32>, Option<u32>), wasmparser::BinaryReaderError> {
    let mut types = Vec::new();
    let mut params = Vec::new();
    let mut globals = 0;
    let mut section = false;
    for payload in Parser::new(0).parse_all(wasm) {
        match payload? {
            Payload::TypeSection(s) => {
                for ty in s.into_iter_err_on_gc_types() {
                    types.push(ty?.params().len() as u32);
                }
            }
            Payload::ImportSection(s) => {
                for import in s.into_imports() {
                    globals += u32::from(matches!(import?.ty, TypeRef::Global(_)));
                }
            }
            Payload::FunctionSection(s) => {
                for ty in s {
                    params.push(types.get(ty? as usize).copied().unwrap_or(0));
                }
            }
            Payload::GlobalSection(s) => {
                globals += s.count();
                section = true;
            }
            _ => {}
        }
    }
    Ok((params, section.then_some(globals)))
}

/// A small deterministic generator (SplitMix64): the same seed, the same choices.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (> 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Re-encodes a module with its locals shuffled and junk stores inserted (see [`diversify`]).
struct Shuffler {
    random: SplitMix,
    /// The parameter count of each defined function.
    params: Vec<u32>,
    /// The defined function whose body comes next.
    next_body: usize,
    /// The index of the junk global, added after every other (none without a global section).
    junk: Option<u32>,
}

impl Reencode for Shuffler {
    type Error = std::convert::Infallible;

    fn parse_global_section(
        &mut self,
        globals: &mut wasm_encoder::GlobalSection,
        section: wasmparser::GlobalSectionReader<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        reencode::utils::parse_global_section(self, globals, section)?;
        let ty = wasm_encoder::GlobalType {
            val_type: wasm_encoder::ValType::I32,
            mutable: true,
            shared: false,
        };
        globals.global(ty, &wasm_encoder::ConstExpr::i32_const(0));
        Ok(())
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let params = self.params.get(self.next_body).copied().unwrap_or(0);
        self.next_body += 1;
        let mut declared = Vec::new();
        for pair in body.get_locals_reader()? {
            let (count, ty) = pair?;
            let ty = self.val_type(ty)?;
            declared.extend(std::iter::repeat_n(ty, count as usize));
        }
        // A Fisher-Yates shuffle: `order[new] = old`, and `place[old] = new`.
        let mut order: Vec<usize> = (0..declared.len()).collect();
        for k in (1..order.len()).rev() {
            order.swap(k, self.random.below(k as u64 + 1) as usize);
        }
        let mut place = vec![0u32; order.len()];
        for (new, &old) in order.iter().enumerate() {
            place[old] = new as u32;
        }
        let locals = order.iter().map(|&old| (1, declared[old]));
        let mut f = wasm_encoder::Function::new(locals);
        let map = |index: u32| match index.checked_sub(params) {
            Some(k) => params + place.get(k as usize).copied().unwrap_or(k),
            None => index,
        };
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let op = match reader.read()? {
                Operator::LocalGet { local_index } => Operator::LocalGet {
                    local_index: map(local_index),
                },
                Operator::LocalSet { local_index } => Operator::LocalSet {
                    local_index: map(local_index),
                },
                Operator::LocalTee { local_index } => Operator::LocalTee {
                    local_index: map(local_index),
                },
                other => other,
            };
            // Never before the body's final `end`, where nothing may follow the junk.
            if let Some(junk) = self.junk.filter(|_| !reader.eof()) {
                if self.random.below(JUNK_EVERY) == 0 {
                    let value = self.random.next() as i32;
                    f.instruction(&wasm_encoder::Instruction::I32Const(value));
                    f.instruction(&wasm_encoder::Instruction::GlobalSet(junk));
                }
            }
            f.instruction(&self.instruction(op)?);
        }
        code.function(&f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &str = r#"(module
        (global $__stack_pointer (mut i32) (i32.const 65536))
        (global $other i32 (i32.const 7))
        (memory 2)
        (func (export "sp") (result i32) (global.get $__stack_pointer)))"#;

    fn stack_start(wasm: &[u8]) -> i32 {
        let engine = wasmtime::Engine::default();
        let module = wasmtime::Module::new(&engine, wasm).expect("valid");
        let mut store = wasmtime::Store::new(&engine, ());
        let instance = wasmtime::Instance::new(&mut store, &module, &[]).expect("instance");
        let sp = instance
            .get_typed_func::<(), i32>(&mut store, "sp")
            .expect("sp");
        sp.call(&mut store, ()).expect("call")
    }

    #[test]
    fn a_shifted_stack_starts_lower_and_says_so() {
        let wasm = wat::parse_str(MODULE).expect("wat");
        assert_eq!(read(&wasm), None);
        let v = Variant {
            shift_stack: 4096,
            shift_data: 0,
            diversify: None,
        };
        let shifted = make(&wasm, &v).expect("shift");
        assert_eq!(stack_start(&shifted), 65536 - 4096);
        assert_eq!(read(&shifted), Some(v));
        assert_eq!(make(&shifted, &v), Err(VariantError::AlreadyVariant));
    }

    #[test]
    fn shifts_that_do_not_fit_are_refused() {
        let wasm = wat::parse_str(MODULE).expect("wat");
        for bytes in [8, 40000] {
            let v = Variant {
                shift_stack: bytes,
                shift_data: 0,
                diversify: None,
            };
            let e = make(&wasm, &v).expect_err("refused");
            assert!(matches!(e, VariantError::BadShift { .. }), "{e}");
        }
        let nameless =
            wat::parse_str("(module (global (mut i32) (i32.const 65536)))").expect("wat");
        let v = Variant {
            shift_stack: 16,
            shift_data: 0,
            diversify: None,
        };
        assert_eq!(make(&nameless, &v), Err(VariantError::NoStackPointer));
    }

    #[test]
    fn a_heap_that_cannot_be_found_or_grown_is_not_shifted() {
        let v = Variant {
            shift_data: 4096,
            ..Variant::default()
        };
        // Data above the stack: the heap's start is unknown.
        let stack_first = wat::parse_str(
            r#"(module (global $__stack_pointer (mut i32) (i32.const 65536)) (memory 2)
                (data (i32.const 70000) "x"))"#,
        )
        .expect("wat");
        assert_eq!(make(&stack_first, &v), Err(VariantError::DataAboveStack));
        // The heap's start written as a compiler writes constants: no reference the linker made.
        let unlinked = wat::parse_str(
            r#"(module (global $__stack_pointer (mut i32) (i32.const 65536)) (memory 2)
                (data (i32.const 1024) "x")
                (func (export "base") (result i32) (i32.const 65536)))"#,
        )
        .expect("wat");
        assert_eq!(make(&unlinked, &v), Err(VariantError::NoHeapBase));
        // A memory that may not grow by the page the shift needs.
        let capped = wat::parse_str(
            r#"(module (global $__stack_pointer (mut i32) (i32.const 65536)) (memory 2 2)
                (data (i32.const 1024) "x"))"#,
        )
        .expect("wat");
        let e = make(&capped, &v).expect_err("refused");
        assert!(matches!(e, VariantError::BadDataShift { .. }), "{e}");
        assert!(e.to_string().contains("3 pages, more than its 2"), "{e}");
    }

    #[test]
    fn a_diversified_module_differs_by_seed_computes_the_same_and_says_so() {
        let wasm = wat::parse_str(
            r#"(module
                (global $g (mut i32) (i32.const 0))
                (func $f (export "f") (param i32) (result i32) (local i32 i64 i32 f32 i32)
                  (local.set 1 (i32.mul (local.get 0) (i32.const 3)))
                  (local.set 2 (i64.const 5))
                  (local.set 3 (i32.add (local.get 1) (i32.const 7)))
                  (local.set 5 (i32.wrap_i64 (local.get 2)))
                  (global.set $g (local.get 5))
                  (local.get 3))
                (func (export "sp") (result i32)
                  (i32.add (call $f (i32.const 11)) (i32.sub (global.get $g) (i32.const 5)))))"#,
        )
        .expect("wat");
        let v = |seed| Variant {
            shift_stack: 0,
            shift_data: 0,
            diversify: Some(seed),
        };
        let a = make(&wasm, &v(1)).expect("seed 1");
        assert_eq!(
            make(&wasm, &v(1)).expect("seed 1 again"),
            a,
            "same seed, same bytes"
        );
        let b = make(&wasm, &v(2)).expect("seed 2");
        assert_ne!(a, b, "another seed, other bytes");
        for m in [&a, &b] {
            assert_eq!(stack_start(m), 40, "f(11) = 11 * 3 + 7 in every variant");
            assert_eq!(read(m), Some(v(if m == &a { 1 } else { 2 })));
        }
        assert_eq!(v(5).describe(), "code diversified with seed 5");
    }
}

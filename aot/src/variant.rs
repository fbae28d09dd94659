//! Variants of a module for multi-variant execution: the same program with its addresses moved,
//! so that an exploit which needs an absolute address can be right for at most one variant,
//! while every variant behaves the same on benign input.
//!
//! A variant says what it is in a custom section of its own, [`SECTION`], which the transform
//! keeps and `mvvm inspect` shows (contract/FORMAT.md, "Variant section").

use wasm_encoder::reencode::{self, Reencode};
use wasmparser::{KnownCustom, Name, Operator, Parser, Payload, TypeRef};

/// The custom section that describes a variant.
pub const SECTION: &str = "mvvm.variant";

/// What makes a variant differ from the module it was made from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Variant {
    /// How many bytes lower the C shadow stack starts (`__stack_pointer`'s initial value).
    pub shift_stack: u32,
}

impl Variant {
    /// Whether this changes nothing.
    pub fn is_identity(&self) -> bool {
        *self == Variant::default()
    }

    /// The section's contents: one `key=value` line per setting.
    fn encode(&self) -> Vec<u8> {
        format!("shift-stack={}\n", self.shift_stack).into_bytes()
    }

    /// Reads a section's contents; unknown keys are skipped, so that newer variants still read.
    fn decode(bytes: &[u8]) -> Option<Variant> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut v = Variant::default();
        for line in text.lines() {
            if let Some(("shift-stack", n)) = line.split_once('=') {
                v.shift_stack = n.parse().ok()?;
            }
        }
        Some(v)
    }
}

/// Why a variant could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VariantError {
    /// The module has no `__stack_pointer` global it defines itself.
    #[error("--shift-stack: the module names no __stack_pointer global it defines (build it with clang and wasm-ld, which keep the name section unless linked with -O, and without -fPIC)")]
    NoStackPointer,
    /// The stack pointer's initial value is not a constant.
    #[error("--shift-stack: __stack_pointer does not start at a constant")]
    NotConstant,
    /// The shift does not fit.
    #[error("--shift-stack {bytes}: {why}")]
    BadShift {
        /// The shift asked for.
        bytes: u32,
        /// Why it does not fit.
        why: String,
    },
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

/// `wasm` made into `variant`: `__stack_pointer` starts `shift_stack` bytes lower (the stack
/// gets as much smaller), and a [`SECTION`] says so.
pub fn make(wasm: &[u8], variant: &Variant) -> Result<Vec<u8>, VariantError> {
    if variant.is_identity() {
        return Ok(wasm.to_vec());
    }
    let (target, imported) = stack_pointer(wasm)?;
    let mut lower = LowerGlobal {
        target,
        next: imported,
        bytes: variant.shift_stack,
        error: None,
    };
    let mut module = wasm_encoder::Module::new();
    lower
        .parse_core_module(&mut module, Parser::new(0), wasm)
        .map_err(|e| VariantError::Parse(e.to_string()))?;
    if let Some(e) = lower.error {
        return Err(e);
    }
    module.section(&wasm_encoder::CustomSection {
        name: SECTION.into(),
        data: variant.encode().into(),
    });
    Ok(module.finish())
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
        let v = Variant { shift_stack: 4096 };
        let shifted = make(&wasm, &v).expect("shift");
        assert_eq!(stack_start(&shifted), 65536 - 4096);
        assert_eq!(read(&shifted), Some(v));
        assert_eq!(make(&shifted, &v), Err(VariantError::AlreadyVariant));
    }

    #[test]
    fn shifts_that_do_not_fit_are_refused() {
        let wasm = wat::parse_str(MODULE).expect("wat");
        for bytes in [8, 40000] {
            let e = make(&wasm, &Variant { shift_stack: bytes }).expect_err("refused");
            assert!(matches!(e, VariantError::BadShift { .. }), "{e}");
        }
        let nameless =
            wat::parse_str("(module (global (mut i32) (i32.const 65536)))").expect("wat");
        assert_eq!(
            make(&nameless, &Variant { shift_stack: 16 }),
            Err(VariantError::NoStackPointer)
        );
    }
}

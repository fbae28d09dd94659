//! `--shift-data`: a variant whose heap starts higher, so that every address `malloc` returns
//! differs from the original's.
//!
//! A linked module no longer says which of its constants are addresses, so static data cannot
//! be moved safely: a pointer stored in a data segment looks like any other four bytes. The
//! heap's start can. wasm-ld lays a C program out as data, then the shadow stack, then the heap,
//! so the heap starts where the stack pointer starts, and the allocator learns that address from
//! the linker as `&__heap_base`: an `i32.const` that wasm-ld wrote padded to five LEB bytes, as it
//! writes every address it relocates. A compiler writes the shortest encoding, so a padded
//! constant with the heap's start as its value is that reference and nothing else. Raising those
//! constants (and the memory's initial size, so the heap's first region still fits) moves every
//! heap address while the program computes the same.

use super::VariantError;
use wasm_encoder::reencode::{self, Reencode};
use wasmparser::{DataKind, Operator, Parser, Payload};

/// The length of a padded `i32.const`: the opcode and a five-byte LEB.
const PADDED_CONST: usize = 6;
/// A wasm page.
const PAGE: u64 = 65536;
/// The most pages a 32-bit memory can have.
const MAX_PAGES: u64 = 65536;

/// `wasm`, whose C stack starts at `stack_start`, with its heap starting `bytes` higher.
pub(super) fn shift_heap(
    wasm: &[u8],
    stack_start: u32,
    bytes: u32,
) -> Result<Vec<u8>, VariantError> {
    let bad = |why: String| VariantError::BadDataShift { bytes, why };
    if bytes == 0 || !bytes.is_multiple_of(16) {
        return Err(bad(
            "the heap stays 16-byte aligned only if the shift is a multiple of 16".into(),
        ));
    }
    check_layout(wasm, stack_start)?;
    let mut raise = RaiseHeap {
        base: stack_start,
        bytes,
        extra_pages: u64::from(bytes).div_ceil(PAGE),
        references: 0,
        memories: 0,
        error: None,
    };
    let module = super::reencode_with(&mut raise, wasm)?;
    if let Some(e) = raise.error {
        return Err(e);
    }
    if raise.references == 0 {
        return Err(VariantError::NoHeapBase);
    }
    Ok(module.finish())
}

/// Checks that every active data segment lies below the stack's start, as in wasm-ld's default
/// layout, where the heap starts at the stack's start; with `--stack-first` it does not.
fn check_layout(wasm: &[u8], stack_start: u32) -> Result<(), VariantError> {
    let parse = |e: wasmparser::BinaryReaderError| VariantError::Parse(e.to_string());
    for payload in Parser::new(0).parse_all(wasm) {
        let Payload::DataSection(section) = payload.map_err(parse)? else {
            continue;
        };
        for data in section {
            let data = data.map_err(parse)?;
            let DataKind::Active { offset_expr, .. } = data.kind else {
                continue;
            };
            let mut ops = offset_expr.get_operators_reader();
            let end = match ops.read().map_err(parse)? {
                Operator::I32Const { value } => u64::from(value as u32) + data.data.len() as u64,
                _ => return Err(VariantError::DataAboveStack),
            };
            if end > u64::from(stack_start) {
                return Err(VariantError::DataAboveStack);
            }
        }
    }
    Ok(())
}

/// Re-encodes a module with its references to the heap's start raised (see the module docs).
struct RaiseHeap {
    /// The heap's start in the original.
    base: u32,
    /// By how much it moves.
    bytes: u32,
    /// How many pages the first memory grows by.
    extra_pages: u64,
    /// How many references were raised.
    references: usize,
    /// How many memories have been defined so far.
    memories: usize,
    /// What went wrong, if anything.
    error: Option<VariantError>,
}

impl Reencode for RaiseHeap {
    type Error = std::convert::Infallible;

    fn memory_type(
        &mut self,
        memory: wasmparser::MemoryType,
    ) -> Result<wasm_encoder::MemoryType, reencode::Error<Self::Error>> {
        let mut ty = reencode::utils::memory_type(self, memory);
        self.memories += 1;
        if self.memories > 1 {
            return Ok(ty);
        }
        ty.minimum += self.extra_pages;
        let most = ty.maximum.unwrap_or(MAX_PAGES).min(MAX_PAGES);
        if ty.memory64 || ty.minimum > most {
            self.error = Some(VariantError::BadDataShift {
                bytes: self.bytes,
                why: format!(
                    "the memory would need {} pages, more than its {most}",
                    ty.minimum
                ),
            });
        }
        Ok(ty)
    }

    fn parse_function_body(
        &mut self,
        code: &mut wasm_encoder::CodeSection,
        body: wasmparser::FunctionBody<'_>,
    ) -> Result<(), reencode::Error<Self::Error>> {
        let mut f = reencode::utils::new_function_with_parsed_locals(self, &body)?;
        let mut reader = body.get_operators_reader()?;
        while !reader.eof() {
            let at = reader.original_position();
            let op = match reader.read()? {
                Operator::I32Const { value }
                    if value as u32 == self.base
                        && reader.original_position() - at == PADDED_CONST =>
                {
                    self.references += 1;
                    Operator::I32Const {
                        value: self.base.wrapping_add(self.bytes) as i32,
                    }
                }
                other => other,
            };
            f.instruction(&self.instruction(op)?);
        }
        code.function(&f);
        Ok(())
    }
}

//! Rewriting one function body so that it can unwind into the host and rewind from it.
//!
//! The scheme (see `contract/FORMAT.md`, "How a function is instrumented"):
//!
//! * **Resume points** are the places a rewind must be able to jump to: calls that may unwind,
//!   synthetic *poll sites* (function entry, loop headers, before import calls), and every control
//!   construct that contains a resume point.
//! * At a resume point, the operand stack of the current frame holds the point's own operands (call
//!   arguments, block parameters) on top of values that stay live across it. Those values are spilled
//!   to locals before the point and reloaded after it, so that when a site unwinds, *all* live state of
//!   the function is in locals. In Cranelift, locals are SSA values: the spills cost no memory traffic.
//! * A sequence containing resume points `P1 < … < Pm` is wrapped in blocks `E1 ⊂ … ⊂ Em`, each
//!   starting at the sequence start and ending right before `Pk`. A dispatch at the start of the
//!   sequence (taken only while rewinding) pushes `Pk`'s operands and branches to the end of `Ek`.
//!   That is how a rewind enters nested blocks, loops and ifs without flattening the function.
//! * After a site call, `global.get $state; if` records the site in the `$rsite` global and
//!   branches to the unwind handler of the site's *frame set*: the locals live after the site
//!   ([`super::liveness`]), which it writes into the frame slot globals for the host to read. While
//!   rewinding, the prologue asks the host for the site (which puts the frame's slots in those
//!   globals), and `$rsite != 0` drives the dispatches. The site's trampoline, where the rewind
//!   lands, reloads the frame; every trampoline defines every local live at its target (the rest
//!   get placeholders), so a dispatch keeps no value alive on the normal path.
//!   A sequence that starts with a poll dispatches in that poll's slow path (countdown zero).
//!
//! The steps, in order: [`tree`] (the body as constructs and resume points), [`emit`] (the
//! instrumented code, with [`rewind`]'s dispatches), [`frames`] (what each site saves, and
//! where), then [`finish`] (handlers in place, [`tidy`]ing, hints, encoding), once for the
//! function and once for its rewind clone. [`polls_only`] is the other mode.

mod emit;
mod finish;
mod frames;
mod polls_only;
mod rewind;
mod tidy;
mod tree;

pub(super) use polls_only::add_polls;

use super::loops::LoopPoll;
use super::plan::{BlockTypes, ModuleContext, SlotPool};
use super::TransformError;
use mvvm_contract::abi::SlotType;
use mvvm_contract::SiteInfo;
use wasm_encoder::reencode::Reencode;
use wasm_encoder::Instruction;
use wasmparser::{FuncType, FuncValidator, FunctionBody, ValType, ValidatorResources};

/// Which function [`rewrite`] rewrites.
pub(super) struct FuncIds<'l> {
    /// Its index in the original function index space.
    pub(super) func: u32,
    /// The final function index of its rewind clone.
    pub(super) clone: u32,
    /// What the policy puts at each of its loop headers, in order
    /// ([`super::loops::loop_polls`]).
    pub(super) loops: &'l [LoopPoll],
}

/// Rewrites one defined function: returns the function and its rewind clone.
pub(super) fn rewrite(
    ctx: &ModuleContext,
    block_types: &mut BlockTypes,
    slots: &mut SlotPool,
    sites: &mut Vec<SiteInfo>,
    ids: FuncIds<'_>,
    body: &FunctionBody<'_>,
    mut validator: FuncValidator<ValidatorResources>,
) -> Result<(Rewritten, Rewritten), TransformError> {
    let ty = ctx.func_type(ids.func);
    let locals = declare_locals(ty, body, &mut validator)?;
    let original_locals = locals.len() as u32;
    let tree = tree::build(ctx, sites, ids.func, body, ids.loops, &mut validator)?;
    let mut emitted = emit::emit_body(ctx, block_types, locals, &tree)?;
    let live = frames::live_sets(&emitted)?;
    let frames = frames::Frames::assign(ctx, slots, sites, &emitted, &live)?;
    let exit = frames::unwind_exit(ctx, ids.func, ty.results(), emitted.exit_site)?;

    // The function runs without the dispatches; its clone, which a rewind runs, has them.
    let normal_code = tidy::strip_dispatches(&emitted.code, &emitted.dispatches, ctx.rsite_global)?;
    let clone_code = rewind::define_at_trampolines(&mut emitted, &live, &frames)?;
    let clone_prologue = rewind::clone_prologue(ctx, ids.func, &emitted, &live, &frames)?;
    let n_params = ty.params().len();
    let normal_prologue = rewind::handover_prologue(ctx, n_params as u32, ids.clone);

    let finisher = finish::Finisher {
        rsite_global: ctx.rsite_global,
        poll_target: ctx.poll_target,
        countdown_get: ctx.countdown_get(),
        handlers: frames.handlers(),
        around_poll: frames.around_polls(&emitted, body, n_params)?,
        local_groups: local_groups(ctx, &emitted.locals[n_params..])?,
        marks: tidy::HintMarks {
            state: ctx.state_global,
            rsite: ctx.rsite_global,
            countdown: ctx.countdown,
            counters: &emitted.counters,
            original_locals,
        },
    };
    Ok((
        finisher.finish([&normal_prologue, &normal_code, &exit], true)?,
        finisher.finish([&clone_prologue, &clone_code, &exit], false)?,
    ))
}

/// The types of a function's locals, parameters first, each declared local checked in.
fn declare_locals(
    ty: &FuncType,
    body: &FunctionBody<'_>,
    validator: &mut FuncValidator<ValidatorResources>,
) -> Result<Vec<ValType>, TransformError> {
    let mut locals: Vec<ValType> = ty.params().to_vec();
    let mut reader = body.get_locals_reader()?;
    for _ in 0..reader.get_count() {
        let offset = reader.original_position();
        let (count, t) = reader.read()?;
        validator.define_locals(offset, count, t)?;
        for _ in 0..count {
            locals.push(t);
        }
    }
    Ok(locals)
}

/// Declared locals as the code section groups them: runs of one type.
fn local_groups(
    ctx: &ModuleContext,
    declared: &[ValType],
) -> Result<Vec<(u32, wasm_encoder::ValType)>, TransformError> {
    let mut groups: Vec<(u32, wasm_encoder::ValType)> = Vec::new();
    let mut re = ctx.reencoder();
    for t in declared {
        let et = re.val_type(*t).map_err(TransformError::reencode)?;
        match groups.last_mut() {
            Some((n, last)) if *last == et => *n += 1,
            _ => groups.push((1, et)),
        }
    }
    Ok(groups)
}

/// What an instrumented function whose only result is an `i32` returns when it unwinds (`"mvvm"`
/// in ASCII). A caller tests the state only after a call that returned it; a function that returns
/// it while not unwinding costs its callers that one extra load.
pub(crate) const UNWOUND_I32: i32 = 0x6d76_766d;
/// What an instrumented function whose only result is an `i64` returns when it unwinds.
pub(crate) const UNWOUND_I64: i64 = 0x6d76_766d_6d76_766d;

/// The placeholder results an unwinding function returns: [`UNWOUND_I32`] or [`UNWOUND_I64`] when
/// its only result is of that type (its callers test for it), else zeros and nulls.
fn unwound_results(results: &[ValType]) -> Result<Vec<Instruction<'static>>, TransformError> {
    Ok(match results {
        [ValType::I32] => vec![Instruction::I32Const(UNWOUND_I32)],
        [ValType::I64] => vec![Instruction::I64Const(UNWOUND_I64)],
        _ => results
            .iter()
            .map(|t| dummy(*t))
            .collect::<Result<_, _>>()?,
    })
}

/// A rewritten function body and the branch hints for its instrumentation branches.
pub(super) struct Rewritten {
    /// The body.
    pub(super) func: wasm_encoder::Function,
    /// Hints (`metadata.code.branch_hint`), by ascending offset from the start of the body.
    pub(super) hints: Vec<wasm_encoder::BranchHint>,
}

/// The host-visible slot type of a wasm value type.
pub(super) fn slot_type(t: ValType) -> Result<SlotType, TransformError> {
    Ok(match t {
        ValType::I32 => SlotType::I32,
        ValType::I64 => SlotType::I64,
        ValType::F32 => SlotType::F32,
        ValType::F64 => SlotType::F64,
        ValType::V128 => SlotType::V128,
        ValType::Ref(r) if r == wasmparser::RefType::FUNCREF => SlotType::FuncRef,
        ValType::Ref(r) if r == wasmparser::RefType::EXTERNREF => SlotType::ExternRef,
        ValType::Ref(_) => {
            return Err(TransformError::Unsupported {
                proposal: "typed function references / GC",
                detail: format!("value type {t}"),
            })
        }
    })
}

/// A placeholder value of type `t`, pushed where the real value does not matter.
fn dummy(t: ValType) -> Result<Instruction<'static>, TransformError> {
    Ok(match slot_type(t)? {
        SlotType::I32 => Instruction::I32Const(0),
        SlotType::I64 => Instruction::I64Const(0),
        SlotType::F32 => Instruction::F32Const(0.0f32.into()),
        SlotType::F64 => Instruction::F64Const(0.0f64.into()),
        SlotType::V128 => Instruction::V128Const(0),
        SlotType::FuncRef => Instruction::RefNull(wasm_encoder::HeapType::FUNC),
        SlotType::ExternRef => Instruction::RefNull(wasm_encoder::HeapType::EXTERN),
    })
}

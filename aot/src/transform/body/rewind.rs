//! The rewind side of a body rewrite: the dispatches that take a rewind from a sequence's start to
//! the resume point it is rewinding to, their trampolines, and the clone's prologue.

use super::super::liveness::Liveness;
use super::super::plan::ModuleContext;
use super::super::TransformError;
use super::dummy;
use super::emit::{Emitted, Emitter, Label};
use super::frames::Frames;
use super::tree::{CallHow, CallNode, Node};
use mvvm_contract::abi::{HostFunc, State};
use wasm_encoder::{BlockType as EBlockType, Instruction};

/// Where a trampoline is in the emitted body.
pub(super) struct TrampolineStart {
    /// Index in `out` of its first instruction.
    pub(super) at: usize,
    /// Index in `out` of its dispatch's `if`.
    pub(super) dispatch: usize,
    /// Index in `out` of its target block's `block` instruction.
    pub(super) target_at: usize,
    /// It reads the table index local (the rewind of a non-tail indirect call).
    pub(super) reads_table_index: bool,
}

/// One entry of a dispatch: rewinding to a site in `[lo, hi)` runs `code` (which pushes the resume
/// point's operands) and branches to the end of the wrapper block at label position `target`.
pub(super) struct Trampoline<'a> {
    lo: u32,
    hi: u32,
    code: Vec<Instruction<'a>>,
    target: usize,
    /// Index in `out` of the target block's `block` instruction.
    target_at: usize,
}

impl<'a> Emitter<'_, '_, 'a> {
    /// The trampolines that enter the resume point `node`, whose wrapper block is at label
    /// position `target` (its `block` at `target_at` in `out`): one per site range it holds (two
    /// for an `if` with sites in both arms, which push the condition that enters each).
    pub(super) fn trampolines_to(
        &mut self,
        node: &Node<'a>,
        target: usize,
        target_at: usize,
    ) -> Result<Vec<Trampoline<'a>>, TransformError> {
        let entry = |lo: u32, hi: u32, code: Vec<Instruction<'a>>| Trampoline {
            lo,
            hi,
            code,
            target,
            target_at,
        };
        Ok(match node {
            Node::Call(c) => {
                let code = self.call_trampoline(c)?;
                vec![entry(c.site, c.site + 1, code)]
            }
            Node::Poll(p) => {
                let code = vec![
                    Instruction::I32Const(0),
                    Instruction::GlobalSet(self.ctx.rsite_global),
                ];
                vec![entry(p.site, p.site + 1, code)]
            }
            Node::Construct(c) => {
                let mut code = Vec::new();
                for p in &c.params {
                    code.push(dummy(*p)?);
                }
                if !c.is_if() {
                    return Ok(vec![entry(c.then_lo, c.hi, code)]);
                }
                let mut arms = Vec::new();
                if c.else_lo > c.then_lo {
                    let mut then = code.clone();
                    then.push(Instruction::I32Const(1));
                    arms.push(entry(c.then_lo, c.else_lo, then));
                }
                if c.hi > c.else_lo {
                    code.push(Instruction::I32Const(0));
                    arms.push(entry(c.else_lo, c.hi, code));
                }
                arms
            }
            Node::Op(_) => unreachable!("not a resume point"),
        })
    }

    /// Code that pushes a call site's operands while rewinding (placeholders, except the table
    /// index of an indirect call) and marks the rewind complete at this frame.
    fn call_trampoline(&mut self, c: &CallNode) -> Result<Vec<Instruction<'a>>, TransformError> {
        let mut code = vec![
            Instruction::I32Const(0),
            Instruction::GlobalSet(self.ctx.rsite_global),
        ];
        let nargs = match c.how {
            CallHow::Direct(_) => c.args.len(),
            CallHow::Indirect { .. } => c.args.len() - 1,
        };
        for a in &c.args[..nargs] {
            code.push(dummy(*a)?);
        }
        if let CallHow::Indirect { .. } = c.how {
            // The table may have changed since the call was made (and a tail-calling function
            // saved no index at all): the host answers with a slot that leads to the frame
            // being restored.
            code.push(Instruction::I32Const(c.site as i32));
            if c.tail {
                code.push(Instruction::I32Const(-1));
            } else {
                code.push(Instruction::LocalGet(self.table_index_local()));
            }
            code.push(Instruction::Call(self.ctx.host(HostFunc::RewindIndex)));
        }
        Ok(code)
    }

    /// `if $rsite { br_table … }` (`$rsite` is the `mvvm:rsite` global): jumps to the trampoline of the site being rewound to.
    pub(super) fn emit_dispatch(
        &mut self,
        trampolines: Vec<Trampoline<'a>>,
    ) -> Result<(), TransformError> {
        let lo = trampolines.iter().map(|t| t.lo).min().unwrap_or(0);
        let hi = trampolines.iter().map(|t| t.hi).max().unwrap_or(0);
        let n = trampolines.len();
        self.out.push(Instruction::GlobalGet(self.ctx.rsite_global));
        let dispatch = self.out.len();
        self.dispatches.push(dispatch);
        self.out.push(Instruction::If(EBlockType::Empty));
        self.labels.push(Label::Synth);
        let if_pos = self.labels.len() - 1;
        // Blocks: default outermost, then trampoline n-1 … 0 (innermost).
        let default_pos = self.open(EBlockType::Empty, Label::Synth);
        let mut t_pos = vec![0usize; n];
        for j in (0..n).rev() {
            t_pos[j] = self.open(EBlockType::Empty, Label::Synth);
        }
        let mut targets = Vec::with_capacity((hi - lo) as usize);
        for s in lo..hi {
            let j = trampolines.iter().position(|t| t.lo <= s && s < t.hi);
            targets.push(match j {
                Some(j) => self.depth(t_pos[j]),
                None => self.depth(default_pos),
            });
        }
        self.out.extend([
            Instruction::GlobalGet(self.ctx.rsite_global),
            Instruction::I32Const(lo as i32 + 1),
            Instruction::I32Sub,
            Instruction::BrTable(targets.into(), self.depth(default_pos)),
        ]);
        for (j, t) in trampolines.into_iter().enumerate() {
            self.close(t_pos[j]);
            let reads_table_index = self.table_index_local.is_some_and(|c| {
                t.code
                    .iter()
                    .any(|i| matches!(i, Instruction::LocalGet(l) if *l == c))
            });
            self.trampoline_starts.push(TrampolineStart {
                at: self.out.len(),
                dispatch,
                target_at: t.target_at,
                reads_table_index,
            });
            self.out.extend(t.code);
            self.out.push(Instruction::Br(self.depth(t.target)));
        }
        self.close(default_pos);
        self.out.push(Instruction::Unreachable);
        self.labels.pop();
        debug_assert_eq!(self.labels.len(), if_pos);
        self.out.push(Instruction::End);
        Ok(())
    }
}

/// The clone's body: the emitted code with, at the start of each trampoline, the code that
/// defines the locals live at its target that are not live at its dispatch.
///
/// A rewind carries values from the prologue through the dispatches to the site. Carried along
/// instead, such a local would be kept alive on the normal path from the dispatch back to the
/// prologue (around every loop in between, copied on every back edge). Whatever is live at the
/// dispatch is carried (no cost: the normal path keeps it alive there anyway). Back to front, so
/// that earlier positions stay valid.
pub(super) fn define_at_trampolines<'a>(
    emitted: &mut Emitted<'a>,
    live: &Liveness,
    frames: &Frames,
) -> Result<Vec<Instruction<'a>>, TransformError> {
    let mut code = std::mem::take(&mut emitted.code);
    let mut starts = std::mem::take(&mut emitted.trampoline_starts);
    starts.sort_by_key(|t| std::cmp::Reverse(t.at));
    for t in starts {
        let (Some(at_target), Some(at_dispatch)) = (
            live.after_blocks.get(&t.target_at),
            live.after.get(&t.dispatch),
        ) else {
            return Err(TransformError::Internal("no live set at a trampoline"));
        };
        let mut set: Vec<u32> = at_target
            .iter()
            .filter(|l| !at_dispatch.contains(*l))
            .collect();
        if let (true, Some(c)) = (t.reads_table_index, emitted.table_index_local) {
            if !at_dispatch.contains(c) && !set.contains(&c) {
                set.push(c);
            }
        }
        let definitions = frames.define(emitted, set)?;
        code.splice(t.at..t.at, definitions);
    }
    Ok(code)
}

/// The clone's prologue, while rewinding: `restore_frame` answers `site+1` of this function's
/// frame (having put its slots in their globals) or of a tail call to re-issue; then the locals
/// live at the start are loaded from their slot globals, and the dispatches go to the site.
pub(super) fn clone_prologue(
    ctx: &ModuleContext,
    func: u32,
    emitted: &Emitted<'_>,
    live: &Liveness,
    frames: &Frames,
) -> Result<Vec<Instruction<'static>>, TransformError> {
    let mut prologue = vec![
        Instruction::GlobalGet(ctx.state_global),
        Instruction::I32Const(State::Rewinding as i32),
        Instruction::I32Eq,
        Instruction::If(EBlockType::Empty),
        Instruction::I32Const(func as i32),
        Instruction::Call(ctx.host(HostFunc::RestoreFrame)),
        Instruction::GlobalSet(ctx.rsite_global),
    ];
    let held = live.entry.iter().filter(|l| frames.holds(*l));
    prologue.extend(frames.define(emitted, held)?);
    prologue.push(Instruction::End);
    Ok(prologue)
}

/// The function's own prologue: while rewinding, hand over to the clone (`clone_index`), passing
/// the `n_params` parameters on.
pub(super) fn handover_prologue(
    ctx: &ModuleContext,
    n_params: u32,
    clone_index: u32,
) -> Vec<Instruction<'static>> {
    let mut prologue = vec![
        Instruction::GlobalGet(ctx.state_global),
        Instruction::I32Const(State::Rewinding as i32),
        Instruction::I32Eq,
        Instruction::If(EBlockType::Empty),
    ];
    prologue.extend((0..n_params).map(Instruction::LocalGet));
    prologue.push(Instruction::ReturnCall(clone_index));
    prologue.push(Instruction::End);
    prologue
}

//! The last step of a body rewrite: a prologue, the body and the unwind exit put together into
//! an encoded function, once for the function and once for its clone. Each unwind check's branch
//! to `$unwind` becomes its site's handler; the wrapper blocks that no branch targets any more
//! (`$unwind` among them) are dropped; the transform's branches get their hints; and, in the
//! function, the counted polls route their frame through the slot globals.

use super::super::TransformError;
use super::frames::{match_unwind_branch, AroundPolls, UNWIND_BRANCH_LEN};
use super::tidy::{drop_unbranched_blocks, HintMarks};
use super::Rewritten;
use std::collections::HashMap;
use wasm_encoder::{BlockType as EBlockType, Instruction};

/// What [`Finisher::finish`] needs besides the code.
pub(super) struct Finisher<'e> {
    /// `mvvm:rsite`, which the unwind branches set.
    pub(super) rsite_global: u32,
    /// The function the counted polls call (see `poll_call`).
    pub(super) poll_target: u32,
    /// The code that reads the shared countdown.
    pub(super) countdown_get: Vec<Instruction<'static>>,
    /// The handler of each site (see [`super::frames::Frames::handlers`]).
    pub(super) handlers: HashMap<u32, Vec<Instruction<'static>>>,
    /// See [`super::frames::Frames::around_polls`].
    pub(super) around_poll: AroundPolls,
    /// The function's declared locals, as the code section groups them.
    pub(super) local_groups: Vec<(u32, wasm_encoder::ValType)>,
    /// Which branches get which hint.
    pub(super) marks: HintMarks<'e>,
}

impl Finisher<'_> {
    /// The function whose code is `prologue`, then `body` (which opens `$unwind`), then `exit`.
    /// `route`: whether polls route their frame through the slot globals (see `around_poll`):
    /// only in the function, which is what runs; the clone runs once per restore, so it is left
    /// small.
    pub(super) fn finish(
        &self,
        [prologue, body, exit]: [&[Instruction<'_>]; 3],
        route: bool,
    ) -> Result<Rewritten, TransformError> {
        // The body's first instruction opens `$unwind`, which gets its `i32` result here.
        let (Some(Instruction::Block(EBlockType::Empty)), Some(rest)) =
            (body.first(), body.get(1..))
        else {
            return Err(TransformError::Internal("the body does not open $unwind"));
        };
        let unwind_block = Instruction::Block(EBlockType::Result(wasm_encoder::ValType::I32));
        let flat: Vec<&Instruction<'_>> = prologue
            .iter()
            .chain([&unwind_block])
            .chain(rest)
            .chain(exit)
            .collect();
        let expanded = self.with_handlers(&flat)?;
        let owned = drop_unbranched_blocks(&expanded)?;
        let code: Vec<&Instruction<'_>> = owned.iter().collect();
        Ok(self.encode(&code, route))
    }

    /// `code` with each unwind branch replaced by its site's handler and a branch to `$unwind`
    /// that carries `site+1`.
    fn with_handlers<'c, 'a>(
        &'c self,
        flat: &[&'c Instruction<'a>],
    ) -> Result<Vec<&'c Instruction<'a>>, TransformError> {
        let mut expanded: Vec<&Instruction<'_>> = Vec::with_capacity(flat.len());
        let mut i = 0;
        while i < flat.len() {
            if let Some(site) = match_unwind_branch(&flat[i..], self.rsite_global) {
                let h = self
                    .handlers
                    .get(&site)
                    .ok_or(TransformError::Internal("unwind check of an unknown site"))?;
                expanded.extend(h.iter());
                // `i32.const site+1` and the `br` to `$unwind`, without the `global.set`.
                expanded.extend([flat[i], flat[i + 2]]);
                i += UNWIND_BRANCH_LEN;
            } else {
                expanded.push(flat[i]);
                i += 1;
            }
        }
        Ok(expanded)
    }

    /// Encodes `code`, recording the hints and (if `route`) routing counted polls' frames.
    fn encode(&self, code: &[&Instruction<'_>], route: bool) -> Rewritten {
        let mut func = wasm_encoder::Function::new(self.local_groups.clone());
        let mut hints = Vec::new();
        for (i, ins) in code.iter().enumerate() {
            if let Some(taken) = self.marks.hint(&code[..i], ins) {
                hints.push(wasm_encoder::BranchHint {
                    branch_func_offset: func.byte_len() as u32,
                    branch_hint_value: u32::from(taken),
                });
            }
            // `i32.const site; i32.add; call $poll` (see `poll_call`).
            let around = match (ins, i.checked_sub(2).map(|k| (code[k], code[k + 1]))) {
                (
                    Instruction::Call(f),
                    Some((Instruction::I32Const(site), Instruction::I32Add)),
                ) if *f == self.poll_target => self.around_poll.get(&(*site as u32)),
                _ => None,
            };
            let Some((through, counter)) = around.filter(|_| route) else {
                func.instruction(ins);
                continue;
            };
            for (l, g) in through {
                func.instruction(&Instruction::LocalGet(*l));
                func.instruction(&Instruction::GlobalSet(*g));
            }
            func.instruction(ins);
            for (l, g) in through {
                func.instruction(&Instruction::GlobalGet(*g));
                func.instruction(&Instruction::LocalSet(*l));
            }
            for i in &self.countdown_get {
                func.instruction(i);
            }
            func.instruction(&Instruction::LocalSet(*counter));
        }
        Rewritten { func, hints }
    }
}

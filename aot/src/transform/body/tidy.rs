//! Tidying a rewritten body: the wrapper blocks nothing branches to are dropped, the dispatches
//! are stripped from the function (only its clone rewinds), and the transform's own branches are
//! recognised so that each can carry a branch hint.

use super::super::plan::Countdown;
use super::super::TransformError;
use super::{UNWOUND_I32, UNWOUND_I64};
use wasm_encoder::Instruction;

/// Recognises the branches the transform adds, by the synthetic globals and local they test
/// (the original code cannot name them), so that each can carry a branch hint: the countdown
/// tests of a poll are taken (the poll is skipped) and the state and rewind tests are not. Wasmtime
/// then lays the slow paths out of line, after the function's hot code.
pub(super) struct HintMarks<'e> {
    pub(super) state: u32,
    pub(super) rsite: u32,
    pub(super) countdown: Countdown,
    pub(super) counters: &'e [u32],
    /// Locals from this index on are the transform's.
    pub(super) original_locals: u32,
}

impl HintMarks<'_> {
    /// The hint for `ins`, preceded by `before`: `Some(true)` likely taken, `Some(false)` unlikely.
    pub(super) fn hint(&self, before: &[&Instruction<'_>], ins: &Instruction<'_>) -> Option<bool> {
        use Instruction as I;
        let tail = |n: usize| before.len().checked_sub(n).map(|k| &before[k..]);
        match ins {
            // `global.get $state; if` (unwind check) and `global.get $rsite; if` (dispatch).
            I::If(_) => match (tail(1)?, tail(3)) {
                // `local.get $r; i32.const UNWOUND_I32; i32.eq; if` (result marker; i64 alike).
                (_, Some([I::LocalGet(r), I::I32Const(UNWOUND_I32), I::I32Eq]))
                | (_, Some([I::LocalGet(r), I::I64Const(UNWOUND_I64), I::I64Eq]))
                    if *r >= self.original_locals =>
                {
                    Some(false)
                }
                ([I::GlobalGet(g)], _) if *g == self.state || *g == self.rsite => Some(false),
                // `global.get $state; i32.const 2; i32.eq; if` (prologue).
                (_, Some([I::GlobalGet(g), I::I32Const(_), I::I32Eq])) if *g == self.state => {
                    Some(false)
                }
                _ => None,
            },
            // `local.tee $cnt_L | (read the countdown); i32.const 0; i32.gt_s; br_if $skip`.
            I::BrIf(_) => match tail(3)? {
                [I::LocalTee(l), I::I32Const(0), I::I32GtS] if self.counters.contains(l) => {
                    Some(true)
                }
                [read, I::I32Const(0), I::I32GtS] if self.countdown.read_by(read) => Some(true),
                _ => None,
            },
            _ => None,
        }
    }
}

/// `code` (a whole body) without the `block … end` pairs that no branch targets, branch depths
/// renumbered.
///
/// The transform opens a wrapper block before every resume point for the rewind dispatch, and one
/// around the body for the unwind checks until they get their handlers. Where no branch targets
/// one (in the function itself, which has no dispatch, most of them), its `end` would still start
/// a new basic block in Cranelift, which a branch hint does not mark cold: between a poll's
/// unlikely countdown test and its call, such a block put the call among the hot code. Inlining a
/// block that nothing branches to keeps the code's meaning and validity: its body's type composes
/// with the code around it exactly as the block did.
pub(super) fn drop_unbranched_blocks<'a>(
    code: &[&Instruction<'a>],
) -> Result<Vec<Instruction<'a>>, TransformError> {
    use Instruction as I;
    // Pass 1: which `block`s are branch targets. `open` holds, for each open construct, the
    // index of its opening instruction (`None` for the function body).
    let mut targeted = vec![false; code.len()];
    let mut open: Vec<Option<usize>> = vec![None];
    let mark = |open: &[Option<usize>], d: u32, targeted: &mut [bool]| {
        if let Some(Some(at)) = open.len().checked_sub(1 + d as usize).map(|k| open[k]) {
            targeted[at] = true;
        }
    };
    for (i, ins) in code.iter().enumerate() {
        match ins {
            I::Block(_) | I::Loop(_) | I::If(_) => open.push(Some(i)),
            I::End => {
                open.pop();
            }
            I::Br(d) | I::BrIf(d) => mark(&open, *d, &mut targeted),
            I::BrTable(ds, d) => {
                for t in ds.iter().chain([d]) {
                    mark(&open, *t, &mut targeted);
                }
            }
            // Other instructions that name labels belong to proposals the transform refuses.
            I::BrOnNull(_)
            | I::BrOnNonNull(_)
            | I::BrOnCast { .. }
            | I::BrOnCastFail { .. }
            | I::Try(_)
            | I::TryTable(..)
            | I::Delegate(_)
            | I::Rethrow(_) => {
                return Err(TransformError::Internal(
                    "a branch of an unsupported proposal",
                ))
            }
            _ => {}
        }
    }
    // Pass 2: drop the others and renumber. `kept` tells, for each open construct, whether its
    // label survives.
    let mut out = Vec::with_capacity(code.len());
    let mut kept: Vec<bool> = vec![true];
    let renumber = |kept: &[bool], d: u32| -> u32 {
        let n = kept.len();
        let removed = (0..d as usize)
            .filter(|k| n.checked_sub(1 + k).and_then(|j| kept.get(j)) == Some(&false))
            .count();
        d - removed as u32
    };
    for (i, ins) in code.iter().enumerate() {
        match ins {
            I::Block(_) if !targeted[i] => {
                kept.push(false);
                continue;
            }
            I::Block(_) | I::Loop(_) | I::If(_) => kept.push(true),
            I::End => {
                if kept.pop() != Some(false) {
                    out.push(I::End);
                }
                continue;
            }
            I::Br(d) => {
                out.push(I::Br(renumber(&kept, *d)));
                continue;
            }
            I::BrIf(d) => {
                out.push(I::BrIf(renumber(&kept, *d)));
                continue;
            }
            I::BrTable(ds, d) => {
                let ds: Vec<u32> = ds.iter().map(|t| renumber(&kept, *t)).collect();
                out.push(I::BrTable(ds.into(), renumber(&kept, *d)));
                continue;
            }
            _ => {}
        }
        out.push((*ins).clone());
    }
    Ok(out)
}

/// `code` without its rewind dispatches (`global.get $rsite; if … end`, `dispatches` holding the
/// index of each `if`): the code that runs when no rewind is under way.
pub(super) fn strip_dispatches<'a>(
    code: &[Instruction<'a>],
    dispatches: &[usize],
    rsite_global: u32,
) -> Result<Vec<Instruction<'a>>, TransformError> {
    let mut out = Vec::with_capacity(code.len());
    let mut sorted = dispatches.to_vec();
    sorted.sort_unstable();
    let mut next = 0;
    for d in sorted {
        let start = d
            .checked_sub(1)
            .filter(|s| {
                *s >= next && matches!(code[*s], Instruction::GlobalGet(g) if g == rsite_global)
            })
            .ok_or(TransformError::Internal("a dispatch without its test"))?;
        let mut depth = 0usize;
        let mut end = None;
        for (i, ins) in code.iter().enumerate().skip(d) {
            match ins {
                Instruction::Block(_) | Instruction::Loop(_) | Instruction::If(_) => depth += 1,
                Instruction::End => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let end = end.ok_or(TransformError::Internal("a dispatch without its end"))?;
        out.extend_from_slice(&code[next..start]);
        next = end + 1;
    }
    out.extend_from_slice(&code[next..]);
    Ok(out)
}

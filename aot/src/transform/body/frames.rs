//! The frames of a body rewrite: which locals each site's frame holds, the slot globals they
//! travel in, the unwind handler that saves them, and the routing of counted polls' frames
//! through the slot globals.

use super::super::liveness::{self, Liveness};
use super::super::plan::{ModuleContext, SlotPool};
use super::super::TransformError;
use super::emit::Emitted;
use super::{dummy, slot_type, unwound_results};
use mvvm_contract::abi::{HostFunc, SlotType};
use mvvm_contract::SiteInfo;
use std::collections::HashMap;
use wasm_encoder::Instruction;
use wasmparser::{FunctionBody, Operator, ValType};

/// The liveness of an emitted body, at the places the frames and trampolines need it: after each
/// unwind check and dispatch, and at each trampoline's target. Computed without the rewind
/// dispatches (each trampoline defines what it would otherwise carry, see
/// [`super::rewind::define_at_trampolines`]).
pub(super) fn live_sets(emitted: &Emitted<'_>) -> Result<Liveness, TransformError> {
    let mut wanted: HashMap<usize, ()> = emitted
        .unwind_checks
        .iter()
        .map(|u| (u.if_at, ()))
        .collect();
    let dispatches: HashMap<usize, ()> = emitted.dispatches.iter().map(|i| (*i, ())).collect();
    wanted.extend(dispatches.keys().map(|i| (*i, ())));
    let targets: HashMap<usize, ()> = emitted
        .trampoline_starts
        .iter()
        .map(|t| (t.target_at, ()))
        .collect();
    liveness::analyze(
        &emitted.code,
        emitted.locals.len(),
        &wanted,
        &targets,
        &dispatches,
    )
}

/// Which locals each site's frame holds, and where they travel.
pub(super) struct Frames {
    /// The distinct frame sets, each sorted.
    groups: Vec<Vec<u32>>,
    /// The frame set of each site.
    site_group: HashMap<u32, usize>,
    /// The slot global of every local some frame holds.
    slot_of: HashMap<u32, u32>,
}

impl Frames {
    /// What each site's frame holds: the locals the code after the site can still read, plus the
    /// saved table index of an indirect call (its rewind trampoline reads it). Not the countdown
    /// locals (a rewind zeroes them). Sites with equal sets share one group (the frame set is
    /// stored once). Records each site's slots in `sites`.
    pub(super) fn assign(
        ctx: &ModuleContext,
        slots: &mut SlotPool,
        sites: &mut [SiteInfo],
        emitted: &Emitted<'_>,
        live: &Liveness,
    ) -> Result<Frames, TransformError> {
        let mut frames = Frames {
            groups: Vec::new(),
            site_group: HashMap::new(),
            slot_of: HashMap::new(),
        };
        let mut group_of: HashMap<Vec<u32>, usize> = HashMap::new();
        for u in &emitted.unwind_checks {
            let mut set: Vec<u32> = live
                .after
                .get(&u.if_at)
                .ok_or(TransformError::Internal("no live set at an unwind check"))?
                .iter()
                .filter(|l| !emitted.counters.contains(l))
                .collect();
            if u.indirect {
                let c = emitted.table_index_local.ok_or(TransformError::Internal(
                    "indirect site without its table index local",
                ))?;
                if let Err(i) = set.binary_search(&c) {
                    set.insert(i, c);
                }
            }
            let g = *group_of.entry(set.clone()).or_insert_with(|| {
                frames.groups.push(set);
                frames.groups.len() - 1
            });
            frames.site_group.insert(u.site, g);
        }
        frames.assign_slots(ctx, slots, sites, &emitted.locals)?;
        Ok(frames)
    }

    /// Every local that some frame holds travels in one slot global of its own (the k-th such
    /// local of a type in the k-th global of that type), whichever site the frame stopped at: a
    /// rewind can then reload it anywhere on its way to the site. The site table records the slot
    /// globals of each frame, so the host knows which to read and write.
    fn assign_slots(
        &mut self,
        ctx: &ModuleContext,
        slots: &mut SlotPool,
        sites: &mut [SiteInfo],
        locals: &[ValType],
    ) -> Result<(), TransformError> {
        let mut in_frame: Vec<u32> = self.groups.iter().flatten().copied().collect();
        in_frame.sort_unstable();
        in_frame.dedup();
        let mut per_type: HashMap<SlotType, usize> = HashMap::new();
        for l in &in_frame {
            let t = slot_type(locals[*l as usize])?;
            let k = per_type.entry(t).or_insert(0);
            self.slot_of.insert(*l, slots.global(t, *k));
            *k += 1;
        }
        for (site, g) in &self.site_group {
            let frame = self.groups[*g]
                .iter()
                .map(|l| self.slot_of[l] - ctx.slot_base())
                .collect();
            sites
                .get_mut(*site as usize)
                .ok_or(TransformError::Internal("unwind check of an unknown site"))?
                .frame = frame;
        }
        Ok(())
    }

    /// Whether some frame holds local `l`.
    pub(super) fn holds(&self, l: u32) -> bool {
        self.slot_of.contains_key(&l)
    }

    /// Code that defines the locals `set`: from the slot globals, or placeholders (countdowns
    /// must be zero while rewinding; a local no frame holds is dead wherever a rewind lands).
    pub(super) fn define(
        &self,
        emitted: &Emitted<'_>,
        set: impl IntoIterator<Item = u32>,
    ) -> Result<Vec<Instruction<'static>>, TransformError> {
        let mut code = Vec::new();
        for l in set {
            match self.slot_of.get(&l) {
                Some(g) if !emitted.counters.contains(&l) => code.push(Instruction::GlobalGet(*g)),
                _ => code.push(dummy(emitted.locals[l as usize])?),
            }
            code.push(Instruction::LocalSet(l));
        }
        Ok(code)
    }

    /// The unwind handler of each site: it puts the frame's locals in their slot globals.
    ///
    /// The unwind check of each site saves that site's frame itself, in its cold branch, and
    /// leaves the block `$unwind` around the body with `site+1`; after that block, one exit per
    /// function has the host record the frame and returns placeholder results (see
    /// [`unwind_exit`]). Until the bodies are assembled, the check branches to `$unwind` without
    /// a value (see [`unwind_branch`]; liveness sees it as leaving the body); assembly puts each
    /// site's handler in its place and gives `$unwind` its `i32` result. (A handler that also
    /// recorded the frame and returned would repeat a host call and a function epilogue at every
    /// site.)
    pub(super) fn handlers(&self) -> HashMap<u32, Vec<Instruction<'static>>> {
        let mut handlers = HashMap::new();
        for (site, g) in &self.site_group {
            let mut h = Vec::new();
            for l in &self.groups[*g] {
                h.push(Instruction::LocalGet(*l));
                h.push(Instruction::GlobalSet(self.slot_of[l]));
            }
            handlers.insert(*site, h);
        }
        handlers
    }

    /// For each counted loop's poll site: the locals that go through their slot globals around
    /// its host call (stored before, reloaded after), with their globals, and the loop's
    /// countdown local (reloaded from the shared countdown after the call).
    ///
    /// Then no local is live across the call. The call is on a slow path, but a value live
    /// across a call needs a callee-saved register or a stack slot, and inside a hot loop the
    /// register allocator gives it one for the whole loop. A loop without calls has no other call
    /// to pay that for (a loop with calls does, so its polls are left alone). Not in functions
    /// with more than [`THROUGH_SLOTS_MAX_LOCALS`] locals: there the reloads' second definitions
    /// of every live local cost more than the call did. Locals that Cranelift recomputes from
    /// other values stay in place (see [`derived_locals`]).
    pub(super) fn around_polls(
        &self,
        emitted: &Emitted<'_>,
        body: &FunctionBody<'_>,
        n_params: usize,
    ) -> Result<AroundPolls, TransformError> {
        let mut around_poll = HashMap::new();
        let derived = derived_locals(body, n_params)?;
        if emitted.locals.len() > THROUGH_SLOTS_MAX_LOCALS {
            return Ok(around_poll);
        }
        for (site, g) in &self.site_group {
            if let Some(counter) = emitted.loop_counters.get(site) {
                let through = self.groups[*g]
                    .iter()
                    .filter(|l| derived.binary_search(l).is_err())
                    .map(|l| (*l, self.slot_of[l]))
                    .collect();
                around_poll.insert(*site, (through, *counter));
            }
        }
        Ok(around_poll)
    }
}

/// By poll site: the (local, slot global) pairs routed around its call, and its countdown local
/// (see [`Frames::around_polls`]).
pub(super) type AroundPolls = HashMap<u32, (Vec<(u32, u32)>, u32)>;

/// The common exit of the unwind handlers of function `func` (results `results`), after the
/// `$unwind` block, which leaves `site+1`: the host records the frame, and the function returns
/// placeholder results (see [`unwound_results`]).
pub(super) fn unwind_exit(
    ctx: &ModuleContext,
    func: u32,
    results: &[ValType],
    exit_site: u32,
) -> Result<Vec<Instruction<'static>>, TransformError> {
    let mut exit = vec![
        Instruction::LocalSet(exit_site),
        Instruction::I32Const(func as i32),
        Instruction::LocalGet(exit_site),
        Instruction::Call(ctx.host(HostFunc::SaveFrame)),
    ];
    exit.extend(unwound_results(results)?);
    exit.push(Instruction::End);
    Ok(exit)
}

/// Functions with more locals than this keep every local in place across a counted loop's poll
/// call (see [`Frames::around_polls`]): in big functions with many locals live at every loop, a
/// second definition of each after the slow path costs the register allocator more than the call
/// did (docs/PERFORMANCE.md has the measurements).
const THROUGH_SLOTS_MAX_LOCALS: usize = 100;

/// Number of instructions of [`unwind_branch`].
pub(super) const UNWIND_BRANCH_LEN: usize = 3;

/// How an unwind check leaves until the bodies are assembled: `i32.const site+1; global.set
/// $rsite; br $unwind` (`depth`). Liveness sees it as leaving the body. Assembly replaces it with
/// the site's handler ([`match_unwind_branch`] finds it). The rewind trampolines also write
/// `$rsite`, but only 0, and the original code cannot name it.
pub(super) fn unwind_branch(
    site: u32,
    rsite: u32,
    depth: u32,
) -> [Instruction<'static>; UNWIND_BRANCH_LEN] {
    [
        Instruction::I32Const(site as i32 + 1),
        Instruction::GlobalSet(rsite),
        Instruction::Br(depth),
    ]
}

/// The site of the [`unwind_branch`] that `code` starts with, if it starts with one.
pub(super) fn match_unwind_branch(code: &[&Instruction<'_>], rsite: u32) -> Option<u32> {
    match code.get(..UNWIND_BRANCH_LEN)? {
        [Instruction::I32Const(s), Instruction::GlobalSet(g), Instruction::Br(_)]
            if *g == rsite && *s > 0 =>
        {
            Some(*s as u32 - 1)
        }
        _ => None,
    }
}

/// The locals whose value is fixed at the function's entry as a pure expression (constants and
/// arithmetic) of parameters that are never assigned and of other such locals: a local assigned
/// exactly once, in the straight-line code before the first branch, call or construct. Compilers
/// put addresses in the stack frame there (`$sp + 80`). Cranelift recomputes such a value wherever
/// it is used, from the values it derives from; routing it through a slot global around a poll
/// would make it a value of its own, held in a register or stack slot across the function.
fn derived_locals(body: &FunctionBody<'_>, n_params: usize) -> Result<Vec<u32>, TransformError> {
    // How often each local is assigned anywhere in the body.
    let mut assigned: HashMap<u32, usize> = HashMap::new();
    for op in body.get_operators_reader()? {
        if let Operator::LocalSet { local_index } | Operator::LocalTee { local_index } = op? {
            *assigned.entry(local_index).or_insert(0) += 1;
        }
    }
    // Entry values: parameters never assigned, and locals assigned once in the entry code.
    let fixed = |l: u32, done: &HashMap<u32, bool>| {
        ((l as usize) < n_params && !assigned.contains_key(&l)) || done.contains_key(&l)
    };
    // `done[l]`: local l is an entry value; true if it is a pure expression of other entry values.
    let mut done: HashMap<u32, bool> = HashMap::new();
    // For each operand: whether it is a pure expression of entry values.
    let mut stack: Vec<bool> = Vec::new();
    for op in body.get_operators_reader()? {
        let op = op?;
        let pure_bin = |stack: &mut Vec<bool>| match (stack.pop(), stack.pop()) {
            (Some(a), Some(b)) => {
                stack.push(a && b);
                true
            }
            _ => false,
        };
        let ok = match op {
            Operator::I32Const { .. } | Operator::I64Const { .. } => {
                stack.push(true);
                true
            }
            Operator::LocalGet { local_index } => {
                stack.push(fixed(local_index, &done));
                true
            }
            Operator::GlobalGet { .. } => {
                stack.push(false);
                true
            }
            Operator::I32Add
            | Operator::I32Sub
            | Operator::I32Mul
            | Operator::I32And
            | Operator::I32Or
            | Operator::I32Xor
            | Operator::I32Shl
            | Operator::I64Add
            | Operator::I64Sub
            | Operator::I64Mul
            | Operator::I64And
            | Operator::I64Or
            | Operator::I64Xor
            | Operator::I64Shl => pure_bin(&mut stack),
            Operator::LocalSet { local_index } | Operator::LocalTee { local_index } => {
                let Some(v) = stack.pop() else { break };
                if assigned.get(&local_index) == Some(&1) && (local_index as usize) >= n_params {
                    done.insert(local_index, v);
                }
                if matches!(op, Operator::LocalTee { .. }) {
                    stack.push(v);
                }
                true
            }
            Operator::GlobalSet { .. } | Operator::Drop => stack.pop().is_some(),
            _ => false,
        };
        if !ok {
            break;
        }
    }
    let mut out: Vec<u32> = done
        .into_iter()
        .filter(|(_, p)| *p)
        .map(|(l, _)| l)
        .collect();
    out.sort_unstable();
    Ok(out)
}

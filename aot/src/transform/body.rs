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
//!   ([`liveness`]), which it writes into the frame slot globals for the host to read. While
//!   rewinding, the prologue asks the host for the site (which puts the frame's slots in those
//!   globals), and `$rsite != 0` drives the dispatches. The site's trampoline, where the rewind
//!   lands, reloads the frame; every trampoline defines every local live at its target (the rest
//!   get placeholders), so a dispatch keeps no value alive on the normal path.
//!   A sequence that starts with a poll dispatches in that poll's slow path (countdown zero).

use super::loops::LoopPoll;
use super::plan::{BlockTypes, Countdown, ModuleContext, SlotPool};
use super::{liveness, TransformError};
use mvvm_contract::abi::{HostFunc, SlotType, State};
use mvvm_contract::{SiteInfo, SiteKind};
use std::collections::HashMap;
use wasm_encoder::reencode::Reencode;
use wasm_encoder::{BlockType as EBlockType, Instruction};
use wasmparser::{
    BlockType, FuncValidator, FunctionBody, Operator, ValType, ValidatorResources,
    WasmModuleResources,
};

/// How a call resume point calls.
#[derive(Clone, Copy)]
enum CallHow {
    Direct(u32),
    Indirect { type_index: u32, table: u32 },
}

struct CallNode {
    how: CallHow,
    /// `return_call*` rewritten into call + return (the callee may unwind).
    tail: bool,
    site: u32,
    below: Vec<ValType>,
    args: Vec<ValType>,
    results: Vec<ValType>,
}

struct PollNode {
    site: u32,
    counted: bool,
    stack: Vec<ValType>,
}

struct Construct<'a> {
    op: Operator<'a>,
    params: Vec<ValType>,
    results: Vec<ValType>,
    below: Vec<ValType>,
    body: Vec<Node<'a>>,
    else_body: Option<Vec<Node<'a>>>,
    /// Site ids in `[then_lo, else_lo)` are in the body, `[else_lo, hi)` in the else arm.
    then_lo: u32,
    else_lo: u32,
    hi: u32,
    /// A bounded loop (no site at its header): its iteration count (see [`LoopPoll::Bounded`]).
    bounded: Option<u32>,
}

impl Construct<'_> {
    fn resumes(&self) -> bool {
        self.hi > self.then_lo
    }
    fn is_if(&self) -> bool {
        matches!(self.op, Operator::If { .. })
    }
    /// Operands the construct consumes: its parameters, plus the condition of an `if`.
    fn operands(&self) -> Vec<ValType> {
        let mut v = self.params.clone();
        if self.is_if() {
            v.push(ValType::I32);
        }
        v
    }
}

enum Node<'a> {
    Op(Operator<'a>),
    Call(CallNode),
    Poll(PollNode),
    Construct(Box<Construct<'a>>),
}

impl Node<'_> {
    fn resumes(&self) -> bool {
        match self {
            Node::Op(_) => false,
            Node::Call(_) | Node::Poll(_) => true,
            Node::Construct(c) => c.resumes(),
        }
    }
}

/// A construct being built.
struct Open<'a> {
    op: Operator<'a>,
    params: Vec<ValType>,
    results: Vec<ValType>,
    below: Vec<ValType>,
    dead: bool,
    then_lo: u32,
    body: Vec<Node<'a>>,
    else_lo: Option<u32>,
    then_body: Option<Vec<Node<'a>>>,
    bounded: Option<u32>,
}

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
    let FuncIds {
        func,
        clone: clone_index,
        loops: loop_kinds,
    } = ids;
    let ty = ctx.func_type(func);
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
    let tree = build_tree(ctx, sites, func, body, loop_kinds, &mut validator)?;

    let original_locals = locals.len() as u32;
    let mut em = Emitter {
        ctx,
        block_types,
        out: Vec::new(),
        labels: vec![Label::Orig],
        locals,
        cidx: None,
        loop_counters: HashMap::new(),
        counters: Vec::new(),
        nest_counter: None,
        scratch: HashMap::new(),
        spill: HashMap::new(),
        spill_used: HashMap::new(),
        unwind_label: 0,
        unwind_checks: Vec::new(),
        tramp_starts: Vec::new(),
        dispatches: Vec::new(),
    };
    em.unwind_label = em.open(EBlockType::Empty, Label::Synth);
    em.emit_seq(&tree, &[], Vec::new())?;
    em.out.push(Instruction::Return);
    em.close(em.unwind_label);
    let mut body_code = std::mem::take(&mut em.out);
    // Where the common exit of the handlers keeps the site (below): a scratch local, dead in the
    // body wherever a handler leaves it.
    let exit_site = em.scratch(ValType::I32, 0);

    // Liveness without the rewind dispatches (each trampoline defines what it would otherwise
    // carry, below). What each site's frame holds: the locals the code after the site can still
    // read, plus the saved table index of an indirect call (its rewind trampoline reads it). Not
    // the countdown locals (a rewind zeroes them). Sites with equal sets share one group (the
    // frame set is stored once).
    let mut wanted: HashMap<usize, ()> = em.unwind_checks.iter().map(|u| (u.if_at, ())).collect();
    let dispatches: HashMap<usize, ()> = em.dispatches.iter().map(|i| (*i, ())).collect();
    wanted.extend(dispatches.keys().map(|i| (*i, ())));
    let targets: HashMap<usize, ()> = em.tramp_starts.iter().map(|t| (t.target_at, ())).collect();
    let live = liveness::analyze(&body_code, em.locals.len(), &wanted, &targets, &dispatches)?;
    let mut groups: Vec<Vec<u32>> = Vec::new();
    let mut group_of: HashMap<Vec<u32>, usize> = HashMap::new();
    let mut site_group: HashMap<u32, usize> = HashMap::new();
    for u in &em.unwind_checks {
        let mut set: Vec<u32> = live
            .after
            .get(&u.if_at)
            .ok_or(TransformError::Internal("no live set at an unwind check"))?
            .iter()
            .filter(|l| !em.counters.contains(l))
            .collect();
        if u.indirect {
            let c = em
                .cidx
                .ok_or(TransformError::Internal("indirect site without $cidx"))?;
            if let Err(i) = set.binary_search(&c) {
                set.insert(i, c);
            }
        }
        let g = *group_of.entry(set.clone()).or_insert_with(|| {
            groups.push(set);
            groups.len() - 1
        });
        site_group.insert(u.site, g);
    }

    // Every local that some frame holds travels in one slot global of its own (the k-th such
    // local of a type in the k-th global of that type), whichever site the frame stopped at: a
    // rewind can then reload it anywhere on its way to the site. The site table records the slot
    // globals of each frame, so the host knows which to read and write.
    let mut in_frame: Vec<u32> = groups.iter().flatten().copied().collect();
    in_frame.sort_unstable();
    in_frame.dedup();
    let mut slot_of: HashMap<u32, u32> = HashMap::new();
    let mut per_type: HashMap<SlotType, usize> = HashMap::new();
    for l in &in_frame {
        let t = slot_type(em.locals[*l as usize])?;
        let k = per_type.entry(t).or_insert(0);
        slot_of.insert(*l, slots.global(t, *k));
        *k += 1;
    }
    for (site, g) in &site_group {
        let frame = groups[*g]
            .iter()
            .map(|l| slot_of[l] - ctx.slot_base())
            .collect();
        sites
            .get_mut(*site as usize)
            .ok_or(TransformError::Internal("unwind check of an unknown site"))?
            .frame = frame;
    }
    // Code that defines `set`: from the slot globals, or placeholders (countdowns must be zero
    // while rewinding; a local no frame holds is dead wherever a rewind lands).
    let define =
        |set: &mut dyn Iterator<Item = u32>| -> Result<Vec<Instruction<'_>>, TransformError> {
            let mut code = Vec::new();
            for l in set {
                match slot_of.get(&l) {
                    Some(g) if !em.counters.contains(&l) => code.push(Instruction::GlobalGet(*g)),
                    _ => code.push(dummy(em.locals[l as usize])?),
                }
                code.push(Instruction::LocalSet(l));
            }
            Ok(code)
        };

    // Handlers. The unwind check of each site saves that site's frame itself, in its cold branch:
    // it puts the frame's locals in their slot globals and leaves the block `$unwind` around the
    // body with `site+1`; after that block, one exit per function has the host record the frame
    // and returns placeholder results (see `unwound_results`). Until the bodies are assembled,
    // the check branches to `$unwind` without a value (see `unwind_branch`; liveness sees it as
    // leaving the body); assembly puts each site's handler in its place and gives `$unwind` its
    // `i32` result. (A handler that also recorded the frame and returned repeated a host call
    // and a function epilogue at every site: SQLite's native x86_64 code was 15.1 MB against
    // 12.9 MB, Lua's 3.4 against 2.8. The instructions executed moved by -1% to +4% per
    // workload, as the register allocator placed its reloads differently: zlib and lu ran 3–4%
    // slower, Lua and recursion 2–3% faster, overhead.sh's geomean 1.070 before, 1.071 after.)
    let mut handlers: HashMap<u32, Vec<Instruction<'static>>> = HashMap::new();
    for (site, g) in &site_group {
        let mut h = Vec::new();
        for l in &groups[*g] {
            h.push(Instruction::LocalGet(*l));
            h.push(Instruction::GlobalSet(slot_of[l]));
        }
        handlers.insert(*site, h);
    }
    let mut exit = vec![
        Instruction::LocalSet(exit_site),
        Instruction::I32Const(func as i32),
        Instruction::LocalGet(exit_site),
        Instruction::Call(ctx.host(HostFunc::SaveFrame)),
    ];
    exit.extend(unwound_results(ty.results())?);
    exit.push(Instruction::End);
    let unwind_block = Instruction::Block(EBlockType::Result(wasm_encoder::ValType::I32));

    // A rewind carries values from the prologue through the dispatches to the site. A trampoline
    // defines the locals live at its target that are not live at its dispatch: carried along
    // instead, such a local would be kept alive on the normal path from the dispatch back to the
    // prologue (around every loop in between, copied on every back edge). Whatever is live at the
    // dispatch is carried (no cost: the normal path keeps it alive there anyway). Back to front,
    // so that earlier positions stay valid. The function itself runs without the dispatches (a
    // rewind runs its clone, which has them), so its code is taken before.
    let normal_code = strip_dispatches(&body_code, &em.dispatches, ctx.rsite_global)?;
    let mut starts = std::mem::take(&mut em.tramp_starts);
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
        if let (true, Some(c)) = (t.reads_cidx, em.cidx) {
            if !at_dispatch.contains(c) && !set.contains(&c) {
                set.push(c);
            }
        }
        let code = define(&mut set.into_iter())?;
        body_code.splice(t.at..t.at, code);
    }

    // The clone's prologue, while rewinding: `restore_frame` answers `site+1` of this function's
    // frame (having put its slots in their globals) or of a tail call to re-issue; then the locals
    // live at the start are loaded from their slot globals, and the dispatches go to the site.
    let mut prologue = vec![
        Instruction::GlobalGet(ctx.state_global),
        Instruction::I32Const(State::Rewinding as i32),
        Instruction::I32Eq,
        Instruction::If(EBlockType::Empty),
        Instruction::I32Const(func as i32),
        Instruction::Call(ctx.host(HostFunc::RestoreFrame)),
        Instruction::GlobalSet(ctx.rsite_global),
    ];
    prologue.extend(define(
        &mut live.entry.iter().filter(|l| slot_of.contains_key(l)),
    )?);
    prologue.push(Instruction::End);

    // The function's own prologue: while rewinding, hand over to the clone.
    let mut normal_prologue = vec![
        Instruction::GlobalGet(ctx.state_global),
        Instruction::I32Const(State::Rewinding as i32),
        Instruction::I32Eq,
        Instruction::If(EBlockType::Empty),
    ];
    normal_prologue.extend((0..ty.params().len() as u32).map(Instruction::LocalGet));
    normal_prologue.push(Instruction::ReturnCall(clone_index));
    normal_prologue.push(Instruction::End);

    // Around the host call of a counted loop's poll, the locals live across it go through their
    // slot globals (stored before, reloaded after), and the loop's countdown is reloaded from the
    // shared one: no local is live across the call. The call is on a slow path, but a value live
    // across a call needs a callee-saved register or a stack slot, and inside a hot loop the
    // register allocator gives it one for the whole loop. A loop without calls has no other call
    // to pay that for (a loop with calls does, so its polls are left alone). Not in functions with
    // more than `THROUGH_SLOTS_MAX_LOCALS` locals: there the reloads' second definitions of every
    // live local cost more than the call did (see the constant).
    let mut around_poll: HashMap<u32, (Vec<(u32, u32)>, u32)> = HashMap::new();
    // Locals that Cranelift recomputes from other values stay in place (see `derived_locals`).
    let derived = derived_locals(body, ty.params().len())?;
    if em.locals.len() <= THROUGH_SLOTS_MAX_LOCALS {
        for (site, g) in &site_group {
            if let Some(counter) = em.loop_counters.get(site) {
                let through = groups[*g]
                    .iter()
                    .filter(|l| derived.binary_search(l).is_err())
                    .map(|l| (*l, slot_of[l]))
                    .collect();
                around_poll.insert(*site, (through, *counter));
            }
        }
    }
    let countdown_get = ctx.countdown_get();
    let poll_func = ctx.poll_target;

    let declared = &em.locals[ty.params().len()..];
    let mut groups: Vec<(u32, wasm_encoder::ValType)> = Vec::new();
    let mut re = ctx.reencoder();
    for t in declared {
        let et = re.val_type(*t).map_err(TransformError::reencode)?;
        match groups.last_mut() {
            Some((n, last)) if *last == et => *n += 1,
            _ => groups.push((1, et)),
        }
    }
    let marks = HintMarks {
        state: ctx.state_global,
        rsite: ctx.rsite_global,
        countdown: ctx.countdown,
        counters: &em.counters,
        original_locals,
    };
    // `route`: whether polls route their frame through the slot globals (see `around_poll`): only
    // in the function, which is what runs; the clone runs once per restore, so it is left small.
    // Each unwind check's branch to `$unwind` becomes its site's handler; then the wrapper blocks
    // that no branch targets any more (`$unwind` among them) are dropped.
    let assemble =
        |parts: [&[Instruction<'_>]; 3], route: bool| -> Result<Rewritten, TransformError> {
            let [prologue, body, exit] = parts;
            // The body's first instruction opens `$unwind`.
            let (Some(Instruction::Block(EBlockType::Empty)), Some(rest)) =
                (body.first(), body.get(1..))
            else {
                return Err(TransformError::Internal("the body does not open $unwind"));
            };
            let flat: Vec<&Instruction<'_>> = prologue
                .iter()
                .chain([&unwind_block])
                .chain(rest)
                .chain(exit)
                .collect();
            let mut expanded: Vec<&Instruction<'_>> = Vec::with_capacity(flat.len());
            let mut i = 0;
            while i < flat.len() {
                if let Some(site) = match_unwind_branch(&flat[i..], ctx.rsite_global) {
                    let h = handlers
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
            let owned = drop_unbranched_blocks(&expanded)?;
            let code: Vec<&Instruction<'_>> = owned.iter().collect();
            let mut func = wasm_encoder::Function::new(groups.clone());
            let mut hints = Vec::new();
            for (i, ins) in code.iter().enumerate() {
                if let Some(taken) = marks.hint(&code[..i], ins) {
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
                    ) if *f == poll_func => around_poll.get(&(*site as u32)),
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
                for i in &countdown_get {
                    func.instruction(i);
                }
                func.instruction(&Instruction::LocalSet(*counter));
            }
            Ok(Rewritten { func, hints })
        };
    Ok((
        assemble([&normal_prologue, &normal_code, &exit], true)?,
        assemble([&prologue, &body_code, &exit], false)?,
    ))
}

/// Functions with more locals than this keep every local in place across a counted loop's poll
/// call (see `rewrite`). Measured on SQLite (wall time, 3–4 runs each, side by side with the
/// locals left in place everywhere): routing them through the slot globals in every function
/// made it 0.41–0.48 s against 0.37–0.41 s; leaving functions above 100 locals alone, 0.37–0.41 s
/// against 0.38–0.40 s (a limit of 25 or 50 measured the same). Its big functions (up to 142
/// locals among those with counted loops) have many locals live at every loop, and a second
/// definition of each after the slow path costs regalloc2 more than the call did. Below the limit
/// the gain is large: strsearch (whose `main`, 45 locals, holds the three searches) went from
/// 0.36–0.39 to 0.30–0.33 s (plain 0.27–0.32), and matmul's fastest of 5 runs from 0.72 to 0.64 s
/// (plain 0.63).
const THROUGH_SLOTS_MAX_LOCALS: usize = 100;

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

/// Number of instructions of [`unwind_branch`].
const UNWIND_BRANCH_LEN: usize = 3;

/// How an unwind check leaves until the bodies are assembled: `i32.const site+1; global.set
/// $rsite; br $unwind` (`depth`). Liveness sees it as leaving the body. Assembly replaces it with
/// the site's handler ([`match_unwind_branch`] finds it). The rewind trampolines also write
/// `$rsite`, but only 0, and the original code cannot name it.
fn unwind_branch(site: u32, rsite: u32, depth: u32) -> [Instruction<'static>; UNWIND_BRANCH_LEN] {
    [
        Instruction::I32Const(site as i32 + 1),
        Instruction::GlobalSet(rsite),
        Instruction::Br(depth),
    ]
}

/// The site of the [`unwind_branch`] that `code` starts with, if it starts with one.
fn match_unwind_branch(code: &[&Instruction<'_>], rsite: u32) -> Option<u32> {
    match code.get(..UNWIND_BRANCH_LEN)? {
        [Instruction::I32Const(s), Instruction::GlobalSet(g), Instruction::Br(_)]
            if *g == rsite && *s > 0 =>
        {
            Some(*s as u32 - 1)
        }
        _ => None,
    }
}

/// A rewritten function body and the branch hints for its instrumentation branches.
pub(super) struct Rewritten {
    /// The body.
    pub(super) func: wasm_encoder::Function,
    /// Hints (`metadata.code.branch_hint`), by ascending offset from the start of the body.
    pub(super) hints: Vec<wasm_encoder::BranchHint>,
}

/// Recognises the branches the transform adds, by the synthetic globals and local they test
/// (the original code cannot name them), so that each can carry a branch hint: the countdown
/// tests of a poll are taken (the poll is skipped) and the state and rewind tests are not. Wasmtime
/// then lays the slow paths out of line, after the function's hot code.
struct HintMarks<'e> {
    state: u32,
    rsite: u32,
    countdown: Countdown,
    counters: &'e [u32],
    /// Locals from this index on are the transform's.
    original_locals: u32,
}

impl HintMarks<'_> {
    /// The hint for `ins`, preceded by `before`: `Some(true)` likely taken, `Some(false)` unlikely.
    fn hint(&self, before: &[&Instruction<'_>], ins: &Instruction<'_>) -> Option<bool> {
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
fn drop_unbranched_blocks<'a>(
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
fn strip_dispatches<'a>(
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

fn frame_stack(v: &FuncValidator<ValidatorResources>) -> Option<Vec<ValType>> {
    let frame = v.get_control_frame(0)?;
    if frame.unreachable {
        return None;
    }
    let n = (v.operand_stack_height() as usize).checked_sub(frame.height)?;
    (0..n)
        .rev()
        .map(|d| v.get_operand_type(d).flatten().map(abstract_ref))
        .collect()
}

/// The validator types `ref.func` as a typed, non-null `(ref $t)` even without the
/// function-references proposal. Spill locals, block types and placeholders use the abstract
/// nullable supertype instead (`funcref`/`externref`), which every consumer of such a value accepts.
fn abstract_ref(t: ValType) -> ValType {
    use wasmparser::{AbstractHeapType, HeapType};
    let ValType::Ref(r) = t else { return t };
    match r.heap_type() {
        HeapType::Abstract {
            ty: AbstractHeapType::Extern,
            ..
        } => ValType::EXTERNREF,
        HeapType::Abstract {
            ty: AbstractHeapType::Func,
            ..
        }
        | HeapType::Concrete(_)
        | HeapType::Exact(_) => ValType::FUNCREF,
        _ => t,
    }
}

fn block_sig(
    v: &FuncValidator<ValidatorResources>,
    bt: BlockType,
) -> Result<(Vec<ValType>, Vec<ValType>), TransformError> {
    Ok(match bt {
        BlockType::Empty => (vec![], vec![]),
        BlockType::Type(t) => (vec![], vec![t]),
        BlockType::FuncType(idx) => {
            let ft = v
                .resources()
                .sub_type_at(idx)
                .and_then(|s| match &s.composite_type.inner {
                    wasmparser::CompositeInnerType::Func(f) => Some(f),
                    _ => None,
                })
                .ok_or(TransformError::Internal(
                    "block type is not a function type",
                ))?;
            (ft.params().to_vec(), ft.results().to_vec())
        }
    })
}

fn split_below(stack: Vec<ValType>, operands: usize) -> Option<Vec<ValType>> {
    let n = stack.len().checked_sub(operands)?;
    Some(stack[..n].to_vec())
}

/// `poll(site + mvvm:countdown)`, the call a poll site makes once its countdown has run out.
///
/// The countdown is zero whenever a poll is reached (that is what sent the site there), and the
/// host subtracts the value it reads from the countdown, so the argument names the site. Adding it
/// keeps the argument from being a constant: Cranelift hoists constants out of loops, and a site
/// constant hoisted out of every inner loop of an interpreter's dispatch loop is a register, or a
/// stack slot, held across all of it.
fn poll_call(ctx: &ModuleContext, site: u32) -> Vec<Instruction<'static>> {
    let mut code = ctx.countdown_get();
    code.extend([
        Instruction::I32Const(site as i32),
        Instruction::I32Add,
        Instruction::Call(ctx.poll_target),
    ]);
    code
}

/// Parses the body into a tree of constructs, validating as it goes and recording, at each resume
/// point, the operand types the validator knows there. `loop_kinds`: see [`FuncIds::loops`].
fn build_tree<'a>(
    ctx: &ModuleContext,
    sites: &mut Vec<SiteInfo>,
    func: u32,
    body: &FunctionBody<'a>,
    loop_kinds: &[LoopPoll],
    v: &mut FuncValidator<ValidatorResources>,
) -> Result<Vec<Node<'a>>, TransformError> {
    let policy = &ctx.policy;
    let new_site = |sites: &mut Vec<SiteInfo>, kind: SiteKind| -> u32 {
        sites.push(SiteInfo {
            func,
            kind,
            frame: Vec::new(),
        });
        (sites.len() - 1) as u32
    };
    let mut loop_ordinal = 0usize;
    let mut stack: Vec<Open<'a>> = Vec::new();
    let mut cur: Vec<Node<'a>> = Vec::new();
    if policy.function_entry {
        let site = new_site(sites, SiteKind::Entry);
        cur.push(Node::Poll(PollNode {
            site,
            counted: false,
            stack: vec![],
        }));
    }
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        let offset = reader.original_position();
        let op = reader.read()?;
        let dead = stack.last().is_some_and(|o| o.dead);
        let live_stack = if dead { None } else { frame_stack(v) };
        match &op {
            Operator::Block { blockty } | Operator::Loop { blockty } | Operator::If { blockty } => {
                let (params, results) = block_sig(v, *blockty)?;
                let operands = params.len() + usize::from(matches!(op, Operator::If { .. }));
                let below = live_stack.clone().and_then(|s| split_below(s, operands));
                let is_loop = matches!(op, Operator::Loop { .. });
                v.op(offset, &op)?;
                let then_lo = sites.len() as u32;
                let mut open = Open {
                    op: op.clone(),
                    params: params.clone(),
                    results,
                    dead: below.is_none(),
                    below: below.unwrap_or_default(),
                    then_lo,
                    body: Vec::new(),
                    else_lo: None,
                    then_body: None,
                    bounded: None,
                };
                let ordinal = loop_ordinal;
                loop_ordinal += usize::from(is_loop);
                let kind = match is_loop {
                    true => loop_kinds.get(ordinal).copied(),
                    false => None,
                };
                if let Some(LoopPoll::Bounded(n)) = kind {
                    open.bounded = Some(n);
                }
                if let Some(kind @ (LoopPoll::Counted | LoopPoll::Every)) =
                    kind.filter(|_| !open.dead)
                {
                    let counted = kind == LoopPoll::Counted;
                    let site = new_site(sites, SiteKind::LoopHeader { counted });
                    open.body.push(Node::Poll(PollNode {
                        site,
                        counted,
                        stack: params,
                    }));
                }
                stack.push(open);
                continue;
            }
            Operator::Else => {
                v.op(offset, &op)?;
                let o = stack
                    .last_mut()
                    .ok_or(TransformError::Internal("else outside if"))?;
                o.then_body = Some(std::mem::take(&mut o.body));
                o.else_lo = Some(sites.len() as u32);
                continue;
            }
            Operator::End => {
                v.op(offset, &op)?;
                match stack.pop() {
                    None => break, // the function's own end
                    Some(o) => {
                        let hi = sites.len() as u32;
                        let (body, else_body) = match o.then_body {
                            Some(t) => (t, Some(o.body)),
                            None => (o.body, None),
                        };
                        let c = Construct {
                            op: o.op,
                            params: o.params,
                            results: o.results,
                            below: o.below,
                            body,
                            else_body,
                            then_lo: o.then_lo,
                            else_lo: o.else_lo.unwrap_or(hi),
                            hi,
                            bounded: o.bounded,
                        };
                        let node = Node::Construct(Box::new(c));
                        match stack.last_mut() {
                            Some(p) => p.body.push(node),
                            None => cur.push(node),
                        }
                    }
                }
                continue;
            }
            _ => {}
        }
        let target = match stack.last_mut() {
            Some(p) => &mut p.body,
            None => &mut cur,
        };
        let node = match (&op, live_stack) {
            (
                Operator::Call { function_index: f } | Operator::ReturnCall { function_index: f },
                Some(st),
            ) => {
                let tail = matches!(op, Operator::ReturnCall { .. });
                if *f < ctx.imported_funcs {
                    // Import call: poll first, so a program about to block in WASI can be
                    // checkpointed; the import itself is re-executed on restore.
                    let site = new_site(sites, SiteKind::Import { func: *f });
                    target.push(Node::Poll(PollNode {
                        site,
                        counted: false,
                        stack: st,
                    }));
                    Node::Op(op.clone())
                } else if ctx.may_unwind[*f as usize] {
                    let ft = ctx.func_type(*f);
                    let args = ft.params().to_vec();
                    let below = split_below(st, args.len())
                        .ok_or(TransformError::Internal("call operands"))?;
                    let kind = if tail {
                        SiteKind::TailCall { callee: *f }
                    } else {
                        SiteKind::Call { callee: *f }
                    };
                    let site = new_site(sites, kind);
                    Node::Call(CallNode {
                        how: CallHow::Direct(*f),
                        tail,
                        site,
                        below,
                        args,
                        results: ft.results().to_vec(),
                    })
                } else {
                    Node::Op(op.clone())
                }
            }
            (
                Operator::CallIndirect {
                    type_index,
                    table_index,
                }
                | Operator::ReturnCallIndirect {
                    type_index,
                    table_index,
                },
                Some(st),
            ) if ctx.type_may_unwind(*type_index) => {
                let tail = matches!(op, Operator::ReturnCallIndirect { .. });
                let ft = ctx.type_at(*type_index);
                let mut args = ft.params().to_vec();
                args.push(ValType::I32);
                let below = split_below(st, args.len())
                    .ok_or(TransformError::Internal("call_indirect operands"))?;
                let kind = if tail {
                    SiteKind::TailCallIndirect {
                        type_id: ctx.canonical[*type_index as usize],
                        table: *table_index,
                    }
                } else {
                    SiteKind::CallIndirect {
                        type_id: ctx.canonical[*type_index as usize],
                        table: *table_index,
                    }
                };
                let site = new_site(sites, kind);
                Node::Call(CallNode {
                    how: CallHow::Indirect {
                        type_index: *type_index,
                        table: *table_index,
                    },
                    tail,
                    site,
                    below,
                    args,
                    results: ft.results().to_vec(),
                })
            }
            _ => Node::Op(op.clone()),
        };
        v.op(offset, &op)?;
        target.push(node);
    }
    Ok(cur)
}

#[derive(Clone, Copy, PartialEq)]
enum Label {
    /// A label of the original code: original branch depths count these.
    Orig,
    /// A label the transform added.
    Synth,
}

struct Emitter<'c, 'b, 'a> {
    ctx: &'c ModuleContext,
    block_types: &'b mut BlockTypes,
    out: Vec<Instruction<'a>>,
    labels: Vec<Label>,
    locals: Vec<ValType>,
    cidx: Option<u32>,
    /// The countdown local of each counted loop header, by site: set from the shared countdown
    /// when the loop is entered, so it is live only inside its loop.
    loop_counters: HashMap<u32, u32>,
    /// Every countdown local (none is part of a frame: a rewind leaves them at zero).
    counters: Vec<u32>,
    /// The countdown local of the innermost counted loop being emitted, if the code being emitted
    /// is inside one (and inside no loop with calls within it): loops nested in it count in it.
    nest_counter: Option<u32>,
    /// Short-lived locals (never live across a resume point), by type and ordinal.
    scratch: HashMap<(ValType, usize), u32>,
    /// Locals holding values live across a resume point, by type and nesting ordinal.
    spill: HashMap<(ValType, usize), u32>,
    spill_used: HashMap<ValType, usize>,
    unwind_label: usize,
    /// Every unwind check emitted, in order.
    unwind_checks: Vec<UnwindCheck>,
    /// Every trampoline. Once liveness is known, code that defines the locals live at its target
    /// but not at its dispatch is inserted at its start.
    tramp_starts: Vec<TrampStart>,
    /// Index in `out` of every dispatch's `if`.
    dispatches: Vec<usize>,
}

/// Where a trampoline is in the emitted body.
struct TrampStart {
    /// Index in `out` of its first instruction.
    at: usize,
    /// Index in `out` of its dispatch's `if`.
    dispatch: usize,
    /// Index in `out` of its target block's `block` instruction.
    target_at: usize,
    /// It reads `$cidx` (the rewind of a non-tail indirect call).
    reads_cidx: bool,
}

/// Where an unwind check is in the emitted body.
struct UnwindCheck {
    site: u32,
    /// Index of its `if` (the frame holds what is live after the `if … end`).
    if_at: usize,
    /// A non-tail indirect call: its trampoline reads `$cidx` on rewind.
    indirect: bool,
}

/// One entry of a dispatch: rewinding to a site in `[lo, hi)` runs `code` (which pushes the resume
/// point's operands) and branches to the end of the wrapper block at label position `target`.
struct Tramp<'a> {
    lo: u32,
    hi: u32,
    code: Vec<Instruction<'a>>,
    target: usize,
    /// Index in `out` of the target block's `block` instruction.
    target_at: usize,
}

impl<'a> Emitter<'_, '_, 'a> {
    fn new_local(&mut self, t: ValType) -> u32 {
        self.locals.push(t);
        (self.locals.len() - 1) as u32
    }

    fn scratch(&mut self, t: ValType, ordinal: usize) -> u32 {
        if let Some(l) = self.scratch.get(&(t, ordinal)) {
            return *l;
        }
        let l = self.new_local(t);
        self.scratch.insert((t, ordinal), l);
        l
    }

    fn open(&mut self, bt: EBlockType, label: Label) -> usize {
        self.out.push(Instruction::Block(bt));
        self.labels.push(label);
        self.labels.len() - 1
    }

    fn close(&mut self, pos: usize) {
        debug_assert_eq!(self.labels.len() - 1, pos, "labels closed out of order");
        self.labels.pop();
        self.out.push(Instruction::End);
    }

    fn depth(&self, pos: usize) -> u32 {
        (self.labels.len() - 1 - pos) as u32
    }

    /// The new relative depth of an original branch depth.
    fn map_depth(&self, d: u32) -> Result<u32, TransformError> {
        let mut seen = 0;
        for (i, l) in self.labels.iter().enumerate().rev() {
            if *l == Label::Orig {
                if seen == d {
                    return Ok(self.depth(i));
                }
                seen += 1;
            }
        }
        Err(TransformError::Internal("branch depth out of range"))
    }

    fn block_type(
        &mut self,
        params: &[ValType],
        results: &[ValType],
    ) -> Result<EBlockType, TransformError> {
        let mut re = self.ctx.reencoder();
        let p: Vec<_> = params
            .iter()
            .map(|t| re.val_type(*t))
            .collect::<Result<_, _>>()
            .map_err(TransformError::reencode)?;
        let r: Vec<_> = results
            .iter()
            .map(|t| re.val_type(*t))
            .collect::<Result<_, _>>()
            .map_err(TransformError::reencode)?;
        Ok(match (p.len(), r.len()) {
            (0, 0) => EBlockType::Empty,
            (0, 1) => EBlockType::Result(r[0]),
            _ => EBlockType::FunctionType(self.block_types.intern(p, r)),
        })
    }

    fn op(&mut self, op: &Operator<'a>) -> Result<(), TransformError> {
        let ins = match op {
            Operator::Br { relative_depth } => Instruction::Br(self.map_depth(*relative_depth)?),
            Operator::BrIf { relative_depth } => {
                Instruction::BrIf(self.map_depth(*relative_depth)?)
            }
            Operator::BrTable { targets } => {
                let mut t = Vec::with_capacity(targets.len() as usize);
                for d in targets.targets() {
                    t.push(self.map_depth(d?)?);
                }
                Instruction::BrTable(t.into(), self.map_depth(targets.default())?)
            }
            Operator::Block { .. }
            | Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End => return Err(TransformError::Internal("structured op outside tree")),
            other => {
                let mut re = self.ctx.reencoder();
                re.instruction(other.clone())
                    .map_err(TransformError::reencode)?
            }
        };
        self.out.push(ins);
        Ok(())
    }

    fn emit_plain(&mut self, n: &Node<'a>) -> Result<(), TransformError> {
        match n {
            Node::Op(op) => self.op(op),
            Node::Construct(c) => self.emit_construct(c, Vec::new()),
            Node::Call(_) | Node::Poll(_) => {
                Err(TransformError::Internal("site emitted as plain code"))
            }
        }
    }

    /// Emits a construct; `inherited` are dispatch entries of enclosing sequences that delegated
    /// their dispatch into this block (see [`Emitter::emit_seq`]).
    fn emit_construct(
        &mut self,
        c: &Construct<'a>,
        inherited: Vec<Tramp<'a>>,
    ) -> Result<(), TransformError> {
        let mut re = self.ctx.reencoder();
        let outer_counter = self.nest_counter;
        let ins = match &c.op {
            Operator::Block { blockty } => {
                Instruction::Block(re.block_type(*blockty).map_err(TransformError::reencode)?)
            }
            Operator::Loop { blockty } => {
                // A bounded loop in a counted nest charges the nest's countdown its whole count on
                // entry, so the nest still re-reads the shared countdown every 2^K iterations.
                if let (Some(n), Some(l)) = (c.bounded, outer_counter) {
                    self.out.extend([
                        Instruction::LocalGet(l),
                        Instruction::I32Const(n as i32),
                        Instruction::I32Sub,
                        Instruction::LocalSet(l),
                    ]);
                }
                // A loop's body is in a counted nest only if the loop itself is counted.
                self.nest_counter = None;
                if let Some(Node::Poll(p)) = c.body.first().filter(|_| c.resumes()) {
                    if p.counted {
                        // A counted loop inside another counts in the outer loop's countdown:
                        // the nest's iterations together re-read the shared countdown every 2^K,
                        // and entering the inner loop costs nothing. The outermost counted loop's
                        // countdown starts from the shared one on every entry, so it is dead
                        // outside the nest (no register held across the rest of the function)
                        // and the host's zero still reaches the first iteration.
                        let l = match outer_counter {
                            Some(l) => l,
                            None => {
                                let l = self.new_local(ValType::I32);
                                self.counters.push(l);
                                self.out.extend(self.ctx.countdown_get());
                                self.out.push(Instruction::LocalSet(l));
                                l
                            }
                        };
                        self.loop_counters.insert(p.site, l);
                        self.nest_counter = Some(l);
                    }
                }
                Instruction::Loop(re.block_type(*blockty).map_err(TransformError::reencode)?)
            }
            Operator::If { blockty } => {
                Instruction::If(re.block_type(*blockty).map_err(TransformError::reencode)?)
            }
            _ => return Err(TransformError::Internal("construct op")),
        };
        self.out.push(ins);
        self.labels.push(Label::Orig);
        self.emit_seq(&c.body, &c.params, inherited)?;
        if let Some(e) = &c.else_body {
            self.out.push(Instruction::Else);
            self.emit_seq(e, &c.params, Vec::new())?;
        }
        self.labels.pop();
        self.out.push(Instruction::End);
        self.nest_counter = outer_counter;
        Ok(())
    }

    /// Emits a sequence (a construct body or the function body) whose stack starts with `params`.
    ///
    /// The dispatch of a sequence normally sits at its start. When the sequence *begins* with a
    /// `block` containing resume points (and nothing needs spilling around it), the dispatch is
    /// delegated into that block instead: from inside, it can still branch out to this sequence's
    /// wrappers. Chains of leading blocks (how compilers lower `switch`, e.g. interpreter loops)
    /// then pay one check on entry instead of one per nesting level.
    fn emit_seq(
        &mut self,
        nodes: &[Node<'a>],
        params: &[ValType],
        inherited: Vec<Tramp<'a>>,
    ) -> Result<(), TransformError> {
        let rps: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].resumes()).collect();
        if rps.is_empty() {
            if !inherited.is_empty() {
                return Err(TransformError::Internal(
                    "dispatch delegated into a block without sites",
                ));
            }
            for n in nodes {
                self.emit_plain(n)?;
            }
            return Ok(());
        }
        // Operands each resume point consumes.
        let operands: Vec<Vec<ValType>> = rps
            .iter()
            .map(|i| match &nodes[*i] {
                Node::Call(c) => c.args.clone(),
                Node::Poll(_) => vec![],
                Node::Construct(c) => c.operands(),
                Node::Op(_) => unreachable!("filtered above"),
            })
            .collect();
        let m = rps.len();
        let mut e_pos = vec![0usize; m];
        let mut e_at = vec![0usize; m];
        let mut skip_pos: Vec<Option<usize>> = vec![None; m];
        for k in (0..m).rev() {
            if matches!(nodes[rps[k]], Node::Poll(_)) {
                let bt = self.block_type(params, &[])?;
                skip_pos[k] = Some(self.open(bt, Label::Synth));
            }
            let bt = self.block_type(params, &operands[k])?;
            e_at[k] = self.out.len();
            e_pos[k] = self.open(bt, Label::Synth);
        }

        // The dispatch, taken only while rewinding.
        let delegate = rps[0] == 0
            && matches!(&nodes[0], Node::Construct(c)
                if matches!(c.op, Operator::Block { .. }) && c.below.is_empty());
        let mut tramps = Vec::new();
        for (k, i) in rps.iter().enumerate() {
            if delegate && k == 0 {
                continue; // the leading block dispatches its own sites
            }
            match &nodes[*i] {
                Node::Call(c) => {
                    let code = self.call_tramp(c)?;
                    tramps.push(Tramp {
                        lo: c.site,
                        hi: c.site + 1,
                        code,
                        target: e_pos[k],
                        target_at: e_at[k],
                    });
                }
                Node::Poll(p) => tramps.push(Tramp {
                    lo: p.site,
                    hi: p.site + 1,
                    code: vec![
                        Instruction::I32Const(0),
                        Instruction::GlobalSet(self.ctx.rsite_global),
                    ],
                    target: e_pos[k],
                    target_at: e_at[k],
                }),
                Node::Construct(c) => {
                    let mut code = Vec::new();
                    for p in &c.params {
                        code.push(dummy(*p)?);
                    }
                    if c.is_if() {
                        if c.else_lo > c.then_lo {
                            let mut then = code.clone();
                            then.push(Instruction::I32Const(1));
                            tramps.push(Tramp {
                                lo: c.then_lo,
                                hi: c.else_lo,
                                code: then,
                                target: e_pos[k],
                                target_at: e_at[k],
                            });
                        }
                        if c.hi > c.else_lo {
                            code.push(Instruction::I32Const(0));
                            tramps.push(Tramp {
                                lo: c.else_lo,
                                hi: c.hi,
                                code,
                                target: e_pos[k],
                                target_at: e_at[k],
                            });
                        }
                    } else {
                        tramps.push(Tramp {
                            lo: c.then_lo,
                            hi: c.hi,
                            code,
                            target: e_pos[k],
                            target_at: e_at[k],
                        });
                    }
                }
                Node::Op(_) => unreachable!("filtered above"),
            }
        }
        tramps.extend(inherited);
        // A leading poll with nothing to spill carries the dispatch in its slow path: a loop
        // header then tests `$rsite` once every 2^K iterations, not on every one.
        let fold =
            !delegate && rps[0] == 0 && matches!(&nodes[0], Node::Poll(p) if p.stack.is_empty());
        let mut pass_down = Some(tramps);
        let mut folded = None;
        if fold {
            folded = pass_down.take();
        } else if !delegate {
            if let Some(t) = pass_down.take() {
                self.emit_dispatch(t)?;
            }
        }

        let mut next = 0;
        for (k, &i) in rps.iter().enumerate() {
            for n in &nodes[next..i] {
                self.emit_plain(n)?;
            }
            next = i + 1;
            match &nodes[i] {
                Node::Call(c) => {
                    let spilled = self.spill(&c.below, &c.args);
                    if let (CallHow::Indirect { .. }, false) = (c.how, c.tail) {
                        let l = self.cidx();
                        self.out.push(Instruction::LocalTee(l));
                    }
                    self.close(e_pos[k]);
                    let mut re = self.ctx.reencoder();
                    self.out.push(match (c.how, c.tail) {
                        (CallHow::Direct(f), false) => Instruction::Call(
                            re.function_index(f).map_err(TransformError::reencode)?,
                        ),
                        (CallHow::Direct(f), true) => Instruction::ReturnCall(
                            re.function_index(f).map_err(TransformError::reencode)?,
                        ),
                        (CallHow::Indirect { type_index, table }, false) => {
                            Instruction::CallIndirect {
                                type_index,
                                table_index: table,
                            }
                        }
                        (CallHow::Indirect { type_index, table }, true) => {
                            Instruction::ReturnCallIndirect {
                                type_index,
                                table_index: table,
                            }
                        }
                    });
                    if !c.tail {
                        // A tail call never comes back here: if the callee unwinds, it returns straight
                        // to this function's caller, and a rewind re-issues the tail call (prologue).
                        let ind = matches!(c.how, CallHow::Indirect { .. });
                        match c.results.as_slice() {
                            [t @ (ValType::I32 | ValType::I64)] => {
                                self.unwind_check_result(c.site, ind, *t)
                            }
                            _ => self.unwind_check(c.site, ind),
                        }
                        self.reload(spilled, &c.results);
                    } else {
                        self.release(spilled);
                    }
                }
                Node::Poll(p) => {
                    let spilled = self.spill(&p.stack, &[]);
                    let skip =
                        skip_pos[k].ok_or(TransformError::Internal("poll without skip block"))?;
                    // Fast path. Counted: the loop's own countdown, in a register. Uncounted:
                    // the shared countdown, which the host zeroes to make every site poll.
                    let counter = self.loop_counters.get(&p.site).copied();
                    if p.counted {
                        let c = counter
                            .ok_or(TransformError::Internal("counted poll outside its loop"))?;
                        self.out.extend([
                            Instruction::LocalGet(c),
                            Instruction::I32Const(1),
                            Instruction::I32Sub,
                            Instruction::LocalTee(c),
                        ]);
                    } else {
                        self.out.extend(self.ctx.countdown_get());
                    }
                    self.out.extend([
                        Instruction::I32Const(0),
                        Instruction::I32GtS,
                        Instruction::BrIf(self.depth(skip)),
                    ]);
                    // Slow path: reached while rewinding (both countdowns are zero then), so a
                    // folded dispatch still runs before anything else of the sequence.
                    if k == 0 {
                        if let Some(t) = folded.take() {
                            self.emit_dispatch(t)?;
                        }
                    }
                    if p.counted {
                        // Reload the loop's countdown from the shared one: 2^K normally,
                        // zero while a trigger traces every site or the doorbell has rung.
                        let c = counter
                            .ok_or(TransformError::Internal("counted poll outside its loop"))?;
                        self.out.extend(self.ctx.countdown_get());
                        self.out.extend([
                            Instruction::LocalTee(c),
                            Instruction::I32Const(0),
                            Instruction::I32GtS,
                            Instruction::BrIf(self.depth(skip)),
                        ]);
                    }
                    self.close(e_pos[k]);
                    self.out.extend(poll_call(self.ctx, p.site));
                    self.unwind_check(p.site, false);
                    self.close(skip);
                    self.reload(spilled, &[]);
                }
                Node::Construct(c) => {
                    let spilled = self.spill(&c.below, &c.operands());
                    self.close(e_pos[k]);
                    let inherited = if k == 0 {
                        pass_down.take().unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    self.emit_construct(c, inherited)?;
                    self.reload(spilled, &c.results);
                }
                Node::Op(_) => unreachable!("filtered above"),
            }
        }
        for n in &nodes[next..] {
            self.emit_plain(n)?;
        }
        Ok(())
    }

    /// Code that pushes a call site's operands while rewinding (placeholders, except the table
    /// index of an indirect call) and marks the rewind complete at this frame.
    fn call_tramp(&mut self, c: &CallNode) -> Result<Vec<Instruction<'a>>, TransformError> {
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
                code.push(Instruction::LocalGet(self.cidx()));
            }
            code.push(Instruction::Call(self.ctx.host(HostFunc::RewindIndex)));
        }
        Ok(code)
    }

    /// `if $rsite { br_table … }` (`$rsite` is the `mvvm:rsite` global): jumps to the trampoline of the site being rewound to.
    fn emit_dispatch(&mut self, tramps: Vec<Tramp<'a>>) -> Result<(), TransformError> {
        let lo = tramps.iter().map(|t| t.lo).min().unwrap_or(0);
        let hi = tramps.iter().map(|t| t.hi).max().unwrap_or(0);
        let n = tramps.len();
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
            let j = tramps.iter().position(|t| t.lo <= s && s < t.hi);
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
        for (j, t) in tramps.into_iter().enumerate() {
            self.close(t_pos[j]);
            let reads_cidx = self.cidx.is_some_and(|c| {
                t.code
                    .iter()
                    .any(|i| matches!(i, Instruction::LocalGet(l) if *l == c))
            });
            self.tramp_starts.push(TrampStart {
                at: self.out.len(),
                dispatch,
                target_at: t.target_at,
                reads_cidx,
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

    fn cidx(&mut self) -> u32 {
        match self.cidx {
            Some(l) => l,
            None => {
                let l = self.new_local(ValType::I32);
                self.cidx = Some(l);
                l
            }
        }
    }

    /// The unwind check after a call whose only result is `t` (`i32` or `i64`): an unwinding callee
    /// returns [`UNWOUND_I32`]/[`UNWOUND_I64`], so the state is read only when the result is that
    /// value. `local.tee $r; local.get $r; tNN.const UNWOUND; tNN.eq; if` leaves the result on the
    /// stack and costs a compare with a constant instead of a load.
    fn unwind_check_result(&mut self, site: u32, indirect: bool, t: ValType) {
        let r = self.scratch(t, 0);
        self.out.push(Instruction::LocalTee(r));
        self.out.push(Instruction::LocalGet(r));
        if t == ValType::I64 {
            self.out.push(Instruction::I64Const(UNWOUND_I64));
            self.out.push(Instruction::I64Eq);
        } else {
            self.out.push(Instruction::I32Const(UNWOUND_I32));
            self.out.push(Instruction::I32Eq);
        }
        self.out.push(Instruction::If(EBlockType::Empty));
        self.labels.push(Label::Synth);
        self.unwind_check(site, indirect);
        self.labels.pop();
        self.out.push(Instruction::End);
    }

    /// `global.get $state; if (unwind branch) end`: while unwinding, leave through the site's
    /// handler (see [`unwind_branch`]).
    fn unwind_check(&mut self, site: u32, indirect: bool) {
        self.out.push(Instruction::GlobalGet(self.ctx.state_global));
        let if_at = self.out.len();
        self.out.push(Instruction::If(EBlockType::Empty));
        self.labels.push(Label::Synth);
        let depth = self.depth(self.unwind_label);
        self.out
            .extend(unwind_branch(site, self.ctx.rsite_global, depth));
        self.labels.pop();
        self.out.push(Instruction::End);
        self.unwind_checks.push(UnwindCheck {
            site,
            if_at,
            indirect,
        });
    }

    /// Moves `below` (under `top` on the stack) into spill locals, leaving `top` in place.
    fn spill(&mut self, below: &[ValType], top: &[ValType]) -> Vec<u32> {
        if below.is_empty() {
            return vec![];
        }
        let top_locals = self.scratch_for(top);
        for l in top_locals.iter().rev() {
            self.out.push(Instruction::LocalSet(*l));
        }
        let mut spilled = Vec::with_capacity(below.len());
        for t in below {
            let ord = self.spill_used.entry(*t).or_insert(0);
            let key = (*t, *ord);
            *ord += 1;
            let l = match self.spill.get(&key) {
                Some(l) => *l,
                None => {
                    let l = self.new_local(*t);
                    self.spill.insert(key, l);
                    l
                }
            };
            spilled.push(l);
        }
        for l in spilled.iter().rev() {
            self.out.push(Instruction::LocalSet(*l));
        }
        for l in &top_locals {
            self.out.push(Instruction::LocalGet(*l));
        }
        spilled
    }

    /// Releases spill locals without reloading them (after a tail call).
    fn release(&mut self, spilled: Vec<u32>) {
        for l in spilled {
            let t = self.locals[l as usize];
            if let Some(n) = self.spill_used.get_mut(&t) {
                *n -= 1;
            }
        }
    }

    /// Puts spilled values back under `top` and releases their locals.
    fn reload(&mut self, spilled: Vec<u32>, top: &[ValType]) {
        if spilled.is_empty() {
            return;
        }
        let top_locals = self.scratch_for(top);
        for l in top_locals.iter().rev() {
            self.out.push(Instruction::LocalSet(*l));
        }
        for l in &spilled {
            self.out.push(Instruction::LocalGet(*l));
            let t = self.locals[*l as usize];
            if let Some(n) = self.spill_used.get_mut(&t) {
                *n -= 1;
            }
        }
        for l in &top_locals {
            self.out.push(Instruction::LocalGet(*l));
        }
    }

    fn scratch_for(&mut self, types: &[ValType]) -> Vec<u32> {
        let mut ord: HashMap<ValType, usize> = HashMap::new();
        types
            .iter()
            .map(|t| {
                let o = ord.entry(*t).or_insert(0);
                *o += 1;
                self.scratch(*t, *o - 1)
            })
            .collect()
    }
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

/// Rewrites one function for [`super::Mode::PollsOnly`]: the poll sites [`rewrite`] adds, with the
/// countdown code Asyncify runs fastest with (below), and nothing else (no spills, dispatch, unwind
/// checks, prologue or handler).
/// Original code and labels are kept as they are; each poll is a self-contained `if`.
pub(super) fn add_polls(
    ctx: &ModuleContext,
    sites: &mut Vec<SiteInfo>,
    func: u32,
    body: &FunctionBody<'_>,
    loop_kinds: &[LoopPoll],
    mut validator: FuncValidator<ValidatorResources>,
) -> Result<wasm_encoder::Function, TransformError> {
    let mut re = ctx.reencoder();
    let mut groups = Vec::new();
    let mut n_locals = ctx.func_type(func).params().len() as u32;
    let mut reader = body.get_locals_reader()?;
    for _ in 0..reader.get_count() {
        let offset = reader.original_position();
        let (count, t) = reader.read()?;
        validator.define_locals(offset, count, t)?;
        groups.push((count, re.val_type(t).map_err(TransformError::reencode)?));
        n_locals += count;
    }
    // The poll code Asyncify runs fastest with (the baseline should not pay for choices made for
    // Cranelift): one countdown per activation for every counted loop header, and the site id as
    // a constant. The host reads `site + countdown` (`HostFunc::Poll`): the countdown is zero
    // whenever a site polls, so a constant says the same. Measured (3 pairs): Asyncify's ratio on
    // lu, cipher and sort is 1.21, 1.46 and 1.34 with this code, 1.66, 1.66 and 1.51 with the
    // checkpoint transform's poll code (a countdown per loop set on entry, loops with calls
    // uncounted, `site + countdown` computed).
    let policy = &ctx.policy;
    let counter = n_locals;
    groups.push((1, wasm_encoder::ValType::I32));
    let mut f = wasm_encoder::Function::new(groups);
    let mut poll = |f: &mut wasm_encoder::Function, kind: SiteKind| {
        let counted = matches!(kind, SiteKind::LoopHeader { counted: true });
        sites.push(SiteInfo {
            func,
            kind,
            frame: Vec::new(),
        });
        let site = (sites.len() - 1) as i32;
        if counted {
            f.instructions()
                .local_get(counter)
                .i32_const(1)
                .i32_sub()
                .local_tee(counter)
                .i32_const(0)
                .i32_le_s()
                .if_(EBlockType::Empty);
            for i in ctx.countdown_get() {
                f.instruction(&i);
            }
            f.instructions().local_tee(counter);
        } else {
            for i in ctx.countdown_get() {
                f.instruction(&i);
            }
        }
        f.instructions()
            .i32_const(0)
            .i32_le_s()
            .if_(EBlockType::Empty)
            .i32_const(site)
            .call(ctx.host(HostFunc::Poll))
            .end();
        if counted {
            f.instructions().end();
        }
    };
    if policy.function_entry {
        poll(&mut f, SiteKind::Entry);
    }
    let mut loop_ordinal = 0usize;
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let offset = ops.original_position();
        let op = ops.read()?;
        validator.op(offset, &op)?;
        if let Operator::Call { function_index } | Operator::ReturnCall { function_index } = op {
            if function_index < ctx.imported_funcs {
                poll(
                    &mut f,
                    SiteKind::Import {
                        func: function_index,
                    },
                );
            }
        }
        let is_loop = matches!(op, Operator::Loop { .. });
        f.instruction(&re.instruction(op).map_err(TransformError::reencode)?);
        if is_loop {
            // The same loops as the checkpoint transform's (a bounded loop has no site), each
            // counted in the one countdown under the counter-loop policy.
            let kind = loop_kinds.get(loop_ordinal).copied();
            loop_ordinal += 1;
            if kind.is_some_and(LoopPoll::is_site) {
                let counted = policy.counter_loop;
                poll(&mut f, SiteKind::LoopHeader { counted });
            }
        }
    }
    Ok(f)
}

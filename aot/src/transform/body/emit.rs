//! The second step of a body rewrite: the instrumented code, emitted from the tree. Each sequence
//! with resume points gets its wrapper blocks and rewind dispatch (see [`Emitter::emit_seq`]),
//! each call that may unwind its spills and unwind check, each poll its countdown test.

use super::super::plan::{BlockTypes, ModuleContext};
use super::super::TransformError;
use super::frames::unwind_branch;
use super::rewind::{Trampoline, TrampolineStart};
use super::tree::{CallHow, CallNode, Construct, Node, PollNode};
use super::{UNWOUND_I32, UNWOUND_I64};
use std::collections::HashMap;
use wasm_encoder::reencode::Reencode;
use wasm_encoder::{BlockType as EBlockType, Instruction};
use wasmparser::{Operator, ValType};

/// Who added a label.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Label {
    /// A label of the original code: original branch depths count these.
    Orig,
    /// A label the transform added.
    Synth,
}

/// Emits one function body (see [`emit_body`]).
pub(super) struct Emitter<'c, 'b, 'a> {
    pub(super) ctx: &'c ModuleContext,
    block_types: &'b mut BlockTypes,
    /// The code emitted so far.
    pub(super) out: Vec<Instruction<'a>>,
    /// Every label open at the end of `out`, outermost first.
    pub(super) labels: Vec<Label>,
    /// The types of the function's locals, parameters first, the transform's own appended.
    locals: Vec<ValType>,
    /// The local that keeps the table index of the function's non-tail indirect calls (their
    /// rewind trampolines read it), once one is emitted.
    pub(super) table_index_local: Option<u32>,
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
    /// How many spill locals of each type are in use.
    spill_used: HashMap<ValType, usize>,
    /// The label position of `$unwind`, the block around the body that unwind checks leave.
    unwind_label: usize,
    /// Every unwind check emitted, in order.
    unwind_checks: Vec<UnwindCheck>,
    /// Every trampoline. Once liveness is known, code that defines the locals live at its target
    /// but not at its dispatch is inserted at its start.
    pub(super) trampoline_starts: Vec<TrampolineStart>,
    /// Index in `out` of every dispatch's `if`.
    pub(super) dispatches: Vec<usize>,
}

/// Where an unwind check is in the emitted body.
pub(super) struct UnwindCheck {
    /// Its site.
    pub(super) site: u32,
    /// Index of its `if` (the frame holds what is live after the `if … end`).
    pub(super) if_at: usize,
    /// A non-tail indirect call: its trampoline reads the table index local on rewind.
    pub(super) indirect: bool,
}

/// An emitted body and where its instrumentation is.
pub(super) struct Emitted<'a> {
    /// The body, from `block $unwind` to the function's `return; end` (without the final `end`).
    pub(super) code: Vec<Instruction<'a>>,
    /// The types of all its locals, parameters first.
    pub(super) locals: Vec<ValType>,
    /// See [`Emitter::table_index_local`].
    pub(super) table_index_local: Option<u32>,
    /// The countdown local of each counted loop header's site.
    pub(super) loop_counters: HashMap<u32, u32>,
    /// Every countdown local.
    pub(super) counters: Vec<u32>,
    /// Every unwind check, in order.
    pub(super) unwind_checks: Vec<UnwindCheck>,
    /// Every trampoline.
    pub(super) trampoline_starts: Vec<TrampolineStart>,
    /// Index in `code` of every dispatch's `if`.
    pub(super) dispatches: Vec<usize>,
    /// Where the common exit of the unwind handlers keeps the site: a scratch local, dead in the
    /// body wherever a handler leaves it.
    pub(super) exit_site: u32,
}

/// Emits the instrumented body of a function whose locals (parameters first) are `locals`.
pub(super) fn emit_body<'a>(
    ctx: &ModuleContext,
    block_types: &mut BlockTypes,
    locals: Vec<ValType>,
    tree: &[Node<'a>],
) -> Result<Emitted<'a>, TransformError> {
    let mut emitter = Emitter {
        ctx,
        block_types,
        out: Vec::new(),
        labels: vec![Label::Orig],
        locals,
        table_index_local: None,
        loop_counters: HashMap::new(),
        counters: Vec::new(),
        nest_counter: None,
        scratch: HashMap::new(),
        spill: HashMap::new(),
        spill_used: HashMap::new(),
        unwind_label: 0,
        unwind_checks: Vec::new(),
        trampoline_starts: Vec::new(),
        dispatches: Vec::new(),
    };
    emitter.unwind_label = emitter.open(EBlockType::Empty, Label::Synth);
    emitter.emit_seq(tree, &[], Vec::new())?;
    emitter.out.push(Instruction::Return);
    emitter.close(emitter.unwind_label);
    let exit_site = emitter.scratch(ValType::I32, 0);
    Ok(Emitted {
        code: emitter.out,
        locals: emitter.locals,
        table_index_local: emitter.table_index_local,
        loop_counters: emitter.loop_counters,
        counters: emitter.counters,
        unwind_checks: emitter.unwind_checks,
        trampoline_starts: emitter.trampoline_starts,
        dispatches: emitter.dispatches,
        exit_site,
    })
}

/// The wrapper blocks of a sequence's resume points (see [`Emitter::emit_seq`]), by resume point.
struct Wrappers {
    /// The label position of the block that ends right before the resume point.
    label: Vec<usize>,
    /// Index in `out` of that block's `block` instruction.
    at: Vec<usize>,
    /// A poll's skip block, around the poll (the fast path branches to its end).
    skip: Vec<Option<usize>>,
}

impl<'a> Emitter<'_, '_, 'a> {
    /// A new local of type `t`.
    fn new_local(&mut self, t: ValType) -> u32 {
        self.locals.push(t);
        (self.locals.len() - 1) as u32
    }

    /// The short-lived local of type `t` and `ordinal`.
    fn scratch(&mut self, t: ValType, ordinal: usize) -> u32 {
        if let Some(l) = self.scratch.get(&(t, ordinal)) {
            return *l;
        }
        let l = self.new_local(t);
        self.scratch.insert((t, ordinal), l);
        l
    }

    /// Opens a `block` of type `bt`; returns its label position.
    pub(super) fn open(&mut self, bt: EBlockType, label: Label) -> usize {
        self.out.push(Instruction::Block(bt));
        self.labels.push(label);
        self.labels.len() - 1
    }

    /// Closes the block at label position `pos`, the innermost.
    pub(super) fn close(&mut self, pos: usize) {
        debug_assert_eq!(self.labels.len() - 1, pos, "labels closed out of order");
        self.labels.pop();
        self.out.push(Instruction::End);
    }

    /// The branch depth, from the end of `out`, of label position `pos`.
    pub(super) fn depth(&self, pos: usize) -> u32 {
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

    /// The block type `params -> results`, interned if it needs a function type.
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

    /// Emits an original non-structured instruction, its branch depths mapped.
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

    /// Emits a node that needs no dispatch: an instruction or a construct without sites.
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
        inherited: Vec<Trampoline<'a>>,
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
    /// Emits a sequence (a construct body or the function body) whose stack starts with `params`.
    ///
    /// The dispatch of a sequence normally sits at its start. When the sequence *begins* with a
    /// `block` containing resume points (and nothing needs spilling around it), the dispatch is
    /// delegated into that block instead: from inside, it can still branch out to this sequence's
    /// wrappers. Chains of leading blocks (how compilers lower `switch`, e.g. interpreter loops)
    /// then pay one check on entry instead of one per nesting level.
    pub(super) fn emit_seq(
        &mut self,
        nodes: &[Node<'a>],
        params: &[ValType],
        inherited: Vec<Trampoline<'a>>,
    ) -> Result<(), TransformError> {
        let resume_points: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].resumes()).collect();
        if resume_points.is_empty() {
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
        let wrappers = self.open_wrappers(nodes, &resume_points, params)?;

        // The dispatch, taken only while rewinding.
        let delegate = resume_points[0] == 0
            && matches!(&nodes[0], Node::Construct(c)
                if matches!(c.op, Operator::Block { .. }) && c.below.is_empty());
        let mut trampolines = Vec::new();
        for (k, i) in resume_points.iter().enumerate() {
            if delegate && k == 0 {
                continue; // the leading block dispatches its own sites
            }
            let (target, target_at) = (wrappers.label[k], wrappers.at[k]);
            trampolines.extend(self.trampolines_to(&nodes[*i], target, target_at)?);
        }
        trampolines.extend(inherited);
        // A leading poll with nothing to spill carries the dispatch in its slow path: a loop
        // header then tests `$rsite` once every 2^K iterations, not on every one.
        let fold = !delegate
            && resume_points[0] == 0
            && matches!(&nodes[0], Node::Poll(p) if p.stack.is_empty());
        let mut pass_down = Some(trampolines);
        let mut folded = None;
        if fold {
            folded = pass_down.take();
        } else if !delegate {
            if let Some(t) = pass_down.take() {
                self.emit_dispatch(t)?;
            }
        }

        let mut next = 0;
        for (k, &i) in resume_points.iter().enumerate() {
            for n in &nodes[next..i] {
                self.emit_plain(n)?;
            }
            next = i + 1;
            match &nodes[i] {
                Node::Call(c) => self.emit_call_site(c, wrappers.label[k])?,
                Node::Poll(p) => {
                    let skip = wrappers.skip[k]
                        .ok_or(TransformError::Internal("poll without skip block"))?;
                    let folded = if k == 0 { folded.take() } else { None };
                    self.emit_poll_site(p, wrappers.label[k], skip, folded)?;
                }
                Node::Construct(c) => {
                    let spilled = self.spill(&c.below, &c.operands());
                    self.close(wrappers.label[k]);
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

    /// Opens the wrapper blocks of a sequence whose stack starts with `params`: for resume points
    /// `P1 < … < Pm`, blocks `E1 ⊂ … ⊂ Em` that end right before each (a block that ends before
    /// `Pk` leaves `Pk`'s operands), and a poll's skip block outside its wrapper.
    fn open_wrappers(
        &mut self,
        nodes: &[Node<'a>],
        resume_points: &[usize],
        params: &[ValType],
    ) -> Result<Wrappers, TransformError> {
        let m = resume_points.len();
        let mut wrappers = Wrappers {
            label: vec![0; m],
            at: vec![0; m],
            skip: vec![None; m],
        };
        for k in (0..m).rev() {
            let operands = match &nodes[resume_points[k]] {
                Node::Call(c) => c.args.clone(),
                Node::Poll(_) => {
                    let bt = self.block_type(params, &[])?;
                    wrappers.skip[k] = Some(self.open(bt, Label::Synth));
                    vec![]
                }
                Node::Construct(c) => c.operands(),
                Node::Op(_) => unreachable!("not a resume point"),
            };
            let bt = self.block_type(params, &operands)?;
            wrappers.at[k] = self.out.len();
            wrappers.label[k] = self.open(bt, Label::Synth);
        }
        Ok(wrappers)
    }

    /// A call site: its spills, the call (its wrapper block closing right before it), then the
    /// unwind check and the reloads.
    fn emit_call_site(&mut self, c: &CallNode, wrapper: usize) -> Result<(), TransformError> {
        let spilled = self.spill(&c.below, &c.args);
        if let (CallHow::Indirect { .. }, false) = (c.how, c.tail) {
            let l = self.table_index_local();
            self.out.push(Instruction::LocalTee(l));
        }
        self.close(wrapper);
        let mut re = self.ctx.reencoder();
        self.out.push(match (c.how, c.tail) {
            (CallHow::Direct(f), false) => {
                Instruction::Call(re.function_index(f).map_err(TransformError::reencode)?)
            }
            (CallHow::Direct(f), true) => {
                Instruction::ReturnCall(re.function_index(f).map_err(TransformError::reencode)?)
            }
            (CallHow::Indirect { type_index, table }, false) => Instruction::CallIndirect {
                type_index,
                table_index: table,
            },
            (CallHow::Indirect { type_index, table }, true) => Instruction::ReturnCallIndirect {
                type_index,
                table_index: table,
            },
        });
        if c.tail {
            // A tail call never comes back here: if the callee unwinds, it returns straight to
            // this function's caller, and a rewind re-issues the tail call (prologue).
            self.release(spilled);
            return Ok(());
        }
        let indirect = matches!(c.how, CallHow::Indirect { .. });
        match c.results.as_slice() {
            [t @ (ValType::I32 | ValType::I64)] => self.unwind_check_result(c.site, indirect, *t),
            _ => self.unwind_check(c.site, indirect),
        }
        self.reload(spilled, &c.results);
        Ok(())
    }

    /// A poll site: the countdown test that skips it (its wrapper block closing right before the
    /// slow path), then the host call and its unwind check. `folded`: the sequence's dispatch,
    /// when it rides in this poll's slow path.
    fn emit_poll_site(
        &mut self,
        p: &PollNode,
        wrapper: usize,
        skip: usize,
        folded: Option<Vec<Trampoline<'a>>>,
    ) -> Result<(), TransformError> {
        let spilled = self.spill(&p.stack, &[]);
        // Fast path. Counted: the loop's own countdown, in a register. Uncounted: the shared
        // countdown, which the host zeroes to make every site poll.
        let counter = self.loop_counters.get(&p.site).copied();
        if p.counted {
            let c = counter.ok_or(TransformError::Internal("counted poll outside its loop"))?;
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
        // Slow path: reached while rewinding (both countdowns are zero then), so a folded
        // dispatch still runs before anything else of the sequence.
        if let Some(t) = folded {
            self.emit_dispatch(t)?;
        }
        if p.counted {
            // Reload the loop's countdown from the shared one: 2^K normally, zero while a
            // trigger traces every site or the doorbell has rung.
            let c = counter.ok_or(TransformError::Internal("counted poll outside its loop"))?;
            self.out.extend(self.ctx.countdown_get());
            self.out.extend([
                Instruction::LocalTee(c),
                Instruction::I32Const(0),
                Instruction::I32GtS,
                Instruction::BrIf(self.depth(skip)),
            ]);
        }
        self.close(wrapper);
        self.out.extend(poll_call(self.ctx, p.site));
        self.unwind_check(p.site, false);
        self.close(skip);
        self.reload(spilled, &[]);
        Ok(())
    }

    /// The table index local, declared on first use.
    pub(super) fn table_index_local(&mut self) -> u32 {
        match self.table_index_local {
            Some(l) => l,
            None => {
                let l = self.new_local(ValType::I32);
                self.table_index_local = Some(l);
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

    /// One short-lived local per type in `types` (repeated types get distinct ordinals).
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

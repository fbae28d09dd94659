//! Which locals are live where: a backward dataflow analysis over structured wasm code.
//!
//! The unwind handler of a function saves, for each site, only the locals that the code after the
//! site can still read ([`analyze`]). Saving every local instead would make every local live
//! across every call that may unwind, which costs registers and spills on the normal path.
//!
//! The rewind dispatches are left out (*natural* liveness): each trampoline defines the locals
//! live at its target that are not live at its dispatch, so the dispatches extend no live range
//! of the normal path, and natural liveness is the liveness of the emitted code.

use super::TransformError;
use std::collections::HashMap;
use wasm_encoder::Instruction;

/// A set of local indices.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct Locals(Vec<u64>);

impl Locals {
    fn empty(n: usize) -> Locals {
        Locals(vec![0; n.div_ceil(64)])
    }
    fn insert(&mut self, i: u32) {
        if let Some(w) = self.0.get_mut(i as usize / 64) {
            *w |= 1 << (i % 64);
        }
    }
    fn remove(&mut self, i: u32) {
        if let Some(w) = self.0.get_mut(i as usize / 64) {
            *w &= !(1 << (i % 64));
        }
    }
    fn union(&mut self, o: &Locals) {
        for (a, b) in self.0.iter_mut().zip(&o.0) {
            *a |= b;
        }
    }
    /// Whether `i` is a member.
    pub(super) fn contains(&self, i: u32) -> bool {
        self.0
            .get(i as usize / 64)
            .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
    /// The members, ascending.
    pub(super) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().enumerate().flat_map(|(w, bits)| {
            (0..64)
                .filter(move |b| bits & (1 << b) != 0)
                .map(move |b| (w * 64 + b) as u32)
        })
    }
}

/// Structured code: straight-line instructions and nested constructs.
enum Node {
    /// Index of the instruction in the analysed slice.
    Op(usize),
    /// Index of the `block` instruction, body.
    Block(usize, Vec<Node>),
    Loop(usize, Vec<Node>),
    /// Index of the `if` instruction, then arm, else arm.
    If(usize, Vec<Node>, Vec<Node>),
}

/// A construct being parsed by [`tree`].
struct Open {
    /// The instruction that opened it (`None` for the function level).
    op: Option<usize>,
    nodes: Vec<Node>,
    /// The then arm, once `else` was seen.
    then: Option<Vec<Node>>,
}

fn tree(code: &[Instruction<'_>]) -> Result<Vec<Node>, TransformError> {
    let open = |op| Open {
        op,
        nodes: Vec::new(),
        then: None,
    };
    let mut stack: Vec<Open> = vec![open(None)];
    let mut loops = 0usize;
    for (i, ins) in code.iter().enumerate() {
        match ins {
            Instruction::Block(_) | Instruction::Loop(_) | Instruction::If(_) => {
                stack.push(open(Some(i)))
            }
            Instruction::Else => {
                let top = stack
                    .last_mut()
                    .ok_or(TransformError::Internal("liveness: else outside if"))?;
                top.then = Some(std::mem::take(&mut top.nodes));
            }
            Instruction::End => {
                let o = stack
                    .pop()
                    .ok_or(TransformError::Internal("liveness: unbalanced end"))?;
                let (Some(start), false) = (o.op, stack.is_empty()) else {
                    return Err(TransformError::Internal("liveness: unbalanced end"));
                };
                let node = match (&code[start], o.then) {
                    (Instruction::Block(_), _) => Node::Block(start, o.nodes),
                    (Instruction::Loop(_), _) => {
                        loops += 1;
                        Node::Loop(loops - 1, o.nodes)
                    }
                    (_, Some(then)) => Node::If(start, then, o.nodes),
                    (_, None) => Node::If(start, o.nodes, Vec::new()),
                };
                stack.last_mut().expect("outer level").nodes.push(node);
            }
            _ => stack
                .last_mut()
                .expect("outer level")
                .nodes
                .push(Node::Op(i)),
        }
    }
    match stack.pop() {
        Some(Open {
            op: None, nodes, ..
        }) if stack.is_empty() => Ok(nodes),
        _ => Err(TransformError::Internal("liveness: unclosed construct")),
    }
}

struct Analysis<'c, 'a> {
    code: &'c [Instruction<'a>],
    n: usize,
    /// Live-in of each loop header so far (liveness only grows, so a fixpoint reached for an
    /// inner loop is a valid start for the next round of an outer one).
    loop_heads: HashMap<usize, Locals>,
    /// Live sets at branch targets, innermost last.
    labels: Vec<Locals>,
    /// `if` instructions whose live-after set is wanted, and the answers.
    wanted: &'c HashMap<usize, ()>,
    found: HashMap<usize, Locals>,
    /// `block` instructions whose live-after set is wanted, and the answers.
    wanted_blocks: &'c HashMap<usize, ()>,
    found_blocks: HashMap<usize, Locals>,
    /// `if` instructions whose construct is taken to do nothing (rewind dispatches).
    skip: &'c HashMap<usize, ()>,
}

impl Analysis<'_, '_> {
    fn label(&self, depth: u32) -> Result<&Locals, TransformError> {
        self.labels
            .len()
            .checked_sub(1 + depth as usize)
            .and_then(|i| self.labels.get(i))
            .ok_or(TransformError::Internal(
                "liveness: branch depth out of range",
            ))
    }

    /// Live-in of `seq` given its live-out.
    fn seq(&mut self, seq: &[Node], mut live: Locals) -> Result<Locals, TransformError> {
        for node in seq.iter().rev() {
            live = match node {
                Node::Op(i) => self.op(*i, live)?,
                Node::Block(start, body) => {
                    if self.wanted_blocks.contains_key(start) {
                        self.found_blocks.insert(*start, live.clone());
                    }
                    self.labels.push(live.clone());
                    let r = self.seq(body, live);
                    self.labels.pop();
                    r?
                }
                Node::Loop(id, body) => {
                    let mut head = self
                        .loop_heads
                        .get(id)
                        .cloned()
                        .unwrap_or_else(|| Locals::empty(self.n));
                    loop {
                        self.labels.push(head.clone());
                        let r = self.seq(body, live.clone());
                        self.labels.pop();
                        let mut next = r?;
                        next.union(&head);
                        if next == head {
                            break;
                        }
                        head = next;
                    }
                    self.loop_heads.insert(*id, head.clone());
                    head
                }
                Node::If(i, then, els) => {
                    if self.wanted.contains_key(i) {
                        self.found.insert(*i, live.clone());
                    }
                    if self.skip.contains_key(i) {
                        continue;
                    }
                    self.labels.push(live.clone());
                    let t = self.seq(then, live.clone());
                    let e = self.seq(els, live);
                    self.labels.pop();
                    let mut t = t?;
                    t.union(&e?);
                    t
                }
            };
        }
        Ok(live)
    }

    fn op(&self, i: usize, mut live: Locals) -> Result<Locals, TransformError> {
        Ok(match &self.code[i] {
            Instruction::LocalGet(l) => {
                live.insert(*l);
                live
            }
            Instruction::LocalSet(l) | Instruction::LocalTee(l) => {
                live.remove(*l);
                live
            }
            Instruction::Br(d) => self.label(*d)?.clone(),
            Instruction::BrIf(d) => {
                live.union(self.label(*d)?);
                live
            }
            Instruction::BrTable(targets, default) => {
                let mut l = self.label(*default)?.clone();
                for d in targets.iter() {
                    l.union(self.label(*d)?);
                }
                l
            }
            Instruction::Return
            | Instruction::Unreachable
            | Instruction::ReturnCall(_)
            | Instruction::ReturnCallIndirect { .. } => Locals::empty(self.n),
            Instruction::BrOnNull(_)
            | Instruction::BrOnNonNull(_)
            | Instruction::BrOnCast { .. }
            | Instruction::BrOnCastFail { .. }
            | Instruction::Throw(_)
            | Instruction::ThrowRef
            | Instruction::Rethrow(_)
            | Instruction::TryTable(..)
            | Instruction::ReturnCallRef(_) => {
                return Err(TransformError::Internal(
                    "liveness: control instruction of a refused proposal",
                ))
            }
            _ => live,
        })
    }
}

/// What [`analyze`] finds.
pub(super) struct Liveness {
    /// For each wanted `if` instruction index: the locals live right after its `if … end`.
    pub(super) after: HashMap<usize, Locals>,
    /// For each wanted `block` instruction index: the locals live right after its `block … end`.
    pub(super) after_blocks: HashMap<usize, Locals>,
    /// The locals live at the start of `code`.
    pub(super) entry: Locals,
}

/// Liveness of locals in `code` (a function body without its final `end`; `n_locals` locals in
/// all), reporting the sets after the `if` constructs in `wanted` and the `block` constructs in
/// `wanted_blocks`, and at the start. The `if` constructs in `skip` are taken to do nothing.
/// Whatever follows `code` reads no local.
pub(super) fn analyze(
    code: &[Instruction<'_>],
    n_locals: usize,
    wanted: &HashMap<usize, ()>,
    wanted_blocks: &HashMap<usize, ()>,
    skip: &HashMap<usize, ()>,
) -> Result<Liveness, TransformError> {
    let nodes = tree(code)?;
    let mut a = Analysis {
        code,
        n: n_locals,
        loop_heads: HashMap::new(),
        labels: vec![Locals::empty(n_locals)],
        wanted,
        found: HashMap::new(),
        wanted_blocks,
        found_blocks: HashMap::new(),
        skip,
    };
    let entry = a.seq(&nodes, Locals::empty(n_locals))?;
    Ok(Liveness {
        after: a.found,
        after_blocks: a.found_blocks,
        entry,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_encoder::BlockType;

    fn live(code: &[Instruction<'_>], at: usize) -> Vec<u32> {
        let wanted = HashMap::from([(at, ())]);
        analyze(code, 8, &wanted, &HashMap::new(), &HashMap::new())
            .expect("analysis")
            .after[&at]
            .iter()
            .collect()
    }

    #[test]
    fn a_local_is_live_until_its_last_read_and_dead_after_a_write() {
        use Instruction as I;
        let code = [
            I::If(BlockType::Empty), // 0: wanted
            I::End,
            I::LocalGet(1),
            I::LocalSet(2),
            I::LocalGet(2),
            I::LocalSet(3), // 3 is written, never read
            I::Drop,
        ];
        assert_eq!(live(&code, 0), vec![1]);
    }

    #[test]
    fn loops_carry_reads_around_the_back_edge_and_branches_reach_their_targets() {
        use Instruction as I;
        let code = [
            I::Block(BlockType::Empty),
            I::Loop(BlockType::Empty),
            I::If(BlockType::Empty), // 2: wanted
            I::End,
            I::LocalGet(4), // read after the back edge: live at the top of the loop
            I::BrIf(1),     // leaves the block: what follows it is live too
            I::LocalGet(5),
            I::LocalSet(4),
            I::Br(0),
            I::End,
            I::End,
            I::LocalGet(6),
            I::Drop,
        ];
        assert_eq!(live(&code, 2), vec![4, 5, 6]);
    }

    #[test]
    fn return_and_unreachable_end_every_live_range() {
        use Instruction as I;
        let code = [
            I::If(BlockType::Empty), // 0: wanted
            I::End,
            I::Return,
            I::LocalGet(1),
            I::Drop,
        ];
        assert_eq!(live(&code, 0), Vec::<u32>::new());
    }

    #[test]
    fn a_skipped_if_reads_nothing_and_block_exits_and_the_entry_are_reported() {
        use Instruction as I;
        let code = [
            I::Block(BlockType::Empty), // 0: E, a trampoline's target; wanted
            I::Loop(BlockType::Empty),
            I::GlobalGet(0),
            I::If(BlockType::Empty), // 3: the rewind dispatch: skipped, wanted
            I::LocalGet(6),          // the trampoline
            I::Br(2),
            I::End,
            I::I32Const(5),
            I::LocalSet(3), // the normal path defines 3 before it leaves the loop
            I::LocalGet(1),
            I::BrIf(0),
            I::End,
            I::End,
            I::LocalGet(3), // read after E
            I::LocalGet(0),
            I::Drop,
            I::Drop,
        ];
        let wanted = HashMap::from([(3, ())]);
        let blocks = HashMap::from([(0, ())]);
        let skip = HashMap::from([(3, ())]);
        let l = analyze(&code, 8, &wanted, &blocks, &skip).expect("analysis");
        let v = |s: &Locals| s.iter().collect::<Vec<_>>();
        assert_eq!(v(&l.after_blocks[&0]), vec![0, 3]);
        assert_eq!(v(&l.after[&3]), vec![0, 1]);
        assert_eq!(v(&l.entry), vec![0, 1]);
        // Not skipped, the dispatch carries 3 (and reads 6) around the loop.
        let l = analyze(&code, 8, &wanted, &blocks, &HashMap::new()).expect("analysis");
        assert_eq!(v(&l.after[&3]), vec![0, 1, 6]);
        assert_eq!(v(&l.entry), vec![0, 1, 3, 6]);
    }
}

//! The first step of a body rewrite: the body as a tree of constructs, with its resume points
//! (calls that may unwind, poll sites) as nodes of their own, each knowing the operand types the
//! validator saw there.

use super::super::loops::LoopPoll;
use super::super::plan::ModuleContext;
use super::super::TransformError;
use mvvm_contract::{SiteInfo, SiteKind};
use wasmparser::{
    BlockType, FuncValidator, FunctionBody, Operator, ValType, ValidatorResources,
    WasmModuleResources,
};

/// How a call resume point calls.
#[derive(Clone, Copy)]
pub(super) enum CallHow {
    /// `call f` (input index space).
    Direct(u32),
    /// `call_indirect` through `table` with type `type_index`.
    Indirect { type_index: u32, table: u32 },
}

/// A call that may unwind.
pub(super) struct CallNode {
    pub(super) how: CallHow,
    /// `return_call*` rewritten into call + return (the callee may unwind).
    pub(super) tail: bool,
    /// Its site id.
    pub(super) site: u32,
    /// The operand stack under its arguments (live across the call).
    pub(super) below: Vec<ValType>,
    /// Its arguments (and the table index of an indirect call).
    pub(super) args: Vec<ValType>,
    /// Its results.
    pub(super) results: Vec<ValType>,
}

/// A poll site: function entry, a loop header or before an import call.
pub(super) struct PollNode {
    /// Its site id.
    pub(super) site: u32,
    /// A loop header that counts in a local (see [`LoopPoll::Counted`]).
    pub(super) counted: bool,
    /// The operand stack at the poll (live across it).
    pub(super) stack: Vec<ValType>,
}

/// A `block`, `loop` or `if` and what it contains.
pub(super) struct Construct<'a> {
    /// Its opening operator.
    pub(super) op: Operator<'a>,
    /// Its block type.
    pub(super) params: Vec<ValType>,
    pub(super) results: Vec<ValType>,
    /// The operand stack under its operands (live across it).
    pub(super) below: Vec<ValType>,
    /// Its body (the then-arm of an `if`) and an `if`'s else-arm.
    pub(super) body: Vec<Node<'a>>,
    pub(super) else_body: Option<Vec<Node<'a>>>,
    /// Site ids in `[then_lo, else_lo)` are in the body, `[else_lo, hi)` in the else arm.
    pub(super) then_lo: u32,
    pub(super) else_lo: u32,
    pub(super) hi: u32,
    /// A bounded loop (no site at its header): its iteration count (see [`LoopPoll::Bounded`]).
    pub(super) bounded: Option<u32>,
}

impl Construct<'_> {
    /// Whether it contains a resume point.
    pub(super) fn resumes(&self) -> bool {
        self.hi > self.then_lo
    }
    /// Whether it is an `if`.
    pub(super) fn is_if(&self) -> bool {
        matches!(self.op, Operator::If { .. })
    }
    /// Operands the construct consumes: its parameters, plus the condition of an `if`.
    pub(super) fn operands(&self) -> Vec<ValType> {
        let mut v = self.params.clone();
        if self.is_if() {
            v.push(ValType::I32);
        }
        v
    }
}

/// One element of a sequence of the tree.
pub(super) enum Node<'a> {
    /// An instruction that is not a resume point and not structured.
    Op(Operator<'a>),
    /// A call resume point.
    Call(CallNode),
    /// A poll site.
    Poll(PollNode),
    /// A construct.
    Construct(Box<Construct<'a>>),
}

impl Node<'_> {
    /// Whether a rewind may have to enter it: it is a resume point or contains one.
    pub(super) fn resumes(&self) -> bool {
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

/// Builds the tree of one body (see [`build`]).
struct TreeBuilder<'c, 's, 'a> {
    ctx: &'c ModuleContext,
    sites: &'s mut Vec<SiteInfo>,
    func: u32,
    /// What the policy puts at each loop header, in order.
    loop_kinds: &'c [LoopPoll],
    /// How many loops have been opened so far.
    loop_ordinal: usize,
    /// The constructs opened and not yet closed, innermost last.
    open: Vec<Open<'a>>,
    /// The function body's own sequence.
    top: Vec<Node<'a>>,
}

/// Parses the body into a tree of constructs, validating as it goes and recording, at each resume
/// point, the operand types the validator knows there. `loop_kinds`: see
/// [`super::FuncIds::loops`].
pub(super) fn build<'a>(
    ctx: &ModuleContext,
    sites: &mut Vec<SiteInfo>,
    func: u32,
    body: &FunctionBody<'a>,
    loop_kinds: &[LoopPoll],
    v: &mut FuncValidator<ValidatorResources>,
) -> Result<Vec<Node<'a>>, TransformError> {
    let mut builder = TreeBuilder {
        ctx,
        sites,
        func,
        loop_kinds,
        loop_ordinal: 0,
        open: Vec::new(),
        top: Vec::new(),
    };
    if ctx.policy.function_entry {
        let site = builder.new_site(SiteKind::Entry);
        builder.top.push(Node::Poll(PollNode {
            site,
            counted: false,
            stack: vec![],
        }));
    }
    let mut reader = body.get_operators_reader()?;
    while !reader.eof() {
        let offset = reader.original_position();
        let op = reader.read()?;
        let dead = builder.open.last().is_some_and(|o| o.dead);
        let live_stack = if dead { None } else { frame_stack(v) };
        match &op {
            Operator::Block { blockty } | Operator::Loop { blockty } | Operator::If { blockty } => {
                let signature = block_sig(v, *blockty)?;
                v.op(offset, &op)?;
                builder.open_construct(op, signature, live_stack);
            }
            Operator::Else => {
                v.op(offset, &op)?;
                builder.else_arm()?;
            }
            Operator::End => {
                v.op(offset, &op)?;
                if !builder.close_construct() {
                    break; // the function's own end
                }
            }
            _ => {
                let node = builder.node(&op, live_stack)?;
                v.op(offset, &op)?;
                builder.push(node);
            }
        }
    }
    Ok(builder.top)
}

impl<'a> TreeBuilder<'_, '_, 'a> {
    /// Appends a site of `kind` to the site table; returns its id.
    fn new_site(&mut self, kind: SiteKind) -> u32 {
        self.sites.push(SiteInfo {
            func: self.func,
            kind,
            frame: Vec::new(),
        });
        (self.sites.len() - 1) as u32
    }

    /// The sequence being built: the innermost open construct's, or the function body's.
    fn push(&mut self, node: Node<'a>) {
        match self.open.last_mut() {
            Some(p) => p.body.push(node),
            None => self.top.push(node),
        }
    }

    /// Opens a `block`, `loop` or `if` of type `(params, results)`; `live_stack` is the operand
    /// stack before it (`None` in unreachable code). A loop gets the poll its policy gives it.
    fn open_construct(
        &mut self,
        op: Operator<'a>,
        (params, results): (Vec<ValType>, Vec<ValType>),
        live_stack: Option<Vec<ValType>>,
    ) {
        let operands = params.len() + usize::from(matches!(op, Operator::If { .. }));
        let below = live_stack.and_then(|s| split_below(s, operands));
        let is_loop = matches!(op, Operator::Loop { .. });
        let mut open = Open {
            op,
            params: params.clone(),
            results,
            dead: below.is_none(),
            below: below.unwrap_or_default(),
            then_lo: self.sites.len() as u32,
            body: Vec::new(),
            else_lo: None,
            then_body: None,
            bounded: None,
        };
        let ordinal = self.loop_ordinal;
        self.loop_ordinal += usize::from(is_loop);
        let kind = match is_loop {
            true => self.loop_kinds.get(ordinal).copied(),
            false => None,
        };
        if let Some(LoopPoll::Bounded(n)) = kind {
            open.bounded = Some(n);
        }
        if let Some(kind @ (LoopPoll::Counted | LoopPoll::Every)) = kind.filter(|_| !open.dead) {
            let counted = kind == LoopPoll::Counted;
            let site = self.new_site(SiteKind::LoopHeader { counted });
            open.body.push(Node::Poll(PollNode {
                site,
                counted,
                stack: params,
            }));
        }
        self.open.push(open);
    }

    /// `else`: the open `if`'s then-arm is complete.
    fn else_arm(&mut self) -> Result<(), TransformError> {
        let o = self
            .open
            .last_mut()
            .ok_or(TransformError::Internal("else outside if"))?;
        o.then_body = Some(std::mem::take(&mut o.body));
        o.else_lo = Some(self.sites.len() as u32);
        Ok(())
    }

    /// `end`: closes the innermost construct into a node of its parent. False at the function's
    /// own `end`.
    fn close_construct(&mut self) -> bool {
        let Some(o) = self.open.pop() else {
            return false;
        };
        let hi = self.sites.len() as u32;
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
        self.push(Node::Construct(Box::new(c)));
        true
    }

    /// The node of a non-structured instruction: a call resume point, or the instruction itself.
    /// An import call is preceded by a poll, pushed here.
    fn node(
        &mut self,
        op: &Operator<'a>,
        live_stack: Option<Vec<ValType>>,
    ) -> Result<Node<'a>, TransformError> {
        let Some(stack) = live_stack else {
            return Ok(Node::Op(op.clone()));
        };
        match op {
            Operator::Call { function_index: f } | Operator::ReturnCall { function_index: f } => {
                let tail = matches!(op, Operator::ReturnCall { .. });
                self.direct_call(op, *f, tail, stack)
            }
            Operator::CallIndirect {
                type_index,
                table_index,
            }
            | Operator::ReturnCallIndirect {
                type_index,
                table_index,
            } if self.ctx.type_may_unwind(*type_index) => {
                let tail = matches!(op, Operator::ReturnCallIndirect { .. });
                self.indirect_call(*type_index, *table_index, tail, stack)
            }
            _ => Ok(Node::Op(op.clone())),
        }
    }

    /// A direct call `op` of `f`, the operand stack being `stack`.
    fn direct_call(
        &mut self,
        op: &Operator<'a>,
        f: u32,
        tail: bool,
        stack: Vec<ValType>,
    ) -> Result<Node<'a>, TransformError> {
        if f < self.ctx.imported_funcs {
            // Import call: poll first, so a program about to block in WASI can be
            // checkpointed; the import itself is re-executed on restore.
            let site = self.new_site(SiteKind::Import { func: f });
            self.push(Node::Poll(PollNode {
                site,
                counted: false,
                stack,
            }));
            return Ok(Node::Op(op.clone()));
        }
        if !self.ctx.may_unwind[f as usize] {
            return Ok(Node::Op(op.clone()));
        }
        let ft = self.ctx.func_type(f);
        let args = ft.params().to_vec();
        let results = ft.results().to_vec();
        let below =
            split_below(stack, args.len()).ok_or(TransformError::Internal("call operands"))?;
        let kind = if tail {
            SiteKind::TailCall { callee: f }
        } else {
            SiteKind::Call { callee: f }
        };
        let site = self.new_site(kind);
        Ok(Node::Call(CallNode {
            how: CallHow::Direct(f),
            tail,
            site,
            below,
            args,
            results,
        }))
    }

    /// An indirect call through `table` of type `type_index`, the operand stack being `stack`.
    fn indirect_call(
        &mut self,
        type_index: u32,
        table: u32,
        tail: bool,
        stack: Vec<ValType>,
    ) -> Result<Node<'a>, TransformError> {
        let ft = self.ctx.type_at(type_index);
        let mut args = ft.params().to_vec();
        args.push(ValType::I32);
        let results = ft.results().to_vec();
        let below = split_below(stack, args.len())
            .ok_or(TransformError::Internal("call_indirect operands"))?;
        let type_id = self.ctx.canonical[type_index as usize];
        let kind = if tail {
            SiteKind::TailCallIndirect { type_id, table }
        } else {
            SiteKind::CallIndirect { type_id, table }
        };
        let site = self.new_site(kind);
        Ok(Node::Call(CallNode {
            how: CallHow::Indirect { type_index, table },
            tail,
            site,
            below,
            args,
            results,
        }))
    }
}

/// The operand types of the innermost frame, bottom first (`None` in unreachable code).
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

/// The parameter and result types of a block type.
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

/// `stack` without its top `operands` values.
fn split_below(stack: Vec<ValType>, operands: usize) -> Option<Vec<ValType>> {
    let n = stack.len().checked_sub(operands)?;
    Some(stack[..n].to_vec())
}

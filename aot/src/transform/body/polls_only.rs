//! [`super::super::Mode::PollsOnly`]: a function gets the poll sites [`super::rewrite`] would
//! give it, with the countdown code Asyncify runs fastest with, and nothing else (no spills,
//! dispatch, unwind checks, prologue or handler). Original code and labels are kept as they are;
//! each poll is a self-contained `if`.

use super::super::loops::LoopPoll;
use super::super::plan::ModuleContext;
use super::super::TransformError;
use mvvm_contract::abi::HostFunc;
use mvvm_contract::{SiteInfo, SiteKind};
use wasm_encoder::reencode::Reencode;
use wasm_encoder::BlockType as EBlockType;
use wasmparser::{FuncValidator, FunctionBody, Operator, ValidatorResources};

/// Rewrites one function for [`super::super::Mode::PollsOnly`] (see the module's docs).
///
/// The poll code is the one Asyncify runs fastest with (the baseline should not pay for choices
/// made for Cranelift): one countdown per activation for every counted loop header, and the site
/// id as a constant. The host reads `site + countdown` (`HostFunc::Poll`): the countdown is zero
/// whenever a site polls, so a constant says the same.
pub(in super::super) fn add_polls(
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
    groups.push((1, wasm_encoder::ValType::I32));
    let mut f = wasm_encoder::Function::new(groups);
    let mut writer = PollWriter {
        ctx,
        sites,
        func,
        counter: n_locals,
    };
    if ctx.policy.function_entry {
        writer.poll(&mut f, SiteKind::Entry);
    }
    let mut loop_ordinal = 0usize;
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let offset = ops.original_position();
        let op = ops.read()?;
        validator.op(offset, &op)?;
        if let Operator::Call { function_index } | Operator::ReturnCall { function_index } = op {
            if function_index < ctx.imported_funcs {
                let kind = SiteKind::Import {
                    func: function_index,
                };
                writer.poll(&mut f, kind);
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
                let counted = ctx.policy.counter_loop;
                writer.poll(&mut f, SiteKind::LoopHeader { counted });
            }
        }
    }
    Ok(f)
}

/// Writes the poll sites of one function.
struct PollWriter<'c, 's> {
    ctx: &'c ModuleContext,
    sites: &'s mut Vec<SiteInfo>,
    func: u32,
    /// The function's countdown local, appended after its declared locals.
    counter: u32,
}

impl PollWriter<'_, '_> {
    /// Appends a site of `kind` to the table and its poll to `f`.
    fn poll(&mut self, f: &mut wasm_encoder::Function, kind: SiteKind) {
        let counted = matches!(kind, SiteKind::LoopHeader { counted: true });
        self.sites.push(SiteInfo {
            func: self.func,
            kind,
            frame: Vec::new(),
        });
        let site = (self.sites.len() - 1) as i32;
        let counter = self.counter;
        if counted {
            f.instructions()
                .local_get(counter)
                .i32_const(1)
                .i32_sub()
                .local_tee(counter)
                .i32_const(0)
                .i32_le_s()
                .if_(EBlockType::Empty);
            for i in self.ctx.countdown_get() {
                f.instruction(&i);
            }
            f.instructions().local_tee(counter);
        } else {
            for i in self.ctx.countdown_get() {
                f.instruction(&i);
            }
        }
        f.instructions()
            .i32_const(0)
            .i32_le_s()
            .if_(EBlockType::Empty)
            .i32_const(site)
            .call(self.ctx.host(HostFunc::Poll))
            .end();
        if counted {
            f.instructions().end();
        }
    }
}

//! Phase 4 of the transform: the code section. Each function that can reach a site is rewritten
//! ([`body::rewrite`], or [`body::add_polls`] in [`Mode::PollsOnly`]); the others are copied with
//! their calls renumbered. The rewind clones follow the defined functions, then the poll stub.

use super::analyze::{Body, Scan};
use super::body;
use super::plan::Plan;
use super::{Mode, TransformError};
use mvvm_contract::abi::HostFunc;
use mvvm_contract::SiteInfo;
use wasm_encoder::reencode::Reencode;
use wasm_encoder::Instruction;

/// The rewritten code and what the rewrite learned.
pub(super) struct Code {
    /// The code section.
    pub(super) section: wasm_encoder::CodeSection,
    /// For each rewind clone, in order: the index of the function it was made from.
    pub(super) cloned: Vec<u32>,
    /// Branch hints of the instrumentation's own branches, by final function index (ascending:
    /// the functions, then the clones, in order).
    pub(super) hints: wasm_encoder::BranchHints,
    /// The site table.
    pub(super) sites: Vec<SiteInfo>,
}

/// Rewrites every defined function's body, in order.
pub(super) fn rewrite_bodies(
    plan: &mut Plan,
    mode: Mode,
    bodies: Vec<Body<'_>>,
    scans: &[Scan],
) -> Result<Code, TransformError> {
    let n_defined = bodies.len() as u32;
    let mut code = Code {
        section: wasm_encoder::CodeSection::new(),
        cloned: Vec::new(),
        hints: wasm_encoder::BranchHints::new(),
        sites: Vec::new(),
    };
    // Rewind clones of the instrumented functions, appended after every defined function: the
    // clone has the rewind dispatches, the function itself does not.
    let mut clones: Vec<body::Rewritten> = Vec::new();
    let mut allocations = wasmparser::FuncValidatorAllocations::default();
    for (i, (to_validate, function_body)) in bodies.into_iter().enumerate() {
        let f = plan.context.imported_funcs + i as u32;
        if !plan.context.may_unwind[f as usize] {
            plan.context
                .reencoder()
                .parse_function_body(&mut code.section, function_body)
                .map_err(TransformError::reencode)?;
            continue;
        }
        let validator = to_validate.into_validator(std::mem::take(&mut allocations));
        let loops = &scans[i].loops;
        let func = match mode {
            Mode::Checkpoint => {
                let ids = body::FuncIds {
                    func: f,
                    clone: plan.clone_index(clones.len() as u32, n_defined),
                    loops,
                };
                let Plan {
                    context,
                    block_types,
                    slots,
                    ..
                } = plan;
                let (func, clone) = body::rewrite(
                    context,
                    block_types,
                    slots,
                    &mut code.sites,
                    ids,
                    &function_body,
                    validator,
                )?;
                clones.push(clone);
                code.cloned.push(f);
                if !func.hints.is_empty() {
                    code.hints
                        .function_hints(f + plan.added_imports, func.hints);
                }
                func.func
            }
            Mode::PollsOnly => body::add_polls(
                &plan.context,
                &mut code.sites,
                f,
                &function_body,
                loops,
                validator,
            )?,
        };
        code.section.function(&func);
    }
    append_clones(plan, code, clones, n_defined)
}

/// Appends the rewind clones and, if there are any, the poll stub.
fn append_clones(
    plan: &Plan,
    mut code: Code,
    clones: Vec<body::Rewritten>,
    n_defined: u32,
) -> Result<Code, TransformError> {
    for (k, clone) in clones.iter().enumerate() {
        code.section.function(&clone.func);
        if !clone.hints.is_empty() {
            let index = plan.clone_index(k as u32, n_defined);
            code.hints
                .function_hints(index, clone.hints.iter().copied());
        }
    }
    if clones.len() as u32 != plan.n_clones {
        return Err(TransformError::Internal(
            "clone count differs from the stub's index",
        ));
    }
    if !clones.is_empty() {
        // The poll stub (see `plan`): forwards its site argument to the `poll` import.
        let mut f = wasm_encoder::Function::new([]);
        f.instruction(&Instruction::LocalGet(0));
        f.instruction(&Instruction::Call(plan.context.host(HostFunc::Poll)));
        f.instruction(&Instruction::End);
        code.section.function(&f);
    }
    Ok(code)
}

//! Phase 1 of the transform: read and validate the module, and learn what the later phases need
//! of it (types, index spaces, address-taken functions, names), then scan each body for its calls
//! and loops.

use super::loops::{self, LoopPoll};
use super::TransformError;
use mvvm_contract::abi;
use mvvm_contract::{FunctionInfo, Policy};
use std::collections::HashMap;
use wasmparser::{
    ElementSectionReader, ExportSectionReader, ExternalKind, FuncToValidate, FuncType,
    FunctionBody, GlobalSectionReader, ImportSectionReader, Operator, Parser, Payload, TypeRef,
    ValidPayload, Validator, ValidatorResources,
};

/// A defined function's body with the validator that checks it while it is rewritten.
pub(super) type Body<'a> = (FuncToValidate<ValidatorResources>, FunctionBody<'a>);

/// What the transform knows of the input module after reading it.
#[derive(Default)]
pub(super) struct Facts<'a> {
    /// Every section, in input order (phase 4 re-emits them).
    pub(super) sections: Vec<Payload<'a>>,
    /// The type section; `None` for a type that is not a function type.
    pub(super) types: Vec<Option<FuncType>>,
    /// The type index of every function, imports first.
    pub(super) func_types: Vec<u32>,
    /// Every function, as the site table will describe it.
    pub(super) functions: Vec<FunctionInfo>,
    /// Number of imported functions.
    pub(super) imported_funcs: u32,
    /// Indices of the mutable globals (exported so that an image can hold them).
    pub(super) mutable_globals: Vec<u32>,
    /// Number of globals, memories and tables, imports included.
    pub(super) n_globals: u32,
    pub(super) n_memories: u32,
    pub(super) n_tables: u32,
    /// Functions a table, an export or a `ref.func` can name, sorted and deduplicated.
    pub(super) address_taken: Vec<u32>,
    /// The start function.
    pub(super) start: Option<u32>,
    /// For each type, the first type index structurally equal to it.
    pub(super) canonical: Vec<u32>,
}

/// What [`scan_bodies`] learns about one defined function.
#[derive(Default)]
pub(super) struct Scan {
    /// Defined functions it calls or tail-calls.
    pub(super) callees: Vec<u32>,
    /// Type indices of its indirect calls.
    pub(super) indirect_types: Vec<u32>,
    /// What the policy puts at each of its loop headers, in order.
    pub(super) loops: Vec<LoopPoll>,
    /// Whether it calls an import.
    pub(super) calls_import: bool,
}

/// Reads and validates `wasm`: its facts and its defined functions' bodies.
pub(super) fn read_module(wasm: &[u8]) -> Result<(Facts<'_>, Vec<Body<'_>>), TransformError> {
    let mut validator = Validator::new_with_features(super::supported_features());
    let mut facts = Facts::default();
    let mut bodies = Vec::new();
    let mut names: HashMap<u32, String> = HashMap::new();
    for payload in Parser::new(0).parse_all(wasm) {
        let payload = payload?;
        match validator.payload(&payload)? {
            ValidPayload::Func(f, b) => bodies.push((f, b)),
            ValidPayload::End(_) | ValidPayload::Ok | ValidPayload::Parser(_) => {}
        }
        facts.learn(&payload, &mut names)?;
        facts.sections.push(payload);
    }
    facts.canonical = (0..facts.types.len())
        .map(|t| {
            (0..t)
                .find(|u| facts.types[*u].is_some() && facts.types[*u] == facts.types[t])
                .unwrap_or(t) as u32
        })
        .collect();
    for (i, f) in facts.functions.iter_mut().enumerate() {
        if let Some(n) = names.get(&(i as u32)) {
            f.name = Some(n.clone());
        }
        f.type_id = facts
            .canonical
            .get(f.type_id as usize)
            .copied()
            .unwrap_or(f.type_id);
    }
    facts.address_taken.sort_unstable();
    facts.address_taken.dedup();
    Ok((facts, bodies))
}

impl Facts<'_> {
    /// Learns what one section says.
    fn learn(
        &mut self,
        payload: &Payload<'_>,
        names: &mut HashMap<u32, String>,
    ) -> Result<(), TransformError> {
        match payload {
            Payload::TypeSection(r) => {
                for group in r.clone().into_iter_err_on_gc_types() {
                    self.types.push(Some(group?));
                }
            }
            Payload::ImportSection(r) => self.imports(r)?,
            Payload::FunctionSection(r) => {
                for t in r.clone() {
                    let t = t?;
                    self.func_types.push(t);
                    self.functions.push(FunctionInfo {
                        name: None,
                        imported: false,
                        instrumented: false,
                        type_id: t,
                    });
                }
            }
            Payload::TableSection(r) => self.n_tables += r.count(),
            Payload::MemorySection(r) => self.n_memories += r.count(),
            Payload::GlobalSection(r) => self.globals(r)?,
            Payload::ExportSection(r) => self.exports(r)?,
            Payload::StartSection { func, .. } => self.start = Some(*func),
            Payload::ElementSection(r) => self.elements(r)?,
            Payload::CustomSection(c) => {
                if let wasmparser::KnownCustom::Name(r) = c.as_known() {
                    for sub in r {
                        if let Ok(wasmparser::Name::Function(map)) = sub {
                            for n in map.into_iter().flatten() {
                                names.insert(n.index, n.name.to_string());
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn imports(&mut self, r: &ImportSectionReader<'_>) -> Result<(), TransformError> {
        for imp in r.clone().into_imports() {
            let imp = imp?;
            if imp.module == abi::IMPORT_MODULE {
                return Err(TransformError::Reserved(format!(
                    "{}.{}",
                    imp.module, imp.name
                )));
            }
            match imp.ty {
                // wasmtime cannot compile exact imports yet: refuse them here, like the other
                // proposals, rather than fail later at precompilation.
                TypeRef::FuncExact(_) => {
                    return Err(TransformError::Unsupported {
                        proposal: "custom descriptors",
                        detail: format!("exact function import {}.{}", imp.module, imp.name),
                    })
                }
                TypeRef::Func(t) => {
                    self.func_types.push(t);
                    self.functions.push(FunctionInfo {
                        name: Some(format!("{}.{}", imp.module, imp.name)),
                        imported: true,
                        instrumented: false,
                        type_id: t,
                    });
                    self.imported_funcs += 1;
                }
                TypeRef::Global(g) => {
                    if g.mutable {
                        self.mutable_globals.push(self.n_globals);
                    }
                    self.n_globals += 1;
                }
                TypeRef::Memory(_) => self.n_memories += 1,
                TypeRef::Table(_) => self.n_tables += 1,
                TypeRef::Tag(_) => {
                    return Err(TransformError::Unsupported {
                        proposal: "exception handling",
                        detail: "imports a tag".into(),
                    })
                }
            }
        }
        Ok(())
    }

    fn globals(&mut self, r: &GlobalSectionReader<'_>) -> Result<(), TransformError> {
        for g in r.clone() {
            let g = g?;
            if g.ty.mutable {
                self.mutable_globals.push(self.n_globals);
            }
            for op in g.init_expr.get_operators_reader() {
                if let Operator::RefFunc { function_index } = op? {
                    self.address_taken.push(function_index);
                }
            }
            self.n_globals += 1;
        }
        Ok(())
    }

    fn exports(&mut self, r: &ExportSectionReader<'_>) -> Result<(), TransformError> {
        for e in r.clone() {
            let e = e?;
            if e.name.starts_with(abi::RESERVED_PREFIX) {
                return Err(TransformError::Reserved(e.name.to_string()));
            }
            if e.kind == ExternalKind::Func {
                self.address_taken.push(e.index);
            }
        }
        Ok(())
    }

    fn elements(&mut self, r: &ElementSectionReader<'_>) -> Result<(), TransformError> {
        for el in r.clone() {
            match el?.items {
                wasmparser::ElementItems::Functions(fs) => {
                    for f in fs {
                        self.address_taken.push(f?);
                    }
                }
                wasmparser::ElementItems::Expressions(_, es) => {
                    for e in es {
                        for op in e?.get_operators_reader() {
                            if let Operator::RefFunc { function_index } = op? {
                                self.address_taken.push(function_index);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

/// Scans every body for its calls and loops; a `ref.func` in a body makes its function
/// address-taken too.
pub(super) fn scan_bodies(
    facts: &mut Facts<'_>,
    bodies: &[Body<'_>],
    policy: &Policy,
) -> Result<Vec<Scan>, TransformError> {
    let mut scans = Vec::with_capacity(bodies.len());
    for (_, body) in bodies {
        let mut s = Scan::default();
        for op in body.get_operators_reader()? {
            match op? {
                Operator::Call { function_index } | Operator::ReturnCall { function_index } => {
                    if function_index < facts.imported_funcs {
                        s.calls_import = true;
                    } else {
                        s.callees.push(function_index);
                    }
                }
                Operator::CallIndirect { type_index, .. }
                | Operator::ReturnCallIndirect { type_index, .. } => {
                    s.indirect_types.push(type_index)
                }
                Operator::RefFunc { function_index } => facts.address_taken.push(function_index),
                _ => {}
            }
        }
        s.loops = loops::loop_polls(policy, body)?;
        scans.push(s);
    }
    facts.address_taken.sort_unstable();
    facts.address_taken.dedup();
    Ok(scans)
}

//! ISA-neutral snapshots of a paused mvvm instance.
//!
//! A [`Snapshot`] is a pure wasm-level object: linear memories, mutable globals, tables as function
//! indices, and the typed wasm call stack the instrumented module unwound into the host
//! ([`Frame`]s). Nothing in it depends on the ISA it was taken on. [`capture`] reads one from an
//! instance whose guest has just finished unwinding.
//!
//! [`Image`] is a snapshot on disk: the format is versioned and documented in `checkpoint/FORMAT.md`.

pub mod image;
pub mod wasi;

pub use image::{Image, ImageError};
pub use wasi::{Counters, FdEntry, OpenFile, Preopen, WasiState};

use mvvm_contract::abi;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use wasmtime::{AsContextMut, Func, Instance, Ref, Val};

/// One wasm value in a frame, global or table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Value {
    /// `i32`
    I32(i32),
    /// `i64`
    I64(i64),
    /// `f32` bit pattern.
    F32(u32),
    /// `f64` bit pattern.
    F64(u64),
    /// `v128`
    V128(u128),
    /// `funcref`: an index in the original module's function index space, or null.
    FuncRef(Option<u32>),
    /// A null `externref` (non-null externrefs cannot be checkpointed).
    NullExternRef,
}

/// One unwound wasm frame.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The function (original function index space).
    pub func: u32,
    /// The site the frame is stopped at (index into the module's site table).
    pub site: u32,
    /// Every local of the instrumented function, in index order.
    pub slots: Vec<Value>,
}

/// A linear memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryImage {
    /// Memory index.
    pub index: u32,
    /// Contents; its length is a whole number of 64 KiB pages.
    pub bytes: Vec<u8>,
}

/// A table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableImage {
    /// Table index.
    pub index: u32,
    /// Every element.
    pub elements: Vec<Value>,
}

/// Everything needed to resume an instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// SHA-256 of the instrumented module it belongs to.
    pub module_hash: [u8; 32],
    /// The export that was running (`_start` for commands).
    pub entry: String,
    /// Frames, innermost first (the order they were unwound in).
    pub frames: Vec<Frame>,
    /// Every memory.
    pub memories: Vec<MemoryImage>,
    /// Every mutable global, by original global index.
    pub globals: Vec<(u32, Value)>,
    /// Every table.
    pub tables: Vec<TableImage>,
    /// WASI state, filled in by the runtime (`None` for snapshots of bare instances, e.g. the
    /// referee's, which resume with the resuming side's configuration).
    pub wasi: Option<WasiState>,
    /// Trigger progress.
    pub counters: Counters,
}

/// Why a snapshot could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// A non-null externref is live; host objects cannot be written to an image.
    #[error("a non-null externref is live in {0}; host references cannot be checkpointed")]
    ExternRef(String),
    /// A funcref refers to a function the transform did not export.
    #[error("a funcref in {0} refers to a function that is not address-taken in the module")]
    UnknownFunc(String),
    /// An export the transform adds is missing: the module was not built by mvvm-aot.
    #[error("the module lacks mvvm export {0}; was it built with mvvm-aot?")]
    MissingExport(String),
}

/// Maps `funcref` values of an instance to function indices and back, through the
/// `mvvm:func:N` exports.
pub struct FuncMap {
    by_raw: HashMap<usize, u32>,
    by_index: HashMap<u32, Func>,
}

impl FuncMap {
    /// Builds the map from the instance's `mvvm:func:N` exports.
    pub fn new(mut store: impl AsContextMut, instance: &Instance) -> FuncMap {
        let mut by_raw = HashMap::new();
        let mut by_index = HashMap::new();
        let exports: Vec<(String, Func)> = instance
            .exports(&mut store)
            .filter_map(|e| {
                let name = e.name().to_string();
                e.into_func().map(|f| (name, f))
            })
            .collect();
        let prefix = abi::export_func(0);
        let prefix = &prefix[..prefix.len() - 1];
        for (name, f) in exports {
            if let Some(Ok(i)) = name.strip_prefix(prefix).map(str::parse::<u32>) {
                by_raw.insert(f.to_raw(&mut store) as usize, i);
                by_index.insert(i, f);
            }
        }
        FuncMap { by_raw, by_index }
    }

    /// The index of a function, if it is address-taken.
    pub fn index_of(&self, mut store: impl AsContextMut, f: &Func) -> Option<u32> {
        self.by_raw.get(&(f.to_raw(&mut store) as usize)).copied()
    }

    /// The function with an index.
    pub fn func(&self, index: u32) -> Option<Func> {
        self.by_index.get(&index).cloned()
    }
}

/// Converts a wasmtime value into a [`Value`]; `what` names it in errors.
pub fn value_of(
    mut store: impl AsContextMut,
    funcs: &FuncMap,
    v: &Val,
    what: &str,
) -> Result<Value, CaptureError> {
    Ok(match v {
        Val::I32(x) => Value::I32(*x),
        Val::I64(x) => Value::I64(*x),
        Val::F32(x) => Value::F32(*x),
        Val::F64(x) => Value::F64(*x),
        Val::V128(x) => Value::V128(x.as_u128()),
        Val::FuncRef(None) => Value::FuncRef(None),
        Val::FuncRef(Some(f)) => Value::FuncRef(Some(
            funcs
                .index_of(&mut store, f)
                .ok_or_else(|| CaptureError::UnknownFunc(what.into()))?,
        )),
        Val::ExternRef(None) => Value::NullExternRef,
        _ => return Err(CaptureError::ExternRef(what.into())),
    })
}

fn ref_value(
    store: impl AsContextMut,
    funcs: &FuncMap,
    r: Ref,
    what: &str,
) -> Result<Value, CaptureError> {
    match r {
        Ref::Func(f) => value_of(store, funcs, &Val::FuncRef(f), what),
        Ref::Extern(None) => Ok(Value::NullExternRef),
        _ => Err(CaptureError::ExternRef(what.into())),
    }
}

/// Captures memories, globals and tables of `instance`; `frames` are the frames the guest unwound.
pub fn capture(
    mut store: impl AsContextMut,
    instance: &Instance,
    module_hash: [u8; 32],
    entry: &str,
    frames: Vec<Frame>,
) -> Result<Snapshot, CaptureError> {
    let funcs = FuncMap::new(&mut store, instance);
    let mut memories = Vec::new();
    let mut globals = Vec::new();
    let mut tables = Vec::new();
    let exports: Vec<(String, wasmtime::Extern)> = instance
        .exports(&mut store)
        .map(|e| (e.name().to_string(), e.into_extern()))
        .collect();
    for (name, ext) in exports {
        let Some(rest) = name.strip_prefix(abi::RESERVED_PREFIX) else {
            continue;
        };
        let mut parts = rest.splitn(2, ':');
        let (kind, idx) = (
            parts.next(),
            parts.next().and_then(|i| i.parse::<u32>().ok()),
        );
        match (kind, idx, ext) {
            (Some("memory"), Some(index), wasmtime::Extern::Memory(m)) => {
                memories.push(MemoryImage {
                    index,
                    bytes: m.data(&store).to_vec(),
                })
            }
            (Some("global"), Some(index), wasmtime::Extern::Global(g)) => {
                let v = g.get(&mut store);
                globals.push((index, value_of(&mut store, &funcs, &v, &name)?));
            }
            (Some("table"), Some(index), wasmtime::Extern::Table(t)) => {
                let size = t.size(&store);
                let mut elements = Vec::with_capacity(size as usize);
                for i in 0..size {
                    let r = t.get(&mut store, i).unwrap_or(Ref::Func(None));
                    elements.push(ref_value(&mut store, &funcs, r, &name)?);
                }
                tables.push(TableImage { index, elements });
            }
            _ => {}
        }
    }
    memories.sort_by_key(|m| m.index);
    globals.sort_by_key(|g| g.0);
    tables.sort_by_key(|t| t.index);
    Ok(Snapshot {
        module_hash,
        entry: entry.to_string(),
        frames,
        memories,
        globals,
        tables,
        wasi: None,
        counters: Counters::default(),
    })
}

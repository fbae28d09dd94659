//! Rebuilding an instance from a [`Snapshot`] on any target.
//!
//! [`apply`] writes memories, globals and tables into a freshly instantiated instrumented module.
//! The caller then hands the snapshot's frames to the runtime's host functions, sets the guest's
//! state to [`State::Rewinding`](mvvm_contract::abi::State) and calls the snapshot's entry export: every
//! instrumented frame reloads itself and jumps back to its site.

use mvvm_checkpoint::{FuncMap, Snapshot, Value};
use mvvm_contract::abi;
use wasmtime::{AsContextMut, Instance, Ref, Val};

/// Why a snapshot could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot was taken from another module.
    #[error("the image belongs to another module (hash {image}, this module {module}); restore it with the .aot it was taken from")]
    ModuleMismatch {
        /// Hash in the image.
        image: String,
        /// Hash of the module.
        module: String,
    },
    /// The module does not have something the snapshot refers to.
    #[error("the image refers to {0}, which this module does not export; was it taken from another build?")]
    Missing(String),
    /// A value does not fit where it goes.
    #[error("cannot restore {0}: {1}")]
    Value(String, String),
}

fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// Converts a [`Value`] back into a wasmtime value.
pub fn to_val(funcs: &FuncMap, v: &Value, what: &str) -> Result<Val, RestoreError> {
    Ok(match v {
        Value::I32(x) => Val::I32(*x),
        Value::I64(x) => Val::I64(*x),
        Value::F32(x) => Val::F32(*x),
        Value::F64(x) => Val::F64(*x),
        Value::V128(x) => Val::V128((*x).into()),
        Value::FuncRef(None) => Val::FuncRef(None),
        Value::FuncRef(Some(i)) => Val::FuncRef(Some(funcs.func(*i).ok_or_else(|| {
            RestoreError::Value(
                what.into(),
                format!("function {i} is not address-taken in this module"),
            )
        })?)),
        Value::NullExternRef => Val::ExternRef(None),
    })
}

/// Whether `snap` was taken from the module whose hash is `module_hash`.
pub fn check_module(module_hash: [u8; 32], snap: &Snapshot) -> Result<(), RestoreError> {
    if snap.module_hash != module_hash {
        return Err(RestoreError::ModuleMismatch {
            image: hex(&snap.module_hash),
            module: hex(&module_hash),
        });
    }
    Ok(())
}

/// Writes the snapshot's memories, globals and tables into `instance`.
pub fn apply(
    mut store: impl AsContextMut,
    instance: &Instance,
    module_hash: [u8; 32],
    snap: &Snapshot,
) -> Result<(), RestoreError> {
    check_module(module_hash, snap)?;
    let funcs = FuncMap::new(&mut store, instance);
    for m in &snap.memories {
        let name = abi::export_memory(m.index);
        let mem = instance
            .get_memory(&mut store, &name)
            .ok_or_else(|| RestoreError::Missing(name.clone()))?;
        let have = mem.data_size(&store);
        if m.bytes.len() > have {
            let pages = ((m.bytes.len() - have) as u64).div_ceil(65536);
            mem.grow(&mut store, pages).map_err(|e| {
                RestoreError::Value(name.clone(), format!("cannot grow memory: {e}"))
            })?;
        }
        let data = mem.data_mut(&mut store);
        data[..m.bytes.len()].copy_from_slice(&m.bytes);
        data[m.bytes.len()..].fill(0);
    }
    for (index, v) in &snap.globals {
        let name = abi::export_global(*index);
        let g = instance
            .get_global(&mut store, &name)
            .ok_or_else(|| RestoreError::Missing(name.clone()))?;
        let val = to_val(&funcs, v, &name)?;
        g.set(&mut store, val)
            .map_err(|e| RestoreError::Value(name.clone(), e.to_string()))?;
    }
    for t in &snap.tables {
        let name = abi::export_table(t.index);
        let table = instance
            .get_table(&mut store, &name)
            .ok_or_else(|| RestoreError::Missing(name.clone()))?;
        let size = table.size(&store);
        let want = t.elements.len() as u64;
        let null = |v: &Value| match v {
            Value::NullExternRef => Ref::Extern(None),
            _ => Ref::Func(None),
        };
        if want > size {
            let init = t.elements.first().map(null).unwrap_or(Ref::Func(None));
            table.grow(&mut store, want - size, init).map_err(|e| {
                RestoreError::Value(name.clone(), format!("cannot grow table: {e}"))
            })?;
        }
        for (i, v) in t.elements.iter().enumerate() {
            let r = match to_val(&funcs, v, &name)? {
                Val::FuncRef(f) => Ref::Func(f),
                Val::ExternRef(_) => Ref::Extern(None),
                _ => {
                    return Err(RestoreError::Value(
                        name.clone(),
                        "non-reference in a table".into(),
                    ))
                }
            };
            table
                .set(&mut store, i as u64, r)
                .map_err(|e| RestoreError::Value(name.clone(), e.to_string()))?;
        }
    }
    Ok(())
}

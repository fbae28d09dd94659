//! What a guest's trap is reported as: the trap and a wasm backtrace in the original module's
//! function indices and names, so that an index copied from it can be given to `-f`.

use mvvm_contract::info::FunctionOrigin;
use mvvm_contract::ModuleInfo;
use std::fmt::Write as _;

/// The message of a run that ended in `e`: for a wasm trap, the trap and its backtrace with the
/// instrumented module's function indices mapped back to `info`'s; anything else as it is.
pub(crate) fn describe(e: &wasmtime::Error, info: &ModuleInfo) -> String {
    let (Some(trap), Some(trace)) = (
        e.downcast_ref::<wasmtime::Trap>(),
        e.downcast_ref::<wasmtime::WasmBacktrace>(),
    ) else {
        return format!("{e:?}");
    };
    let mut out = format!("{trap}\nwasm backtrace (function indices of the original module):");
    for (i, frame) in trace.frames().iter().enumerate() {
        let _ = write!(out, "\n  {i:>4}: {}", frame_name(frame.func_index(), info));
    }
    out
}

/// `function N name`, with what the transform made of it where that matters.
fn frame_name(instrumented: u32, info: &ModuleInfo) -> String {
    let named = |n: u32| match info
        .functions
        .get(n as usize)
        .and_then(|f| f.name.as_deref())
    {
        Some(name) => format!("function {n} {name}"),
        None => format!("function {n}"),
    };
    match info.function_origin(instrumented) {
        FunctionOrigin::Original(n) => named(n),
        FunctionOrigin::RewindClone(n) => format!("{} (resumed: in its rewind clone)", named(n)),
        FunctionOrigin::Runtime => {
            format!("mvvm's own code (instrumented function {instrumented})")
        }
    }
}

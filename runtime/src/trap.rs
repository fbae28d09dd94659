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
    let mut out = format!("{trap}{BACKTRACE}");
    for (i, frame) in stack(trace, info).iter().enumerate() {
        let _ = write!(out, "\n  {i:>4}: {frame}");
    }
    out
}

/// What [`describe`] puts between a trap and its frames.
const BACKTRACE: &str = "\nwasm backtrace (function indices of the original module):";

/// A message of [`describe`] taken apart: the trap, and the frames of its backtrace.
pub(crate) fn undescribe(message: &str) -> (String, Vec<String>) {
    match message.split_once(BACKTRACE) {
        Some((trap, frames)) => (
            trap.to_string(),
            frames
                .lines()
                .filter_map(|l| l.split_once(": ").map(|(_, frame)| frame.to_string()))
                .collect(),
        ),
        None => (message.to_string(), Vec::new()),
    }
}

/// The frames of `trace`, innermost first, each as [`frame_name`] names it.
pub(crate) fn stack(trace: &wasmtime::WasmBacktrace, info: &ModuleInfo) -> Vec<String> {
    trace
        .frames()
        .iter()
        .map(|frame| frame_name(frame.func_index(), info))
        .collect()
}

/// `function N name` for function `n` of the original module.
pub(crate) fn original_name(n: u32, info: &ModuleInfo) -> String {
    match info
        .functions
        .get(n as usize)
        .and_then(|f| f.name.as_deref())
    {
        Some(name) => format!("function {n} {name}"),
        None => format!("function {n}"),
    }
}

/// `function N name` for function `instrumented` of the instrumented module, with what the
/// transform made of it where that matters.
fn frame_name(instrumented: u32, info: &ModuleInfo) -> String {
    let named = |n: u32| original_name(n, info);
    match info.function_origin(instrumented) {
        FunctionOrigin::Original(n) => named(n),
        FunctionOrigin::RewindClone(n) => format!("{} (resumed: in its rewind clone)", named(n)),
        FunctionOrigin::Runtime => {
            format!("mvvm's own code (instrumented function {instrumented})")
        }
    }
}

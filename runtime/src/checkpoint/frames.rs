//! Checking an image's call stack against the module before anything runs: a frame that does not
//! fit the module's site table is bad input, reported before the program is instantiated, not a
//! trap in the middle of a rewind.

use mvvm_checkpoint::{Frame, Value};
use mvvm_contract::abi::SlotType;
use mvvm_contract::{ModuleInfo, SiteKind};

/// Why a call stack does not fit a module: one sentence naming the frame (innermost is #0).
pub fn check_frames(info: &ModuleInfo, frames: &[Frame]) -> Result<(), String> {
    if frames.is_empty() {
        return Err("the image has no frames".into());
    }
    for (depth, frame) in frames.iter().enumerate() {
        check_frame(info, depth, frame).map_err(|why| {
            format!(
                "frame #{depth} (function {}, site {}) {why}; the image does not match this module",
                frame.func, frame.site
            )
        })?;
    }
    Ok(())
}

fn check_frame(info: &ModuleInfo, depth: usize, frame: &Frame) -> Result<(), String> {
    let function = info.functions.get(frame.func as usize).ok_or_else(|| {
        format!(
            "names a function the module lacks ({} functions)",
            info.functions.len()
        )
    })?;
    if !function.instrumented {
        return Err("is in a function that cannot unwind".into());
    }
    let site = info
        .sites
        .get(frame.site as usize)
        .ok_or_else(|| format!("names a site the module lacks ({} sites)", info.sites.len()))?;
    if site.func != frame.func {
        return Err(format!("names a site of function {}", site.func));
    }
    // The innermost frame stopped where the program polled; every other frame at a call it made.
    let polls = matches!(
        site.kind,
        SiteKind::Entry | SiteKind::LoopHeader { .. } | SiteKind::Import { .. }
    );
    let calls = matches!(
        site.kind,
        SiteKind::Call { .. } | SiteKind::CallIndirect { .. }
    );
    match (depth == 0, polls, calls) {
        (true, true, _) | (false, _, true) => {}
        (true, _, _) => return Err("stopped at a site that is not a poll".into()),
        (false, _, _) => return Err("stopped at a site that is not a call".into()),
    }
    if frame.slots.len() != site.frame.len() {
        return Err(format!(
            "holds {} values where the site saves {}",
            frame.slots.len(),
            site.frame.len()
        ));
    }
    for (value, slot) in frame.slots.iter().zip(&site.frame) {
        let t = info
            .slots
            .get(*slot as usize)
            .ok_or_else(|| format!("uses slot {slot}, which the module lacks"))?;
        if !fits(value, *t) {
            return Err(format!("holds {value:?} where the site saves a {t:?}"));
        }
    }
    Ok(())
}

/// Whether `value` is a value of slot type `t`.
fn fits(value: &Value, t: SlotType) -> bool {
    matches!(
        (t, value),
        (SlotType::I32, Value::I32(_))
            | (SlotType::I64, Value::I64(_))
            | (SlotType::F32, Value::F32(_))
            | (SlotType::F64, Value::F64(_))
            | (SlotType::V128, Value::V128(_))
            | (SlotType::FuncRef, Value::FuncRef(_))
            | (SlotType::ExternRef, Value::NullExternRef)
    )
}

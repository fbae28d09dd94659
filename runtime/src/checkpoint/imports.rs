//! The `mvvm.*` host functions an instrumented module imports.
//!
//! While the guest unwinds, `save_frame` builds [`Frame`]s innermost first, reading each frame's
//! slots from the frame slot globals; while it rewinds, `restore_frame` hands them back outermost
//! first, writing the slots into those globals. `poll` is where triggers fire.

use super::{countdown, HasCheckpointState};
use mvvm_checkpoint::{Frame, Value};
use mvvm_contract::abi::{self, HostFunc, SlotType, State};
use mvvm_contract::SiteKind;
use wasmtime::{Caller, Extern, Linker, Val, V128};

/// Defines every `mvvm.*` import in `linker`.
pub fn add_to_linker<T: HasCheckpointState>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let m = abi::IMPORT_MODULE;
    linker.func_wrap(m, HostFunc::Poll.name(), poll::<T>)?;
    linker.func_wrap(m, HostFunc::SaveFrame.name(), save_frame::<T>)?;
    linker.func_wrap(m, HostFunc::RestoreFrame.name(), restore_frame::<T>)?;
    linker.func_wrap(
        m,
        HostFunc::RewindIndex.name(),
        |mut c: Caller<'_, T>, site: i32, saved: i32| rewind_index(&mut c, site as u32, saved),
    )?;
    Ok(())
}

/// `mvvm.poll(site + countdown)`: a site's countdown ran out. Ends a rewind at its innermost
/// site, or counts the poll and starts an unwind when a trigger fires.
fn poll<T: HasCheckpointState>(mut c: Caller<'_, T>, arg: i32) -> wasmtime::Result<()> {
    // The guest passes `site + mvvm:countdown` (see `HostFunc::Poll`).
    let site = arg.wrapping_sub(countdown::get(&mut c)?);
    match guest_state(&mut c)? {
        State::Rewinding => {
            // The innermost frame is back at its site: the rewind is complete.
            let ck = c.data_mut().checkpoint_state_mut();
            if !ck.rewinding.is_empty() {
                wasmtime::bail!(
                    "rewind reached site {site} with {} frames left over",
                    ck.rewinding.len()
                );
            }
            ck.rewound_at = Some(std::time::Instant::now());
            let patches = std::mem::take(&mut ck.patches);
            let cd = ck.countdown();
            for (t, i, old) in patches.into_iter().rev() {
                t.set(&mut c, i, old)?;
            }
            set_i32(&mut c, abi::EXPORT_STATE, State::Normal as i32)?;
            countdown::set(&mut c, cd)?;
        }
        State::Normal => {
            let ck = c.data_mut().checkpoint_state_mut();
            let fire = !ck.suspended && ck.fires(site as u32);
            let cd = ck.countdown();
            countdown::set(&mut c, cd)?;
            if fire {
                spdlog::debug!("checkpoint requested at site {site}");
                c.data_mut().checkpoint_state_mut().unwound.clear();
                set_i32(&mut c, abi::EXPORT_STATE, State::Unwinding as i32)?;
            }
        }
        State::Unwinding => wasmtime::bail!("site {site} polled while unwinding"),
    }
    Ok(())
}

/// `mvvm.save_frame(func, site + 1)`: records the frame of `func` stopped at `site`, its slots
/// read from the slot globals the guest has just filled.
fn save_frame<T: HasCheckpointState>(
    mut c: Caller<'_, T>,
    func: i32,
    site1: i32,
) -> wasmtime::Result<()> {
    let site = (site1 as u32).wrapping_sub(1);
    let layout = c.data().checkpoint_state().frame_layout(site)?;
    let mut slots = Vec::with_capacity(layout.len());
    for (t, g) in layout {
        slots.push(read_slot(&mut c, t, g)?);
    }
    c.data_mut().checkpoint_state_mut().unwound.push(Frame {
        func: func as u32,
        site,
        slots,
    });
    Ok(())
}

/// `mvvm.restore_frame(func) -> site + 1`: the prologue of rewinding `func` asks where to go.
/// Its own frame is next: its slots go into the slot globals and it resumes at its site. Another
/// function's frame is next: `func` tail-called its way there, so it re-issues the first tail
/// call on that path.
fn restore_frame<T: HasCheckpointState>(mut c: Caller<'_, T>, func: i32) -> wasmtime::Result<i32> {
    let func = func as u32;
    let ck = c.data_mut().checkpoint_state_mut();
    let Some(top) = ck.rewinding.last().map(|f| f.func) else {
        wasmtime::bail!("function {func} is rewinding but the image has no frame left");
    };
    if top != func {
        // Each hop is the first of a shortest path, so a frame is reached within as many hops as
        // the module has functions; more means the rewind goes round in circles.
        ck.tail_hops += 1;
        if ck.tail_hops > ck.info.functions.len() {
            wasmtime::bail!("rewinding towards function {top}'s frame took more tail calls than the module has functions; the rewind does not progress");
        }
        return match ck.tail_graph().first_hop(func, top) {
            Some((site, callee)) => {
                ck.tail_target = Some(callee);
                Ok(site as i32 + 1)
            }
            None => wasmtime::bail!("image frame belongs to function {top} but function {func} is rewinding and cannot tail-call its way there; the image does not match this module"),
        };
    }
    let frame = ck.rewinding.pop().expect("checked above");
    ck.tail_hops = 0;
    // A frame stops at a poll or a non-tail call of its own function; the prologue's dispatch
    // knows no other site.
    let resumable = ck.info.sites.get(frame.site as usize).is_some_and(|s| {
        s.func == func
            && !matches!(
                s.kind,
                SiteKind::TailCall { .. } | SiteKind::TailCallIndirect { .. }
            )
    });
    if !resumable {
        wasmtime::bail!("image frame of function {func} names site {}, which is not in that function or is a tail call site, where no frame stops; the image does not match this module", frame.site);
    }
    let layout = ck.frame_layout(frame.site)?;
    if layout.len() != frame.slots.len() {
        wasmtime::bail!("image frame of function {func} has {} slots where the module's site {} has {}; the image does not match this module", frame.slots.len(), frame.site, layout.len());
    }
    for ((t, g), v) in layout.into_iter().zip(&frame.slots) {
        let v = slot_val(&c, t, v)?;
        g.set(&mut c, v)?;
    }
    Ok(frame.site as i32 + 1)
}

fn global<T: HasCheckpointState>(
    caller: &mut Caller<'_, T>,
    name: &str,
) -> wasmtime::Result<wasmtime::Global> {
    // The state global, which every poll touches, is looked up once, at instantiation.
    let cached = match name {
        abi::EXPORT_STATE => caller.data().checkpoint_state().state_global,
        _ => None,
    };
    if let Some(g) = cached {
        return Ok(g);
    }
    match caller.get_export(name) {
        Some(Extern::Global(g)) => Ok(g),
        _ => wasmtime::bail!("instrumented module lacks export {name}"),
    }
}

/// Reads the guest's state global.
fn guest_state<T: HasCheckpointState>(caller: &mut Caller<'_, T>) -> wasmtime::Result<State> {
    let v = global(caller, abi::EXPORT_STATE)?.get(&mut *caller);
    v.i32()
        .and_then(State::from_i32)
        .ok_or_else(|| wasmtime::format_err!("guest state global holds {v:?}"))
}

fn set_i32<T: HasCheckpointState>(
    caller: &mut Caller<'_, T>,
    name: &str,
    v: i32,
) -> wasmtime::Result<()> {
    global(caller, name)?.set(&mut *caller, Val::I32(v))
}

/// Reads a frame slot global (`save_frame`).
fn read_slot<T: HasCheckpointState>(
    c: &mut Caller<'_, T>,
    t: SlotType,
    g: wasmtime::Global,
) -> wasmtime::Result<Value> {
    Ok(match (t, g.get(&mut *c)) {
        (SlotType::I32, Val::I32(v)) => Value::I32(v),
        (SlotType::I64, Val::I64(v)) => Value::I64(v),
        (SlotType::F32, Val::F32(v)) => Value::F32(v),
        (SlotType::F64, Val::F64(v)) => Value::F64(v),
        (SlotType::V128, Val::V128(v)) => Value::V128(v.as_u128()),
        (SlotType::FuncRef, Val::FuncRef(None)) => Value::FuncRef(None),
        (SlotType::FuncRef, Val::FuncRef(Some(f))) => {
            let funcs = c.data().checkpoint_state().funcs();
            match funcs.and_then(|m| m.index_of(&mut *c, &f)) {
                Some(i) => Value::FuncRef(Some(i)),
                None => {
                    wasmtime::bail!("a live funcref refers to a function that is not address-taken")
                }
            }
        }
        (SlotType::ExternRef, Val::ExternRef(None)) => Value::NullExternRef,
        (SlotType::ExternRef, Val::ExternRef(Some(_))) => {
            wasmtime::bail!("a non-null externref is live; host references cannot be checkpointed")
        }
        (t, v) => wasmtime::bail!("slot global of type {t:?} holds {v:?}"),
    })
}

/// The value an image slot puts in a frame slot global of type `t` (`restore_frame`).
fn slot_val<T: HasCheckpointState>(
    c: &Caller<'_, T>,
    t: SlotType,
    v: &Value,
) -> wasmtime::Result<Val> {
    Ok(match (t, v) {
        (SlotType::I32, Value::I32(v)) => Val::I32(*v),
        (SlotType::I64, Value::I64(v)) => Val::I64(*v),
        (SlotType::F32, Value::F32(v)) => Val::F32(*v),
        (SlotType::F64, Value::F64(v)) => Val::F64(*v),
        (SlotType::V128, Value::V128(v)) => Val::V128(V128::from(*v)),
        (SlotType::FuncRef, Value::FuncRef(None)) => Val::FuncRef(None),
        (SlotType::FuncRef, Value::FuncRef(Some(i))) => {
            let f = c.data().checkpoint_state().funcs().and_then(|m| m.func(*i));
            match f {
                Some(f) => Val::FuncRef(Some(f)),
                None => wasmtime::bail!(
                    "image refers to function {i}, which this module does not export"
                ),
            }
        }
        (SlotType::ExternRef, Value::NullExternRef) => Val::ExternRef(None),
        (t, v) => wasmtime::bail!(
            "image frame slot holds {v:?} where the module expects {t:?}; the image does not match this module"
        ),
    })
}

/// The table slot an indirect call site must call through while rewinding (see
/// [`HostFunc::RewindIndex`]): the slot the call used if it still leads to the frame that comes
/// next (directly or through tail calls, as [`super::CheckpointState::tail_edges`] defines them),
/// else any slot that does, else a slot lent to that frame's function until the rewind ends.
fn rewind_index<T: HasCheckpointState>(
    c: &mut Caller<'_, T>,
    site: u32,
    saved: i32,
) -> wasmtime::Result<i32> {
    let ck = c.data_mut().checkpoint_state_mut();
    let (type_id, table, tail) = match ck.info.sites.get(site as usize).map(|s| &s.kind) {
        Some(SiteKind::CallIndirect { type_id, table }) => (*type_id, *table, false),
        Some(SiteKind::TailCallIndirect { type_id, table }) => (*type_id, *table, true),
        _ => wasmtime::bail!("site {site} is not an indirect call site"),
    };
    // The function whose frame comes next, or the tail-callee chosen by `restore_frame`.
    let goal = if tail {
        ck.tail_target.take()
    } else {
        ck.rewinding.last().map(|f| f.func)
    };
    let Some(goal) = goal else {
        wasmtime::bail!("indirect call site {site} is rewinding but no frame is left to reach");
    };
    let Some(funcs) = ck.funcs() else {
        wasmtime::bail!("the instance's function map is not installed");
    };
    let name = abi::export_table(table);
    let Some(Extern::Table(t)) = c.get_export(&name) else {
        wasmtime::bail!("instrumented module lacks export {name}");
    };
    // A tail site re-issues the hop `restore_frame` chose, to exactly that callee: entering any
    // function that merely reaches it could enter this very function again, and rewind forever.
    let entries = c
        .data()
        .checkpoint_state()
        .entries_reaching(goal, type_id, !tail);
    let slot_leads = |c: &mut Caller<'_, T>, i: u64| match t.get(&mut *c, i) {
        Some(wasmtime::Ref::Func(Some(f))) => funcs
            .index_of(&mut *c, &f)
            .is_some_and(|f| entries.get(f as usize).copied().unwrap_or(false)),
        _ => false,
    };
    // 1. The slot the call used, if it still leads there.
    if saved >= 0 && slot_leads(c, saved as u64) {
        return Ok(saved);
    }
    // 2. Any slot that leads there.
    let size = t.size(&*c);
    if let Some(i) = (0..size).find(|i| slot_leads(c, *i)) {
        return Ok(i as i32);
    }
    // 3. The table no longer holds the callee: lend a slot to the goal for the rewind.
    let ck = c.data().checkpoint_state();
    if ck
        .info
        .functions
        .get(goal as usize)
        .is_none_or(|i| i.type_id != type_id)
    {
        wasmtime::bail!("function {goal} was called through table {table}, which no longer holds it, and its type differs from the call's; cannot rewind this call");
    }
    let Some(f) = funcs.func(goal) else {
        wasmtime::bail!("function {goal} is not address-taken; cannot rewind the indirect call");
    };
    if size == 0 {
        wasmtime::bail!("table {table} is empty; cannot rewind the indirect call");
    }
    let slot = if saved >= 0 && (saved as u64) < size {
        saved as u64
    } else {
        0
    };
    let old = t.get(&mut *c, slot).unwrap_or(wasmtime::Ref::Func(None));
    t.set(&mut *c, slot, wasmtime::Ref::Func(Some(f)))?;
    c.data_mut()
        .checkpoint_state_mut()
        .patches
        .push((t, slot, old));
    Ok(slot as i32)
}

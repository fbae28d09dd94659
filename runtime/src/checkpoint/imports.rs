//! The `mvvm.*` host functions an instrumented module imports, and the store data behind them.
//!
//! While the guest unwinds, `save_frame` builds [`Frame`]s innermost first, reading each frame's
//! slots from the frame slot globals; while it rewinds, `restore_frame` hands them back outermost
//! first, writing the slots into those globals. `poll` is where triggers fire.

use crate::doorbell::{Attachment, CountdownCell, Doorbell};
use mvvm_contract::abi::{self, HostFunc, SlotType, State};
use mvvm_contract::{ModuleInfo, SiteKind};
use mvvm_checkpoint::{Frame, FuncMap, Value};
use std::sync::Arc;
use wasmtime::{AsContextMut, Caller, Extern, Linker, Val, V128};
use wasmtime_wasi::p1::WasiP1Ctx;

/// When a run stops to take a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Trigger {
    /// Never (only the doorbell).
    #[default]
    None,
    /// At the Nth site poll (1-based); every site polls while this is armed, so N is deterministic.
    Poll(u64),
    /// At the Nth entry (1-based) of a function; needs `--enable-checkpoint` sites.
    FuncEntry {
        /// Function index (original index space).
        func: u32,
        /// Which entry.
        nth: u64,
    },
}

impl Trigger {
    /// Whether every site must poll for this trigger to be exact.
    fn traces(&self) -> bool {
        !matches!(self, Trigger::None)
    }
}

/// Checkpoint bookkeeping kept in the store.
pub struct CkptState {
    info: Arc<ModuleInfo>,
    reset: i32,
    trigger: Trigger,
    polls: u64,
    entries: u64,
    doorbell: Doorbell,
    /// Frames saved while unwinding, innermost first.
    pub unwound: Vec<Frame>,
    /// Frames still to be restored; the outermost is last.
    rewinding: Vec<Frame>,
    funcs: Option<FuncMap>,
    /// Whether a rewind finished (the innermost site was reached).
    pub rewound: bool,
    tail_target: Option<u32>,
    /// Table slots lent to a rewind (table, index, previous value); undone when it completes.
    patches: Vec<(wasmtime::Table, u64, wasmtime::Ref)>,
    /// While set (the start function runs), sites neither count nor fire.
    pub suspended: bool,
    /// With `--leave-running`: the trigger re-armed after each checkpoint (every N polls or
    /// entries).
    period: Option<Trigger>,
    /// When the last checkpoint was requested (the poll that fired).
    pub fired_at: Option<std::time::Instant>,
    /// The instance's countdown (see [`Countdown`]).
    countdown: Option<Countdown>,
    /// Lets the doorbell zero the countdown while the guest runs; dropped with the store's data,
    /// before the memory it points into.
    attachment: Option<Attachment>,
    /// The instance's state global.
    pub state_global: Option<wasmtime::Global>,
    /// The instance's frame slot globals, `mvvm:slot:N` at index N.
    pub slot_globals: Vec<wasmtime::Global>,
}

impl CkptState {
    /// New bookkeeping for a module.
    pub fn new(info: Arc<ModuleInfo>, trigger: Trigger, doorbell: Doorbell) -> CkptState {
        CkptState {
            reset: info.policy.countdown_reset(),
            info,
            trigger,
            polls: 0,
            entries: 0,
            doorbell,
            unwound: Vec::new(),
            rewinding: Vec::new(),
            funcs: None,
            rewound: false,
            tail_target: None,
            patches: Vec::new(),
            suspended: false,
            period: None,
            fired_at: None,
            countdown: None,
            attachment: None,
            state_global: None,
            slot_globals: Vec::new(),
        }
    }

    /// Re-arms the trigger after every checkpoint (`--leave-running`): `Poll(n)` fires every n
    /// polls, `FuncEntry { nth: n, .. }` every n entries.
    pub fn repeat(&mut self) {
        self.period = Some(self.trigger.clone());
    }

    /// Whether the doorbell has been rung and not yet answered.
    pub fn doorbell_rung(&self) -> bool {
        self.doorbell.is_rung()
    }

    /// Installs the instance's countdown (after instantiation); a countdown in memory is attached
    /// to the doorbell, which can then zero it while the guest runs.
    pub(crate) fn set_countdown_location(&mut self, countdown: Countdown) {
        if let Countdown::Cell(cell) = countdown {
            self.attachment = Some(self.doorbell.attach(cell));
        }
        self.countdown = Some(countdown);
    }

    /// Trigger progress, to be saved in an image.
    pub fn counters(&self) -> mvvm_checkpoint::Counters {
        mvvm_checkpoint::Counters {
            polls: self.polls,
            entries: self.entries,
        }
    }

    /// Continues counting from an image's progress; a `Poll`/`FuncEntry` trigger counts on from
    /// there.
    pub fn set_counters(&mut self, c: &mvvm_checkpoint::Counters) {
        self.polls = c.polls;
        self.entries = c.entries;
    }

    /// Tail-call edges out of `func`: (site, callee) pairs.
    fn tail_edges(&self, func: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for (i, s) in self.info.sites.iter().enumerate() {
            if s.func != func {
                continue;
            }
            match &s.kind {
                SiteKind::TailCall { callee } => out.push((i as u32, *callee)),
                SiteKind::TailCallIndirect { type_id, .. } => {
                    for (g, f) in self.info.functions.iter().enumerate() {
                        let taken = self
                            .funcs
                            .as_ref()
                            .is_some_and(|m| m.func(g as u32).is_some());
                        if !f.imported && f.type_id == *type_id && taken {
                            out.push((i as u32, g as u32));
                        }
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The slot globals a frame stopped at `site` travels in, with their types.
    fn frame_layout(&self, site: u32) -> wasmtime::Result<Vec<(SlotType, wasmtime::Global)>> {
        let Some(s) = self.info.sites.get(site as usize) else {
            wasmtime::bail!("site {site} does not exist in this module");
        };
        s.frame
            .iter()
            .map(|n| {
                let n = *n as usize;
                match (self.info.slots.get(n), self.slot_globals.get(n)) {
                    (Some(t), Some(g)) => Ok((*t, *g)),
                    _ => wasmtime::bail!("the module lacks slot global {n} of site {site}"),
                }
            })
            .collect()
    }

    /// Whether calling `f` through a call of type `type_id` reaches `goal`'s frame (directly or
    /// through tail calls).
    fn leads_to(&self, f: u32, goal: u32, type_id: u32) -> bool {
        self.info
            .functions
            .get(f as usize)
            .is_some_and(|i| i.type_id == type_id)
            && (f == goal || self.tail_hop(f, goal).is_some())
    }

    /// The first hop (site, callee) of a shortest tail-call path from `from` to `to`.
    fn tail_hop(&self, from: u32, to: u32) -> Option<(u32, u32)> {
        let mut first: std::collections::HashMap<u32, (u32, u32)> =
            std::collections::HashMap::new();
        let mut queue = std::collections::VecDeque::new();
        for (site, callee) in self.tail_edges(from) {
            if callee == to {
                return Some((site, callee));
            }
            if first.insert(callee, (site, callee)).is_none() {
                queue.push_back(callee);
            }
        }
        while let Some(f) = queue.pop_front() {
            let hop = first[&f];
            for (_, callee) in self.tail_edges(f) {
                if callee == to {
                    return Some(hop);
                }
                if let std::collections::hash_map::Entry::Vacant(e) = first.entry(callee) {
                    e.insert(hop);
                    queue.push_back(callee);
                }
            }
        }
        None
    }

    /// The countdown value the guest should run with now.
    pub fn countdown(&self) -> i32 {
        if self.trigger.traces() {
            0
        } else {
            self.reset
        }
    }

    /// Sets the frames to rewind (innermost first, as unwound).
    pub fn set_rewind(&mut self, frames: Vec<Frame>) {
        self.rewinding = frames;
        self.rewound = false;
    }

    /// Installs the instance's function map (after instantiation).
    pub fn set_funcs(&mut self, funcs: FuncMap) {
        self.funcs = Some(funcs);
    }

    /// Number of polls so far.
    pub fn polls(&self) -> u64 {
        self.polls
    }

    fn fires(&mut self, site: u32) -> bool {
        self.polls += 1;
        let fired = match &self.trigger {
            Trigger::None => false,
            Trigger::Poll(n) => self.polls == *n,
            Trigger::FuncEntry { func, nth } => {
                let hit = self
                    .info
                    .sites
                    .get(site as usize)
                    .is_some_and(|s| s.func == *func && s.kind == SiteKind::Entry);
                if hit {
                    self.entries += 1;
                }
                hit && self.entries == *nth
            }
        };
        let rung = self.doorbell.answer();
        if fired {
            self.trigger = match &self.period {
                Some(Trigger::Poll(n)) => Trigger::Poll(self.polls + n),
                Some(Trigger::FuncEntry { func, nth }) => Trigger::FuncEntry {
                    func: *func,
                    nth: self.entries + nth,
                },
                _ => Trigger::None,
            };
        }
        if fired || rung {
            self.fired_at = Some(std::time::Instant::now());
        }
        fired || rung
    }
}

/// Where the guest keeps its countdown (see [`abi::EXPORT_COUNTDOWN`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Countdown {
    /// The `mvvm:countdown` memory of a checkpointable module.
    Cell(CountdownCell),
    /// The `mvvm:countdown` global of a module instrumented for benchmarks only
    /// ([`Mode::PollsOnly`](mvvm_aot::transform::Mode::PollsOnly)): a doorbell rung while such a
    /// module runs is answered at the next poll its countdown brings.
    Global(wasmtime::Global),
}

impl Countdown {
    /// The countdown `instance` exports, if it exports one mvvm can use.
    pub(crate) fn of(
        mut store: impl AsContextMut,
        instance: &wasmtime::Instance,
    ) -> Option<Countdown> {
        match instance.get_export(&mut store, abi::EXPORT_COUNTDOWN)? {
            Extern::Memory(m) => {
                CountdownCell::new(&store, &m, abi::COUNTDOWN_OFFSET).map(Countdown::Cell)
            }
            Extern::Global(g) => Some(Countdown::Global(g)),
            _ => None,
        }
    }
}

fn countdown_of(store: &impl wasmtime::AsContext<Data = HostState>) -> wasmtime::Result<Countdown> {
    store
        .as_context()
        .data()
        .ckpt
        .countdown
        .ok_or_else(|| wasmtime::format_err!("instrumented module lacks {}", abi::EXPORT_COUNTDOWN))
}

/// Reads the guest's countdown.
pub(crate) fn get_countdown(
    mut store: impl AsContextMut<Data = HostState>,
) -> wasmtime::Result<i32> {
    match countdown_of(&store)? {
        Countdown::Cell(c) => Ok(c.get()),
        Countdown::Global(g) => {
            let v = g.get(&mut store);
            v.i32()
                .ok_or_else(|| wasmtime::format_err!("guest countdown global holds {v:?}"))
        }
    }
}

/// Sets the guest's countdown to `v`, unless the doorbell is ringing: then to zero, so that a
/// ring that came while the host was busy still reaches the next site.
pub(crate) fn set_countdown(
    mut store: impl AsContextMut<Data = HostState>,
    v: i32,
) -> wasmtime::Result<()> {
    match countdown_of(&store)? {
        Countdown::Cell(c) => {
            c.set(v);
            // A ring between the host's last look at the flag and the store above would have
            // its zero overwritten: look again now that the value is in place.
            if store.as_context().data().ckpt.doorbell_rung() {
                c.set(0);
            }
            Ok(())
        }
        Countdown::Global(g) => {
            let v = if store.as_context().data().ckpt.doorbell_rung() {
                0
            } else {
                v
            };
            g.set(&mut store, Val::I32(v))
        }
    }
}

/// The data of every mvvm store.
pub struct HostState {
    /// WASI preview1 state.
    pub wasi: WasiP1Ctx,
    /// Checkpoint bookkeeping.
    pub ckpt: CkptState,
    /// The dispatch point's mirror of the WASI descriptor table.
    pub fds: crate::wasi_state::FdShadow,
}

fn global(caller: &mut Caller<'_, HostState>, name: &str) -> wasmtime::Result<wasmtime::Global> {
    // The two globals every poll touches are looked up once, at instantiation.
    let ck = &caller.data().ckpt;
    let cached = match name {
        abi::EXPORT_STATE => ck.state_global,
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
pub fn guest_state(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<State> {
    let v = global(caller, abi::EXPORT_STATE)?.get(&mut *caller);
    v.i32()
        .and_then(State::from_i32)
        .ok_or_else(|| wasmtime::format_err!("guest state global holds {v:?}"))
}

fn set_i32(caller: &mut Caller<'_, HostState>, name: &str, v: i32) -> wasmtime::Result<()> {
    global(caller, name)?.set(&mut *caller, Val::I32(v))
}

/// Reads a frame slot global (`save_frame`).
fn read_slot(
    c: &mut Caller<'_, HostState>,
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
            let funcs = c.data_mut().ckpt.funcs.take();
            let idx = funcs.as_ref().and_then(|m| m.index_of(&mut *c, &f));
            c.data_mut().ckpt.funcs = funcs;
            match idx {
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
fn slot_val(c: &Caller<'_, HostState>, t: SlotType, v: &Value) -> wasmtime::Result<Val> {
    Ok(match (t, v) {
        (SlotType::I32, Value::I32(v)) => Val::I32(*v),
        (SlotType::I64, Value::I64(v)) => Val::I64(*v),
        (SlotType::F32, Value::F32(v)) => Val::F32(*v),
        (SlotType::F64, Value::F64(v)) => Val::F64(*v),
        (SlotType::V128, Value::V128(v)) => Val::V128(V128::from(*v)),
        (SlotType::FuncRef, Value::FuncRef(None)) => Val::FuncRef(None),
        (SlotType::FuncRef, Value::FuncRef(Some(i))) => {
            let f = c.data().ckpt.funcs.as_ref().and_then(|m| m.func(*i));
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
/// [`HostFunc::RewindIndex`]).
fn rewind_index(c: &mut Caller<'_, HostState>, site: u32, saved: i32) -> wasmtime::Result<i32> {
    let (type_id, table, tail) = match c.data().ckpt.info.sites.get(site as usize).map(|s| &s.kind)
    {
        Some(SiteKind::CallIndirect { type_id, table }) => (*type_id, *table, false),
        Some(SiteKind::TailCallIndirect { type_id, table }) => (*type_id, *table, true),
        _ => wasmtime::bail!("site {site} is not an indirect call site"),
    };
    let ck = &mut c.data_mut().ckpt;
    // The function whose frame comes next, or the tail-callee chosen by `restore_frame`.
    let goal = if tail {
        ck.tail_target.take()
    } else {
        ck.rewinding.last().map(|f| f.func)
    };
    let Some(goal) = goal else {
        wasmtime::bail!("indirect call site {site} is rewinding but no frame is left to reach");
    };
    let name = abi::export_table(table);
    let Some(Extern::Table(t)) = c.get_export(&name) else {
        wasmtime::bail!("instrumented module lacks export {name}");
    };
    let funcs = c.data_mut().ckpt.funcs.take();
    let result = (|| {
        let funcs = funcs
            .as_ref()
            .ok_or_else(|| wasmtime::format_err!("no function map"))?;
        let slot_func = |c: &mut Caller<'_, HostState>, i: u64| match t.get(&mut *c, i) {
            Some(wasmtime::Ref::Func(Some(f))) => funcs.index_of(&mut *c, &f),
            _ => None,
        };
        // 1. The slot the call used, if it still leads there.
        if saved >= 0 {
            if let Some(f) = slot_func(c, saved as u64) {
                if c.data().ckpt.leads_to(f, goal, type_id) {
                    return Ok(saved);
                }
            }
        }
        // 2. Any slot that leads there.
        let size = t.size(&*c);
        for i in 0..size {
            if let Some(f) = slot_func(c, i) {
                if c.data().ckpt.leads_to(f, goal, type_id) {
                    return Ok(i as i32);
                }
            }
        }
        // 3. The table no longer holds the callee: lend a slot to the goal for the rewind.
        let ck = &c.data().ckpt;
        if ck
            .info
            .functions
            .get(goal as usize)
            .is_none_or(|i| i.type_id != type_id)
        {
            wasmtime::bail!("function {goal} was called through table {table}, which no longer holds it, and its type differs from the call's; cannot rewind this call");
        }
        let Some(f) = funcs.func(goal) else {
            wasmtime::bail!(
                "function {goal} is not address-taken; cannot rewind the indirect call"
            );
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
        c.data_mut().ckpt.patches.push((t, slot, old));
        Ok(slot as i32)
    })();
    c.data_mut().ckpt.funcs = funcs;
    result
}

/// Defines every `mvvm.*` import in `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let m = abi::IMPORT_MODULE;
    linker.func_wrap(
        m,
        HostFunc::Poll.name(),
        |mut c: Caller<'_, HostState>, arg: i32| -> wasmtime::Result<()> {
            // The guest passes `site + mvvm:countdown` (see `HostFunc::Poll`).
            let site = arg.wrapping_sub(get_countdown(&mut c)?);
            match guest_state(&mut c)? {
                State::Rewinding => {
                    // The innermost frame is back at its site: the rewind is complete.
                    let ck = &mut c.data_mut().ckpt;
                    if !ck.rewinding.is_empty() {
                        wasmtime::bail!(
                            "rewind reached site {site} with {} frames left over",
                            ck.rewinding.len()
                        );
                    }
                    ck.rewound = true;
                    let patches = std::mem::take(&mut ck.patches);
                    let cd = ck.countdown();
                    for (t, i, old) in patches.into_iter().rev() {
                        t.set(&mut c, i, old)?;
                    }
                    set_i32(&mut c, abi::EXPORT_STATE, State::Normal as i32)?;
                    set_countdown(&mut c, cd)?;
                }
                State::Normal => {
                    let ck = &mut c.data_mut().ckpt;
                    let fire = !ck.suspended && ck.fires(site as u32);
                    let cd = c.data().ckpt.countdown();
                    set_countdown(&mut c, cd)?;
                    if fire {
                        spdlog::debug!("checkpoint requested at site {site}");
                        c.data_mut().ckpt.unwound.clear();
                        set_i32(&mut c, abi::EXPORT_STATE, State::Unwinding as i32)?;
                    }
                }
                State::Unwinding => wasmtime::bail!("site {site} polled while unwinding"),
            }
            Ok(())
        },
    )?;
    linker.func_wrap(
        m,
        HostFunc::SaveFrame.name(),
        |mut c: Caller<'_, HostState>, func: i32, site1: i32| -> wasmtime::Result<()> {
            let site = (site1 as u32).wrapping_sub(1);
            let layout = c.data().ckpt.frame_layout(site)?;
            let mut slots = Vec::with_capacity(layout.len());
            for (t, g) in layout {
                slots.push(read_slot(&mut c, t, g)?);
            }
            c.data_mut().ckpt.unwound.push(Frame {
                func: func as u32,
                site,
                slots,
            });
            Ok(())
        },
    )?;
    linker.func_wrap(m, HostFunc::RestoreFrame.name(), |mut c: Caller<'_, HostState>, func: i32| -> wasmtime::Result<i32> {
        let func = func as u32;
        let ck = &mut c.data_mut().ckpt;
        let Some(top) = ck.rewinding.last().map(|f| f.func) else {
            wasmtime::bail!("function {func} is rewinding but the image has no frame left");
        };
        if top == func {
            let frame = ck.rewinding.pop().expect("checked above");
            // A frame stops at a poll or a non-tail call of its own function; the prologue's
            // dispatch knows no other site.
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
            return Ok(frame.site as i32 + 1);
        }
        // `func` tail-called its way to `top`: re-issue the first tail call on that path.
        match ck.tail_hop(func, top) {
            Some((site, callee)) => {
                ck.tail_target = Some(callee);
                Ok(site as i32 + 1)
            }
            None => wasmtime::bail!("image frame belongs to function {top} but function {func} is rewinding and cannot tail-call its way there; the image does not match this module"),
        }
    })?;
    linker.func_wrap(
        m,
        HostFunc::RewindIndex.name(),
        |mut c: Caller<'_, HostState>, site: i32, saved: i32| -> wasmtime::Result<i32> {
            rewind_index(&mut c, site as u32, saved)
        },
    )?;
    Ok(())
}

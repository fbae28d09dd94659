//! Checkpointing a running instance: the state a run keeps for it ([`CheckpointState`]), the
//! countdown the guest's sites test ([`countdown`]), and the `mvvm.*` host functions the
//! instrumented module imports ([`imports`]).
//!
//! The host functions are generic over the store's data ([`HasCheckpointState`]), so this module
//! does not know what else a store holds.

pub mod countdown;
pub mod imports;

use crate::config::Trigger;
use crate::doorbell::{Attachment, Doorbell};
use countdown::Countdown;
use mvvm_checkpoint::{Frame, FuncMap};
use mvvm_contract::abi::SlotType;
use mvvm_contract::{ModuleInfo, SiteKind};
use std::sync::Arc;

/// Store data that holds a run's [`CheckpointState`]: what the `mvvm.*` imports need of a store.
pub trait HasCheckpointState: 'static {
    /// The run's checkpoint state.
    fn checkpoint_state(&self) -> &CheckpointState;
    /// The run's checkpoint state, mutably.
    fn checkpoint_state_mut(&mut self) -> &mut CheckpointState;
}

/// A run's checkpoint bookkeeping, kept in its store: the trigger and its progress, the frames
/// being unwound or rewound, and the instance's countdown and slot globals.
pub struct CheckpointState {
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
    /// The instance's address-taken functions; shared so that a host function can hold it while
    /// it also uses the store.
    funcs: Option<Arc<FuncMap>>,
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

impl CheckpointState {
    /// New bookkeeping for a module.
    pub fn new(info: Arc<ModuleInfo>, trigger: Trigger, doorbell: Doorbell) -> CheckpointState {
        CheckpointState {
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
    ///
    /// A direct tail call leads to its callee. An indirect one may lead to any address-taken
    /// function of its type: which one it took is not recorded (no frame stops at a tail call),
    /// and any of them is a correct path for a rewind, because the functions on a tail-call path
    /// only re-issue their tail call while rewinding. Both rewind queries ([`Self::leads_to`],
    /// [`Self::tail_hop`]) follow the same edges.
    fn tail_edges(&self, func: u32) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        for (i, s) in self.info.sites.iter().enumerate() {
            if s.func != func {
                continue;
            }
            match &s.kind {
                SiteKind::TailCall { callee } => out.push((i as u32, *callee)),
                SiteKind::TailCallIndirect { type_id, .. } => {
                    out.extend(self.address_taken_of_type(*type_id).map(|g| (i as u32, g)));
                }
                _ => {}
            }
        }
        out
    }

    /// The module's address-taken functions whose canonical type is `type_id`.
    fn address_taken_of_type(&self, type_id: u32) -> impl Iterator<Item = u32> + '_ {
        self.info
            .functions
            .iter()
            .enumerate()
            .filter(move |(g, f)| {
                !f.imported
                    && f.type_id == type_id
                    && self
                        .funcs
                        .as_ref()
                        .is_some_and(|m| m.func(*g as u32).is_some())
            })
            .map(|(g, _)| g as u32)
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
        self.funcs = Some(Arc::new(funcs));
    }

    /// The instance's function map, once installed.
    pub(crate) fn funcs(&self) -> Option<Arc<FuncMap>> {
        self.funcs.clone()
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

//! Checkpointing a running instance: the state a run keeps for it ([`CheckpointState`]), the
//! countdown the guest's sites test ([`countdown`]), the check of an image's call stack against
//! the module ([`frames`]), and the `mvvm.*` host functions the
//! instrumented module imports ([`imports`]), and the tail-call graph a rewind walks ([`tail`]).
//!
//! The host functions are generic over the store's data ([`HasCheckpointState`]), so this module
//! does not know what else a store holds.

pub mod countdown;
pub mod frames;
pub mod imports;
pub mod tail;

use crate::config::Trigger;
use crate::doorbell::{Attachment, Doorbell};
use countdown::Countdown;
use mvvm_checkpoint::{Frame, FuncMap};
use mvvm_contract::abi::SlotType;
use mvvm_contract::{ModuleInfo, SiteKind};
use std::sync::Arc;
use tail::TailGraph;

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
    /// The module's tail calls (indirect ones reach only address-taken functions), built by the
    /// first rewind that needs them, so that a run that never rewinds does not pay for them.
    tail_graph: std::sync::OnceLock<TailGraph>,
    /// When a rewind finished (the innermost site was reached).
    pub rewound_at: Option<std::time::Instant>,
    tail_target: Option<u32>,
    /// Tail calls re-issued since the last frame was restored (bounded: see `restore_frame`).
    tail_hops: usize,
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
            tail_graph: std::sync::OnceLock::new(),
            rewound_at: None,
            tail_target: None,
            tail_hops: 0,
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

    /// The functions a call of type `type_id` may enter to reach `goal`, by function index:
    /// `goal` itself, and with `through_tail_calls` also those that tail-call their way there.
    fn entries_reaching(&self, goal: u32, type_id: u32, through_tail_calls: bool) -> Vec<bool> {
        let mut reaches = if through_tail_calls {
            self.tail_graph().reaching(goal)
        } else {
            (0..self.info.functions.len())
                .map(|f| f == goal as usize)
                .collect()
        };
        for (f, reach) in reaches.iter_mut().enumerate() {
            *reach &= self
                .info
                .functions
                .get(f)
                .is_some_and(|i| i.type_id == type_id);
        }
        reaches
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
        self.rewound_at = None;
        self.tail_hops = 0;
    }

    /// Installs the instance's function map (after instantiation).
    pub fn set_funcs(&mut self, funcs: FuncMap) {
        self.funcs = Some(Arc::new(funcs));
        self.tail_graph = std::sync::OnceLock::new();
    }

    /// The module's tail-call graph; built on first use, after the function map is installed.
    fn tail_graph(&self) -> &TailGraph {
        self.tail_graph.get_or_init(|| {
            TailGraph::new(&self.info, |f| {
                self.funcs.as_ref().is_some_and(|m| m.func(f).is_some())
            })
        })
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

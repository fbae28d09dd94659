//! Multi-variant execution: a master and its followers, variants of one program, run side by
//! side and compared at the WASI boundary (docs/MVX.md).
//!
//! Each variant runs in a store of its own on a thread of its own. Only the master touches the
//! host: every call it makes becomes an [`event::Event`] for its followers, which match their
//! own calls against those events and take the master's answers instead of running the calls.
//! Where the [`Policy`] says, the master holds a call until every follower has reached the same
//! call with the same content; a difference stops every variant, and nothing of the divergent
//! call is done.
//!
//! The pieces, each using only those before it: [`report`] (a divergence and how it reads),
//! [`event`] (the messages), `poll` (what `poll_oneoff` compares), the follower's and the master's
//! call monitors, [`remote`] (followers in other processes, over an authenticated link),
//! [`late`] (followers that join a running master from a snapshot), and [`run`], which starts
//! the variants and says how the run ended.

pub mod event;
mod follower;
pub mod late;
mod master;
mod poll;
pub mod remote;
pub mod report;

use crate::config::{Output, RunConfig};
use crate::doorbell::Doorbell;
use crate::error::RuntimeError;
use crate::program::Program;
use crate::session::{Outcome, Run};
use crate::wasi::calls::CallClass;
use follower::FollowerMonitor;
use master::{MasterMonitor, Port};
use mvvm_checkpoint::Snapshot;
use mvvm_contract::logging::OpenLine;
use report::Divergence;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::mpsc::{unbounded_channel as channel, UnboundedReceiver};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// When the master waits for its followers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Policy {
    /// Before every call that acts on the world (writes, sends, path changes, descriptor
    /// changes, exit): no output leaves before every follower agrees. Reads and clocks run ahead.
    #[default]
    OutputLockstep,
    /// Before every call, reads included.
    Lockstep,
    /// Never, except at the exit: followers are compared as their calls arrive, and a divergence
    /// stops the run when it is found, after the master's output may have left.
    Loose,
}

impl Policy {
    /// Whether the master waits for its followers before running a call of `class`.
    pub(crate) fn waits_for(self, class: CallClass) -> bool {
        match self {
            Policy::OutputLockstep => matches!(class, CallClass::Compared | CallClass::Descriptor),
            Policy::Lockstep => !matches!(class, CallClass::Local | CallClass::Exit),
            Policy::Loose => false,
        }
    }
}

/// A follower variant.
#[derive(Clone)]
pub struct Follower {
    /// Its program: the master's, or a variant of it, for any ISA.
    pub program: Arc<Program>,
    /// How reports name it, e.g. `follower 1 (app.aot on pulley64)`.
    pub name: String,
}

/// How a multi-variant run ended.
#[derive(Debug)]
pub enum MvxOutcome {
    /// Every variant exited with this status, having agreed on every event.
    Exited(i32),
    /// A follower differed from the master; every variant was stopped.
    Diverged(Box<Divergence>),
}

/// What a multi-variant run did.
#[derive(Debug)]
pub struct MvxRun {
    /// How it ended.
    pub outcome: MvxOutcome,
    /// How many events the master made (its calls other than local ones, and its exit).
    pub events: u64,
}

/// How a follower's run ended, as the follower saw it.
#[derive(Debug)]
pub enum FollowerEnd {
    /// It agreed with the master on every event, up to the master's exit with this status.
    Agreed(i32),
    /// It differed from the master, as the report says, and told the master.
    Diverged(Box<Divergence>),
    /// The master stopped it before the end (another follower diverged, or the master failed),
    /// or went away.
    Stopped,
}

/// How long a stopped follower may take to end before the run returns without it.
const FOLLOWER_GRACE: Duration = Duration::from_secs(2);

/// A master's followers, by where they run and when they start.
#[derive(Default)]
pub struct Followers {
    /// In this process, from the start.
    pub local: Vec<Follower>,
    /// In other processes, which joined before the start.
    pub remote: Vec<remote::Remote>,
    /// Joining the running master from a snapshot, in this process or others.
    pub late: Option<late::Late>,
    /// How long the master waits at one event for a follower before it counts the follower as
    /// lost; `None`: without a limit.
    pub timeout: Option<Duration>,
}

impl Followers {
    /// Only `local` followers, from the start.
    pub fn local(local: Vec<Follower>) -> Followers {
        Followers {
            local,
            ..Followers::default()
        }
    }
}

/// Runs `master` with `cfg` and its `followers` beside it under `policy`, until the master exits
/// (and every follower with it) or a follower diverges. A master that traps or fails ends the
/// run with its error, as a single run would.
pub fn run(
    master: &Program,
    followers: Followers,
    cfg: &RunConfig,
    policy: Policy,
) -> Result<MvxRun, RuntimeError> {
    if followers.late.is_some() && !master.info.policy.instrument {
        return Err(RuntimeError::Input(
            "late followers join from a snapshot, and this master has no checkpoint sites to take one at; build it with mvvm-aot".into(),
        ));
    }
    let mut ports = Vec::new();
    let mut threads = Vec::new();
    for (k, f) in followers.local.iter().enumerate() {
        let (port, thread) = start_follower(k + 1, f, cfg, None)?;
        ports.push(port);
        threads.push(thread);
    }
    let mut relays = Vec::new();
    let first_remote = followers.local.len() + 1;
    for (k, r) in followers.remote.into_iter().enumerate() {
        let setup = remote::Setup::of(cfg, r.name(first_remote + k));
        let (port, relay) = r.start(setup, None, cfg.doorbell.clone(), None);
        ports.push(port);
        relays.push(relay);
    }
    let patience = followers.timeout.map(Patience::new).transpose()?;
    let monitor = MasterMonitor::new(policy, ports, master.info.clone(), patience);
    let (result, mut monitor, stopped_at) = match followers.late {
        None => {
            let (result, monitor) = master.run_monitored(cfg, monitor);
            (result, monitor, None)
        }
        Some(l) => {
            let joined = late::run(master, cfg, monitor, l, first_remote + relays.len());
            threads.extend(joined.threads);
            relays.extend(joined.relays);
            (joined.result, joined.monitor, Some(joined.stopped_at))
        }
    };
    let outcome = master_outcome(result, &mut monitor, master, stopped_at);
    monitor.stop();
    let events = monitor.events();
    drop(monitor);
    join_bounded(threads);
    relays.into_iter().for_each(remote::Relay::flush);
    outcome.map(|outcome| MvxRun { outcome, events })
}

/// Starts local follower `number` on a thread of its own, from the start or, given `from`,
/// from a snapshot taken after the master's event `from.0`; returns the master's end of its link.
fn start_follower(
    number: usize,
    f: &Follower,
    cfg: &RunConfig,
    from: Option<(u64, Arc<Snapshot>)>,
) -> Result<(Port, std::thread::JoinHandle<()>), RuntimeError> {
    let (down, down_end) = channel();
    let (up_end, up) = channel();
    let bell = Doorbell::new();
    let fcfg = follower_config(cfg, bell.clone());
    let monitor = FollowerMonitor::new(
        f.name.clone(),
        down_end,
        up_end,
        cfg.doorbell.clone(),
        f.program.info.clone(),
    );
    let program = f.program.clone();
    let thread = std::thread::Builder::new()
        .name(format!("mvx-follower-{number}"))
        .spawn(move || {
            match from {
                None => follow(&program, &fcfg, monitor, None),
                Some((seq, snap)) => follow(&program, &fcfg, monitor.after_event(seq), Some(&snap)),
            };
        })
        .map_err(|e| {
            RuntimeError::Engine(wasmtime::Error::msg(format!(
                "cannot start a thread for follower {number}: {e}"
            )))
        })?;
    let port = Port {
        name: f.name.clone(),
        down,
        up,
        bell,
        lost: Arc::default(),
        place: None,
    };
    Ok((port, thread))
}

/// How the run ended, from how the master's run did.
/// `stopped_at` is where the master stood when a checkpoint stopped it, if its run handed
/// checkpoints to late followers rather than ending at them.
fn master_outcome(
    result: Result<Run, RuntimeError>,
    monitor: &mut MasterMonitor,
    master: &Program,
    stopped_at: Option<Vec<String>>,
) -> Result<MvxOutcome, RuntimeError> {
    let unexplained =
        || RuntimeError::Trap("the master was stopped, but no follower reported why".into());
    match result {
        Ok(Run {
            outcome: Outcome::Exited(status),
            ..
        }) => Ok(match monitor.finish(status) {
            None => MvxOutcome::Exited(status),
            Some(d) => MvxOutcome::Diverged(d),
        }),
        // A follower rang the master's doorbell: it stopped at a site, its frames unwound.
        Ok(Run {
            outcome: Outcome::Checkpointed(snap),
            ..
        }) => {
            let mut d = monitor.reported().ok_or_else(unexplained)?;
            d.master.stack = snap
                .frames
                .iter()
                .map(|f| crate::trap::original_name(f.func, &master.info))
                .collect();
            Ok(MvxOutcome::Diverged(d))
        }
        Err(RuntimeError::Halted) => {
            let mut d = monitor.reported().ok_or_else(unexplained)?;
            if let Some(stack) = stopped_at.filter(|_| d.master.stack.is_empty()) {
                d.master.stack = stack;
            }
            Ok(MvxOutcome::Diverged(d))
        }
        Err(e) => Err(e),
    }
}

/// A follower's configuration: the master's arguments, environment and directories (which its
/// local calls answer from), no output of its own, and its own doorbell.
fn follower_config(cfg: &RunConfig, bell: Doorbell) -> RunConfig {
    RunConfig {
        stdout: Output::Capture(MemoryOutputPipe::new(0)),
        stderr: Output::Capture(MemoryOutputPipe::new(0)),
        doorbell: bell,
        stderr_line: OpenLine::default(),
        listener: None,
        ..cfg.clone()
    }
}

/// Runs a follower from the start, or from `snap`, then reports how it ended, to the master and
/// to the caller.
fn follow(
    program: &Program,
    cfg: &RunConfig,
    monitor: FollowerMonitor,
    snap: Option<&Snapshot>,
) -> FollowerEnd {
    let (result, mut monitor) = match snap {
        None => program.run_monitored(cfg, monitor),
        Some(snap) => program.resume_monitored(cfg, snap, monitor),
    };
    match result {
        Ok(Run {
            outcome: Outcome::Exited(status),
            ..
        }) => monitor.finish(status),
        // Stopped: by its doorbell at a site, or by its monitor at a call.
        Ok(Run {
            outcome: Outcome::Checkpointed(_),
            ..
        })
        | Err(RuntimeError::Halted) => {}
        Err(RuntimeError::Trap(message)) => {
            let (trap, stack) = crate::trap::undescribe(&message);
            monitor.failed(trap, stack)
        }
        Err(e) => monitor.failed(e.to_string(), Vec::new()),
    }
    monitor.end()
}

/// Waits for the followers' threads to end, at most [`FOLLOWER_GRACE`]: a follower that cannot be
/// stopped (a plain module has no sites for its doorbell) is left behind.
fn join_bounded(threads: Vec<std::thread::JoinHandle<()>>) {
    let deadline = Instant::now() + FOLLOWER_GRACE;
    while threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    for t in threads {
        if t.is_finished() {
            let _ = t.join();
        } else {
            spdlog::warn!("mvx: a follower did not stop within {FOLLOWER_GRACE:?}; leaving it");
        }
    }
}

/// How long a variant waiting for the other side spins before it sleeps: a thread put to sleep
/// and woken costs tens of microseconds, more than most calls' whole round trip when both
/// variants are running.
const SPIN: Duration = Duration::from_micros(200);

/// How long the master waits at one event for each follower, and the clock that times it.
pub(crate) struct Patience {
    pub(crate) limit: Duration,
    clock: tokio::runtime::Runtime,
}

/// A follower that did not answer in time.
pub(crate) struct Overdue;

impl Patience {
    fn new(limit: Duration) -> Result<Patience, RuntimeError> {
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .map_err(|e| RuntimeError::Io("a clock for --follower-timeout".into(), e))?;
        Ok(Patience { limit, clock })
    }

    /// As [`receive`], but only until `deadline`.
    pub(crate) fn receive_by<T>(
        &self,
        channel: &mut UnboundedReceiver<T>,
        deadline: Instant,
    ) -> Result<Option<T>, Overdue> {
        if let Some(message) = spin(channel) {
            return Ok(message);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // The timer must be made inside the clock's runtime.
        self.clock
            .block_on(async { tokio::time::timeout(left, channel.recv()).await })
            .map_err(|_| Overdue)
    }
}

/// The next message on `channel` if it comes within [`SPIN`]: `Some(None)` when every sender
/// has gone, `None` if nothing came.
fn spin<T>(channel: &mut UnboundedReceiver<T>) -> Option<Option<T>> {
    let started = Instant::now();
    loop {
        for _ in 0..64 {
            match channel.try_recv() {
                Ok(message) => return Some(Some(message)),
                Err(TryRecvError::Disconnected) => return Some(None),
                Err(TryRecvError::Empty) => std::hint::spin_loop(),
            }
        }
        if started.elapsed() >= SPIN {
            return None;
        }
    }
}

/// The next message on `channel`: spun for while the sender is likely to be close behind, then
/// waited for asleep. `None` when every sender has gone. Never called from async code: the
/// variants run on threads of their own.
pub(crate) fn receive<T>(channel: &mut UnboundedReceiver<T>) -> Option<T> {
    spin(channel).unwrap_or_else(|| channel.blocking_recv())
}

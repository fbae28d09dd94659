//! Followers that join a running master: after a delay the master's doorbell takes an in-memory
//! snapshot at its next site, which lies between two calls; each joining follower resumes that
//! snapshot and takes part from the master's next event on. A local follower resumes it on a
//! thread of its own; a remote one, which may arrive at any time after the delay, receives it as
//! an image (ISA-neutral, so it may run on another machine of another ISA) at the master's next
//! site after it arrived. A remote follower that is lost frees its place for another.

use super::master::{Joiner, MasterMonitor};
use super::remote::{Arrivals, Listener, Relay, Remote, Setup, Start};
use super::{start_follower, Follower};
use crate::config::RunConfig;
use crate::doorbell::Doorbell;
use crate::error::RuntimeError;
use crate::program::Program;
use crate::session::Run;
use mvvm_checkpoint::image::Image;
use mvvm_checkpoint::Snapshot;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Followers that join the master once it has run for a while.
pub struct Late {
    /// The followers in this process: the master's program or variants of it whose frames fit
    /// its snapshots.
    pub followers: Vec<Follower>,
    /// Followers in other processes, if they may join.
    pub remote: Option<LateRemote>,
    /// How long the master runs alone.
    pub after: Duration,
}

/// Where followers in other processes join a running master.
pub struct LateRemote {
    /// The listener they reach.
    pub listener: Listener,
    /// How many may take part at once.
    pub places: usize,
}

/// What a master run with late followers leaves behind.
pub(crate) struct Joined {
    /// How the master's run ended.
    pub(crate) result: Result<Run, RuntimeError>,
    /// Its monitor.
    pub(crate) monitor: MasterMonitor,
    /// The threads of the local followers that joined.
    pub(crate) threads: Vec<JoinHandle<()>>,
    /// The relays of the remote followers that joined.
    pub(crate) relays: Vec<Relay>,
    /// Where the master stood if a checkpoint stopped it (a follower rang its doorbell).
    pub(crate) stopped_at: Vec<String>,
}

/// When the master's next site is for followers to join: the doorbell is shared with followers
/// that ring it to stop the master, so `due` tells the two apart.
struct Wake {
    /// The delay has passed: followers may join.
    open: AtomicBool,
    /// Followers wait to join at the next site.
    due: AtomicBool,
    bell: Doorbell,
}

impl Wake {
    /// The delay has passed.
    fn open(&self) {
        self.open.store(true, Ordering::SeqCst);
        self.call();
    }

    /// A remote follower arrived; it joins at once if the delay has passed, else with the rest.
    fn arrived(&self) {
        if self.open.load(Ordering::SeqCst) {
            self.call();
        }
    }

    fn call(&self) {
        self.due.store(true, Ordering::SeqCst);
        self.bell.ring();
    }
}

/// Runs `master` with `monitor`; after `late.after` its followers join from a snapshot, numbered
/// from `first`.
pub(crate) fn run(
    master: &Program,
    cfg: &RunConfig,
    monitor: MasterMonitor,
    late: Late,
    first: usize,
) -> Joined {
    let after = late.after;
    let joiner = monitor.joiner();
    let wake = Arc::new(Wake {
        open: AtomicBool::new(false),
        due: AtomicBool::new(false),
        bell: cfg.doorbell.clone(),
    });
    let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
    let timer = {
        let wake = wake.clone();
        std::thread::spawn(move || {
            if cancelled.recv_timeout(after) == Err(RecvTimeoutError::Timeout) {
                wake.open();
            }
        })
    };
    let arrivals = late.remote.map(|r| {
        let wake = wake.clone();
        r.listener.serve(r.places, move || wake.arrived())
    });
    let mut joining = Joining {
        joiner,
        master,
        cfg,
        next: first,
        threads: Vec::new(),
        relays: Vec::new(),
    };
    let mut stopped_at = Vec::new();
    let mut waiting = Some(late.followers);
    let mut on_checkpoint = |snap: &Snapshot| {
        if !wake.due.swap(false, Ordering::SeqCst) {
            // Not the timer's: a follower rang to stop the master.
            stopped_at = snap
                .frames
                .iter()
                .map(|f| crate::trap::original_name(f.func, &master.info))
                .collect();
            return Err(RuntimeError::Halted);
        }
        if let Some(local) = waiting.take().filter(|l| !l.is_empty()) {
            joining.local(&local, snap)?;
        }
        match &arrivals {
            Some(a) => joining.remote(a, snap),
            None => Ok(()),
        }
    };
    let (result, monitor) = master.run_monitored_with(cfg, monitor, Some(&mut on_checkpoint));
    drop(cancel);
    let _ = timer.join();
    let left = arrivals.as_ref().map_or(0, |a| a.take().len());
    if result.is_ok() && (joining.next == first || left > 0) {
        let missing = waiting.map_or(0, |l| l.len()) + left;
        let who = match missing {
            0 => "any late follower".to_string(),
            n => format!("{n} late follower(s)"),
        };
        spdlog::warn!(
            "mvx: the master ended before {who} joined (they may join after {after:?}); the run was not compared"
        );
    }
    Joined {
        result,
        monitor,
        threads: joining.threads,
        relays: joining.relays,
        stopped_at,
    }
}

/// Starts followers from the master's snapshots.
struct Joining<'a> {
    joiner: Joiner,
    master: &'a Program,
    cfg: &'a RunConfig,
    /// The number the next follower's reports give it.
    next: usize,
    threads: Vec<JoinHandle<()>>,
    relays: Vec<Relay>,
}

impl Joining<'_> {
    /// Starts every local follower from `snap`, taken after the master's event `joiner.seq()`.
    fn local(&mut self, followers: &[Follower], snap: &Snapshot) -> Result<(), RuntimeError> {
        let seq = self.joiner.seq();
        let snap = Arc::new(snap.clone());
        for f in followers {
            let from = Some((seq, snap.clone()));
            let (port, thread) = start_follower(self.next, f, self.cfg, from)?;
            self.next += 1;
            self.joiner.admit(port);
            self.threads.push(thread);
        }
        spdlog::info!(
            "mvx: {} follower(s) joined after event {seq}, from a snapshot of {} bytes of memory",
            followers.len(),
            snap.memories.iter().map(|m| m.bytes.len()).sum::<usize>()
        );
        Ok(())
    }

    /// Starts the remote followers that have arrived from `snap`, encoded once as an image.
    fn remote(&mut self, arrivals: &Arrivals, snap: &Snapshot) -> Result<(), RuntimeError> {
        let remotes: Vec<Remote> = arrivals.take();
        if remotes.is_empty() {
            return Ok(());
        }
        let seq = self.joiner.seq();
        let image = Image {
            producer: format!("mvvm {}", env!("CARGO_PKG_VERSION")),
            taken_on: self.master.target.name().to_string(),
            snapshot: snap.clone(),
        };
        let image = image
            .encode(None)
            .map_err(|e| RuntimeError::Write(format!("a late follower's snapshot: {e}")))?;
        let image = Arc::new(image);
        for r in remotes {
            let name = r.name(self.next);
            self.next += 1;
            spdlog::info!(
                "mvx: {name} joined after event {seq}, from an image of {} bytes",
                image.len()
            );
            let mut setup = Setup::of(self.cfg, name);
            setup.start = Some(Start {
                after: seq,
                image_bytes: image.len() as u64,
            });
            let bell = self.cfg.doorbell.clone();
            let place = Some(arrivals.places());
            let (port, relay) = r.start(setup, Some(image.clone()), bell, place);
            self.joiner.admit(port);
            self.relays.push(relay);
        }
        Ok(())
    }
}

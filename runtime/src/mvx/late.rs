//! Followers that join a running master: after a delay the master's doorbell takes an in-memory
//! snapshot at its next site, which lies between two calls; each joining follower resumes that
//! snapshot on a thread of its own and takes part from the master's next event on.

use super::master::{Joiner, MasterMonitor};
use super::{start_follower, Follower};
use crate::config::RunConfig;
use crate::error::RuntimeError;
use crate::program::Program;
use crate::session::Run;
use mvvm_checkpoint::Snapshot;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Followers that join the master once it has run for a while.
pub struct Late {
    /// The followers: the master's program or variants of it whose frames fit its snapshots.
    pub followers: Vec<Follower>,
    /// How long the master runs alone.
    pub after: Duration,
}

/// What a master run with late followers leaves behind.
pub(crate) struct Joined {
    /// How the master's run ended.
    pub(crate) result: Result<Run, RuntimeError>,
    /// Its monitor.
    pub(crate) monitor: MasterMonitor,
    /// The threads of the followers that joined.
    pub(crate) threads: Vec<JoinHandle<()>>,
    /// Where the master stood if a checkpoint stopped it (a follower rang its doorbell).
    pub(crate) stopped_at: Vec<String>,
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
    let due = Arc::new(AtomicBool::new(false));
    let (cancel, cancelled) = std::sync::mpsc::channel::<()>();
    let timer = {
        let (due, bell) = (due.clone(), cfg.doorbell.clone());
        std::thread::spawn(move || {
            if cancelled.recv_timeout(after) == Err(RecvTimeoutError::Timeout) {
                due.store(true, Ordering::SeqCst);
                bell.ring();
            }
        })
    };
    let mut threads = Vec::new();
    let mut stopped_at = Vec::new();
    let mut waiting = Some(late.followers);
    let mut on_checkpoint = |snap: &Snapshot| {
        if !due.swap(false, Ordering::SeqCst) {
            // Not the timer's: a follower rang to stop the master.
            stopped_at = snap
                .frames
                .iter()
                .map(|f| crate::trap::original_name(f.func, &master.info))
                .collect();
            return Err(RuntimeError::Halted);
        }
        let followers = waiting.take().unwrap_or_default();
        join(&joiner, &followers, cfg, snap, first, &mut threads)
    };
    let (result, monitor) = master.run_monitored_with(cfg, monitor, Some(&mut on_checkpoint));
    drop(cancel);
    let _ = timer.join();
    if waiting.is_some() && result.is_ok() {
        spdlog::warn!(
            "mvx: the master ended within {:?}, before its late followers joined; they were not compared",
            after
        );
    }
    Joined {
        result,
        monitor,
        threads,
        stopped_at,
    }
}

/// Starts every follower from `snap`, taken after the master's event `joiner.seq()`.
fn join(
    joiner: &Joiner,
    followers: &[Follower],
    cfg: &RunConfig,
    snap: &Snapshot,
    first: usize,
    threads: &mut Vec<JoinHandle<()>>,
) -> Result<(), RuntimeError> {
    let seq = joiner.seq();
    let snap = Arc::new(snap.clone());
    for (k, f) in followers.iter().enumerate() {
        let (port, thread) = start_follower(first + k, f, cfg, Some((seq, snap.clone())))?;
        joiner.admit(port);
        threads.push(thread);
    }
    spdlog::info!(
        "mvx: {} follower(s) joined after event {seq}, from a snapshot of {} bytes of memory",
        followers.len(),
        snap.memories.iter().map(|m| m.bytes.len()).sum::<usize>()
    );
    Ok(())
}

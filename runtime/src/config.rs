//! What a run is given besides the program: arguments, environment, directories, where its output
//! goes, and when it stops for a checkpoint. Plain data, so every other module may use it.

use crate::doorbell::Doorbell;
use mvvm_contract::logging::OpenLine;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// A host directory made visible to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirMap {
    /// The host directory.
    pub host: PathBuf,
    /// The path the guest sees.
    pub guest: String,
}

impl DirMap {
    /// Parses `HOST[::GUEST]`; without `::GUEST` the guest sees the host path as written.
    pub fn parse(s: &str) -> DirMap {
        match s.split_once("::") {
            Some((h, g)) => DirMap {
                host: h.into(),
                guest: g.into(),
            },
            None => DirMap {
                host: s.into(),
                guest: s.into(),
            },
        }
    }
}

/// Where a guest's stdout or stderr goes.
#[derive(Clone)]
pub enum Output {
    /// The process's own stream.
    Inherit,
    /// An in-memory buffer (tests; concatenated across checkpoint and resume).
    Capture(MemoryOutputPipe),
}

/// Everything about a run that is not the program.
#[derive(Clone)]
pub struct RunConfig {
    /// `argv`, including `argv[0]`.
    pub argv: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Preopened directories.
    pub dirs: Vec<DirMap>,
    /// The guest's stdout.
    pub stdout: Output,
    /// The guest's stderr.
    pub stderr: Output,
    /// The export to run.
    pub entry: String,
    /// Rung, the run checkpoints at its next site: at the first, if rung before the run starts.
    /// Ring a clone of it from any thread (or from a signal: [`Doorbell::ring_on_signal`]).
    pub doorbell: Doorbell,
    /// Fuel limit (only for engines built with fuel).
    pub fuel: Option<u64>,
    /// On resume: reopen files that changed since the checkpoint instead of refusing them.
    pub allow_changed_files: bool,
    /// Set while the guest's last write to the process's stderr left a line open, so that the
    /// tool's own lines start on a fresh one (see [`OpenLine`]).
    pub stderr_line: OpenLine,
    /// A listening socket the guest gets at the descriptor after its directories
    /// (`--tcplisten`).
    pub listener: Option<Arc<TcpListener>>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            argv: vec!["app".into()],
            env: Vec::new(),
            dirs: Vec::new(),
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            entry: "_start".into(),
            doorbell: Doorbell::new(),
            fuel: None,
            allow_changed_files: false,
            stderr_line: OpenLine::default(),
            listener: None,
        }
    }
}

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
    pub(crate) fn traces(&self) -> bool {
        !matches!(self, Trigger::None)
    }
}

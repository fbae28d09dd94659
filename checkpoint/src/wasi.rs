//! The WASI preview1 state of a paused program, as the runtime's dispatch point saw it.
//!
//! Nothing here names a host path the restoring side must use: files are recorded by the guest
//! directory they were opened under and their path inside it, and the restoring command decides
//! which host directory each guest directory maps to.

use serde::{Deserialize, Serialize};

/// The WASI state of a paused program.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WasiState {
    /// `argv`, including `argv[0]`, as the program was started with.
    pub argv: Vec<String>,
    /// The environment the program was started with.
    pub env: Vec<(String, String)>,
    /// Preopened directories in preopen order: preopen `i` was given descriptor `3 + i`.
    pub preopens: Vec<Preopen>,
    /// Every open descriptor, ascending by number.
    pub fds: Vec<(u32, FdEntry)>,
    /// Closed descriptor numbers the next open reuses (WASI hands out the highest first), so that
    /// the resumed program is given the same numbers as it would have been.
    pub free_fds: Vec<u32>,
    /// The program's monotonic clock when it was checkpointed, in nanoseconds; the restored
    /// program's monotonic clock never reads less.
    pub monotonic_ns: u64,
}

/// A preopened directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preopen {
    /// The path the guest sees.
    pub guest: String,
    /// The host directory it was mapped to when the checkpoint was taken (a default for the
    /// restoring side, used only where it exists; see `mvvm restore --help`).
    pub host: String,
}

/// What an open descriptor refers to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FdEntry {
    /// Standard input (0), output (1) or error (2) of the process running the program.
    Stdio(u32),
    /// Preopened directory number `i` (an index into [`WasiState::preopens`]).
    Preopen(u32),
    /// A file or directory opened with `path_open`.
    File(OpenFile),
}

/// A descriptor opened with `path_open`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenFile {
    /// The preopen it lies under (an index into [`WasiState::preopens`]).
    pub preopen: u32,
    /// Its path relative to that preopen, `/`-separated.
    pub path: String,
    /// `lookupflags` it was opened with.
    pub dirflags: u32,
    /// `oflags` it was opened with (`creat`, `excl` and `trunc` are not repeated on restore).
    pub oflags: u16,
    /// Current `fdflags` (`append`, `dsync`, `nonblock`, `rsync`, `sync`).
    pub fdflags: u16,
    /// Base rights.
    pub rights_base: u64,
    /// Inheriting rights.
    pub rights_inheriting: u64,
    /// The file offset (0 for directories).
    pub offset: u64,
    /// Its size in bytes when the checkpoint was taken (0 for directories): a restore refuses a
    /// file that changed since, which the program could not expect.
    pub size: u64,
    /// Its modification time then, in nanoseconds since the Unix epoch (0 for directories).
    pub mtime_ns: u64,
}

/// Progress counters of the trigger, so that a resumed program counts on from where it stopped.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Site polls so far.
    pub polls: u64,
    /// Entries of the `-f` trigger's function so far.
    pub entries: u64,
}

//! The mvvm runtime: loads `.aot` files, runs WASI preview1 commands through one dispatch point,
//! and checkpoints and resumes them.
//!
//! * [`program::Program`] loads an `.aot` file for the native ISA or pulley64.
//! * [`session`] runs it ([`Program::run`](program::Program::run)), stops it at a [`host::Trigger`]
//!   into an ISA-neutral [`Snapshot`](mvvm_checkpoint::Snapshot), and resumes one
//!   ([`Program::resume`](program::Program::resume)).
//! * [`wasi`] is the WASI layer with its single dispatch point; [`wasi_state`] the descriptor
//!   mirror that images record and restores rebuild; [`host`] the `mvvm.*` imports.
//! * [`doorbell::Doorbell`] asks a running program to checkpoint (SIGUSR1, timers).

pub mod doorbell;
pub mod host;
pub mod program;
pub mod session;
pub mod wasi;
pub mod wasi_state;

pub use doorbell::Doorbell;
pub use host::Trigger;
pub use program::{CodeParts, Isa, Program};
pub use session::{CallResult, DirMap, Outcome, Output, ProbeEnd, Run, RunConfig};

/// Why the runtime could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// A file could not be read.
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    /// The `.aot` container is unusable.
    #[error(transparent)]
    Container(#[from] mvvm_contract::container::ContainerError),
    /// Bad input (module, flags, directories).
    #[error("{0}")]
    Input(String),
    /// wasmtime could not be set up or compile.
    #[error("{0:#}")]
    Engine(wasmtime::Error),
    /// Instantiation failed (e.g. an import the runtime does not provide).
    #[error("cannot instantiate the module: {0}")]
    Instantiate(String),
    /// The guest trapped.
    #[error("the guest trapped: {0}")]
    Trap(String),
    /// A snapshot could not be taken.
    #[error(transparent)]
    Capture(#[from] mvvm_checkpoint::CaptureError),
    /// A snapshot could not be applied.
    #[error(transparent)]
    Restore(#[from] mvvm_restore::RestoreError),
    /// This host's architecture is not supported natively.
    #[error("mvvm does not run natively on {0}; use --isa pulley64")]
    UnsupportedHost(&'static str),
}

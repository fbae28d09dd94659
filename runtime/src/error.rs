//! The runtime's one error type.

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
    /// An output (an image) could not be written.
    #[error("cannot write {0}")]
    Write(String),
    /// A call monitor stopped the run (in a multi-variant run: the variants diverged, and the
    /// monitor holds the report).
    #[error("the run was stopped by its call monitor")]
    Halted,
    /// This host's architecture is not supported natively.
    #[error("mvvm does not run natively on {0}; use --isa pulley64")]
    UnsupportedHost(&'static str),
}

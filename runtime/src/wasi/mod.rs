//! The WASI preview1 layer: the dispatch point every call passes through ([`dispatch`]) and the
//! descriptor mirror that lets a checkpoint record a program's open files and a restore reopen
//! them ([`mirror`], with [`rebuild`] putting every descriptor back at its number).
//!
//! The dispatch point is generic over the store's data ([`WasiHost`]), so this module does not
//! know what else a store holds.

pub mod calls;
pub mod dispatch;
pub mod mirror;
pub mod monitor;
pub mod rebuild;
pub mod sockets;

pub use dispatch::{add_to_linker, FUNCTIONS};
pub use mirror::{restore_dirs, DescriptorMirror};
use wasmtime_wasi::p1::WasiP1Ctx;

/// The import module name of WASI preview1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// What the dispatch point needs of a store's data, borrowed together.
pub struct WasiParts<'a> {
    /// The real WASI implementation's state.
    pub ctx: &'a mut WasiP1Ctx,
    /// The mirror of its descriptor table.
    pub descriptors: &'a mut DescriptorMirror,
    /// The call monitor, if the store has one.
    pub monitor: Option<&'a mut dyn monitor::CallMonitor>,
    /// The run's own sockets (`--tcplisten`).
    pub sockets: &'a mut sockets::Sockets,
}

/// Store data that holds a WASI context and its descriptor mirror.
pub trait WasiHost: 'static {
    /// Both, borrowed at once.
    fn wasi_parts(&mut self) -> WasiParts<'_>;
}

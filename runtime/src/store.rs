//! The data of every mvvm store: the WASI context, its descriptor mirror, the checkpoint
//! state and a call monitor. The WASI layer and the `mvvm.*` imports reach their parts through the traits they
//! define, so neither depends on this module.

use crate::checkpoint::{CheckpointState, HasCheckpointState};
use crate::wasi::monitor::CallMonitor;
use crate::wasi::sockets::Sockets;
use crate::wasi::{DescriptorMirror, WasiHost, WasiParts};
use wasmtime::{Engine, Linker};
use wasmtime_wasi::p1::WasiP1Ctx;

/// The data of every mvvm store.
pub struct HostState {
    /// WASI preview1 state.
    pub wasi: WasiP1Ctx,
    /// Checkpoint bookkeeping.
    pub checkpoint: CheckpointState,
    /// The dispatch point's mirror of the WASI descriptor table.
    pub descriptors: DescriptorMirror,
    /// What watches every WASI call, if anything does (a variant of a multi-variant run).
    pub monitor: Option<Box<dyn CallMonitor>>,
    /// The run's own sockets.
    pub sockets: Sockets,
}

impl HasCheckpointState for HostState {
    fn checkpoint_state(&self) -> &CheckpointState {
        &self.checkpoint
    }

    fn checkpoint_state_mut(&mut self) -> &mut CheckpointState {
        &mut self.checkpoint
    }
}

impl WasiHost for HostState {
    fn wasi_parts(&mut self) -> WasiParts<'_> {
        WasiParts {
            ctx: &mut self.wasi,
            descriptors: &mut self.descriptors,
            monitor: self
                .monitor
                .as_deref_mut()
                .map(|m| m as &mut dyn CallMonitor),
            sockets: &mut self.sockets,
        }
    }
}

/// A linker with every import an mvvm program may have: WASI preview1 through the dispatch point,
/// and the `mvvm.*` checkpoint functions.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    crate::wasi::add_to_linker(&mut linker)?;
    crate::checkpoint::imports::add_to_linker(&mut linker)?;
    Ok(linker)
}

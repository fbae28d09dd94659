//! A call monitor: what may watch, hold or answer every WASI call at the dispatch point.
//!
//! A store with a monitor hands it each call before the real implementation runs, and each
//! result after. The monitor may let the call run, answer it itself (a follower variant, which
//! never touches the host), or halt the variant. Multi-variant execution (the `mvx` module) is the
//! monitor the runtime has; the dispatch point knows only this trait.

use super::dispatch::WasiCall;
use std::any::Any;

/// What the dispatch point does with a call, as its monitor decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Before {
    /// Run the real implementation (and report its result to [`CallMonitor::after`]).
    Execute,
    /// Return this errno to the guest without running the call: the monitor has already written
    /// whatever the call writes into guest memory.
    Answered(i32),
}

/// The variant must stop now: the monitor has found a reason (a divergence) and will say it when
/// asked, through [`CallMonitor::halted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Halt;

/// The error that unwinds a halted variant out of the guest. The runtime turns it into
/// [`RuntimeError::Halted`](crate::error::RuntimeError::Halted); the monitor holds the reason.
#[derive(Debug, thiserror::Error)]
#[error("the call monitor stopped this variant")]
pub struct Halted;

/// Watches every WASI call of one store.
pub trait CallMonitor: Any + Send {
    /// Called before the real implementation, with the call's raw arguments and the guest's
    /// memory (which an answering monitor writes the call's outputs into).
    fn before(&mut self, call: WasiCall<'_>, memory: &mut [u8]) -> Result<Before, Halt>;

    /// Called after the real implementation ran and returned `errno` (successful or not), with
    /// the memory it wrote into. Not called for `proc_exit`, which does not return.
    fn after(&mut self, call: WasiCall<'_>, memory: &[u8], errno: i32) -> Result<(), Halt>;

    /// Called once after [`CallMonitor::before`] or [`CallMonitor::after`] halted the variant,
    /// with the wasm call stack it stopped in, so that a report can show it.
    fn halted(&mut self, stack: &wasmtime::WasmBacktrace);
}

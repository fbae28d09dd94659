//! Asking a running program to checkpoint from outside: the doorbell.
//!
//! Ringing sets a flag the next site poll answers, and bumps the engine's epoch. Every function
//! entry and loop header checks the epoch, so the store's epoch callback runs promptly and zeroes
//! the guest's countdown: the very next site of any kind polls, even in code without counted loops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Engine;

/// A handle that asks a program to checkpoint at its next site.
#[derive(Clone)]
pub struct Doorbell {
    flag: Arc<AtomicBool>,
    engine: Engine,
}

impl Doorbell {
    pub(crate) fn new(flag: Arc<AtomicBool>, engine: Engine) -> Doorbell {
        Doorbell { flag, engine }
    }

    /// Rings: the program checkpoints at its next site. Safe from any thread.
    pub fn ring(&self) {
        self.flag.store(true, Ordering::Release);
        self.engine.increment_epoch();
    }

    /// Rings whenever the process receives `signal` (e.g. `SIGUSR1`), from a background thread,
    /// until the returned handle is closed or dropped with the process.
    pub fn ring_on_signal(&self, signal: i32) -> std::io::Result<signal_hook::iterator::Handle> {
        let mut signals = signal_hook::iterator::Signals::new([signal])?;
        let handle = signals.handle();
        let bell = self.clone();
        std::thread::Builder::new()
            .name("mvvm-doorbell".into())
            .spawn(move || {
                for _ in signals.forever() {
                    spdlog::debug!("signal {signal}: checkpoint requested");
                    bell.ring();
                }
            })?;
        Ok(handle)
    }

    /// Rings after `delay`, and then every `delay` again if `repeat`, from a background thread.
    pub fn ring_after(&self, delay: Duration, repeat: bool) -> std::io::Result<()> {
        let bell = self.clone();
        std::thread::Builder::new()
            .name("mvvm-timer".into())
            .spawn(move || loop {
                std::thread::sleep(delay);
                bell.ring();
                if !repeat {
                    break;
                }
            })?;
        Ok(())
    }
}

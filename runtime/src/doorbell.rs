//! Asking a running program to checkpoint from outside: the doorbell.
//!
//! Ringing raises a flag that the next site poll answers, and zeroes the countdown of every run
//! attached to the bell. A checkpointable module keeps its countdown in a memory page of its own
//! (`mvvm:countdown`, see `contract/FORMAT.md`), which the bell writes directly, from whatever thread
//! rings it: every uncounted site (an import call, a function entry, the header of a loop with
//! calls) sees the zero the next time it is reached, and a loop without calls within 2^K
//! iterations, when it re-reads the countdown. No check beyond the sites' own runs in
//! the guest (the engine's epoch interruption, which would add one to every loop header and
//! function entry of plain and instrumented code alike, stays off).

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A handle that asks a program to checkpoint at its next site. Clones ring the same bell.
#[derive(Clone, Default)]
pub struct Doorbell {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    rung: AtomicBool,
    /// The countdowns of the runs attached now, by attachment id.
    cells: Mutex<Vec<(u64, CountdownCell)>>,
    next_id: AtomicU64,
}

/// The guest's countdown word, inside its `mvvm:countdown` memory.
///
/// The guest reads it with plain loads while the host (or a doorbell, on another thread) stores
/// it; every host access is atomic. This is how Wasmtime itself shares its epoch counter with
/// compiled code.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CountdownCell(NonNull<AtomicI32>);

// SAFETY: the cell points into a memory that outlives every use of it: the store's data holds the
// `Attachment` that lets a doorbell reach it, and a store drops its data before its instances'
// memories; the store itself only uses it while it is alive. All accesses are atomic.
unsafe impl Send for CountdownCell {}
// SAFETY: as above.
unsafe impl Sync for CountdownCell {}

impl CountdownCell {
    /// The countdown at `offset` of `memory`, or `None` if the memory cannot hold it there, or
    /// might move (it must have a maximum of one page, so that it never grows).
    pub(crate) fn new(
        store: impl wasmtime::AsContext,
        memory: &wasmtime::Memory,
        offset: u64,
    ) -> Option<CountdownCell> {
        let ty = memory.ty(&store);
        if ty.is_shared() || ty.maximum() != Some(1) || ty.page_size_log2() != 16 {
            return None;
        }
        let offset = usize::try_from(offset).ok()?;
        if offset.checked_add(4)? > memory.data_size(&store) || offset % 4 != 0 {
            return None;
        }
        // The memory's base is page-aligned, so the word at a multiple of 4 is aligned for
        // `AtomicI32`.
        let ptr = memory
            .data_ptr(&store)
            .wrapping_add(offset)
            .cast::<AtomicI32>();
        NonNull::new(ptr).map(CountdownCell)
    }

    fn atomic(&self) -> &AtomicI32 {
        // SAFETY: see the `Send` impl: the memory outlives every holder of the cell.
        unsafe { self.0.as_ref() }
    }

    /// The countdown's value.
    pub(crate) fn get(&self) -> i32 {
        self.atomic().load(Ordering::SeqCst)
    }

    /// Sets the countdown.
    pub(crate) fn set(&self, v: i32) {
        self.atomic().store(v, Ordering::SeqCst)
    }
}

/// Keeps a run's countdown reachable from a doorbell; dropping it detaches the run.
pub(crate) struct Attachment {
    inner: Arc<Inner>,
    id: u64,
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let mut cells = self
            .inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cells.retain(|(id, _)| *id != self.id);
    }
}

impl Doorbell {
    /// A new bell, not rung and attached to no run.
    pub fn new() -> Doorbell {
        Doorbell::default()
    }

    /// Rings: the program checkpoints at its next site. Safe from any thread.
    pub fn ring(&self) {
        // The flag first: a site that sees the zero must find the flag raised when it polls.
        self.inner.rung.store(true, Ordering::SeqCst);
        let cells = self
            .inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (_, c) in cells.iter() {
            c.set(0);
        }
    }

    /// Whether the bell has been rung and not yet answered.
    pub fn is_rung(&self) -> bool {
        self.inner.rung.load(Ordering::SeqCst)
    }

    /// Answers the bell: whether it was rung, lowering it.
    pub(crate) fn answer(&self) -> bool {
        self.inner.rung.swap(false, Ordering::SeqCst)
    }

    /// Lets rings reach `cell` until the returned attachment is dropped.
    pub(crate) fn attach(&self, cell: CountdownCell) -> Attachment {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .cells
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, cell));
        Attachment {
            inner: self.inner.clone(),
            id,
        }
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

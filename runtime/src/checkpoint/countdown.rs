//! The countdown every site tests: where an instance keeps it, and reading and setting it.
//!
//! A site polls the host when the countdown is at most zero; the host sets it to `2^K` (or to zero
//! while a trigger that needs every poll is armed), and a doorbell zeroes it from any thread.

use super::HasCheckpointState;
use crate::doorbell::CountdownCell;
use mvvm_contract::abi;
use wasmtime::{AsContext, AsContextMut, Extern, Val};

/// Where the guest keeps its countdown (see [`abi::EXPORT_COUNTDOWN`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Countdown {
    /// The `mvvm:countdown` memory of a checkpointable module.
    Cell(CountdownCell),
    /// The `mvvm:countdown` global of a module instrumented for benchmarks only
    /// ([`Mode::PollsOnly`](mvvm_aot::transform::Mode::PollsOnly)): a doorbell rung while such a
    /// module runs is answered at the next poll its countdown brings.
    Global(wasmtime::Global),
}

impl Countdown {
    /// The countdown `instance` exports, if it exports one mvvm can use.
    pub(crate) fn of(
        mut store: impl AsContextMut,
        instance: &wasmtime::Instance,
    ) -> Option<Countdown> {
        match instance.get_export(&mut store, abi::EXPORT_COUNTDOWN)? {
            Extern::Memory(m) => {
                CountdownCell::new(&store, &m, abi::COUNTDOWN_OFFSET).map(Countdown::Cell)
            }
            Extern::Global(g) => Some(Countdown::Global(g)),
            _ => None,
        }
    }
}

fn countdown_of<T: HasCheckpointState>(
    store: &impl AsContext<Data = T>,
) -> wasmtime::Result<Countdown> {
    store
        .as_context()
        .data()
        .checkpoint_state()
        .countdown
        .ok_or_else(|| wasmtime::format_err!("instrumented module lacks {}", abi::EXPORT_COUNTDOWN))
}

/// Reads the guest's countdown.
pub(crate) fn get<T: HasCheckpointState>(
    mut store: impl AsContextMut<Data = T>,
) -> wasmtime::Result<i32> {
    match countdown_of(&store)? {
        Countdown::Cell(c) => Ok(c.get()),
        Countdown::Global(g) => {
            let v = g.get(&mut store);
            v.i32()
                .ok_or_else(|| wasmtime::format_err!("guest countdown global holds {v:?}"))
        }
    }
}

/// Sets the guest's countdown to `v`, unless the doorbell is ringing: then to zero, so that a
/// ring that came while the host was busy still reaches the next site.
pub(crate) fn set<T: HasCheckpointState>(
    mut store: impl AsContextMut<Data = T>,
    v: i32,
) -> wasmtime::Result<()> {
    match countdown_of(&store)? {
        Countdown::Cell(c) => {
            c.set(v);
            // A ring between the host's last look at the flag and the store above would have
            // its zero overwritten: look again now that the value is in place.
            if store.as_context().data().checkpoint_state().doorbell_rung() {
                c.set(0);
            }
            Ok(())
        }
        Countdown::Global(g) => {
            let v = if store.as_context().data().checkpoint_state().doorbell_rung() {
                0
            } else {
                v
            };
            g.set(&mut store, Val::I32(v))
        }
    }
}

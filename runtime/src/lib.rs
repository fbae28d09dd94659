//! The mvvm runtime: loads `.aot` files, runs WASI preview1 commands through one dispatch point,
//! and checkpoints and resumes them.
//!
//! The modules form layers; each uses only the ones above it in this list:
//!
//! * [`error`], [`config`] (what a run is given: [`RunConfig`], [`DirMap`], [`Output`],
//!   [`Trigger`]) and [`doorbell`] (asking a running program to checkpoint, from any thread):
//!   plain data and leaves; [`link`], the authenticated channel between mvvm processes.
//! * [`checkpoint`]: a run's checkpoint state, the countdown and the `mvvm.*` imports;
//!   [`wasi`]: the WASI dispatch point and the descriptor mirror. Both are generic over the
//!   store's data, through the traits they define.
//! * [`store`]: the data of every store ([`store::HostState`]), which holds both.
//! * [`session`]: one instance in its store, run, unwound, captured, rewound.
//! * [`program`]: [`Program`], a loaded `.aot`, and everything it can do (run, resume, probe).
//! * [`mvx`]: multi-variant execution, programs run side by side and compared at the WASI
//!   boundary by a call monitor ([`wasi::monitor`]) in each variant's store.
//!
//! The node daemon and migration will live above `program`, beside `mvx`.

pub mod checkpoint;
pub mod config;
pub mod doorbell;
pub mod error;
pub mod link;
pub mod mvx;
pub mod program;
pub mod session;
pub mod store;
mod trap;
pub mod wasi;

pub use config::{DirMap, Output, RunConfig, Trigger};
pub use doorbell::Doorbell;
pub use error::RuntimeError;
pub use program::{CodeParts, Isa, Program};
pub use session::{CallResult, OnCheckpoint, Outcome, ProbeEnd, Run};

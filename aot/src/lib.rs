//! `mvvm-aot`: the checkpoint-site transform and cross-ISA precompilation.
//!
//! * [`transform`] rewrites a module so that it can unwind its call stack into the host at checkpoint
//!   sites and rewind it later, on any ISA.
//! * [`build`] instruments a module, precompiles it for every target with the shared
//!   [`engine_config`](mvvm_contract::engine_config) and packs the result into an
//!   [`AotFile`](mvvm_contract::AotFile).
//!
//! * [`variant`] makes variants of a module for multi-variant execution (`mvvm mvx`): the same
//!   program with its C stack moved.
//!
//! What the transform and the runtime agree on (the ABI, the site table, the `.aot` container) lives
//! in `mvvm-contract`.

pub mod build;
pub mod transform;
pub mod variant;

pub use transform::instrument;

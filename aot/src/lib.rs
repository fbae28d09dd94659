//! `mvvm-aot`: the checkpoint-site transform, cross-ISA precompilation, and the `.aot` container.
//!
//! * [`transform`] rewrites a module so that it can unwind its call stack into the host at checkpoint
//!   sites and rewind it later, on any ISA.
//! * [`config::engine_config`] is the one wasmtime configuration shared with the runtime.
//! * [`container`] reads and writes `.aot` files; [`build`] ties the three together.
//! * [`sealed`] is the magic/version/length/CRC framing shared by `.aot` files and images.
//! * [`abi`] is the contract between instrumented modules and the runtime.

pub mod abi;
pub mod build;
pub mod config;
pub mod container;
pub mod fsutil;
pub mod logging;
pub mod sealed;
pub mod transform;

pub use config::{engine_config, EngineOptions, Target};
pub use container::AotFile;
pub use transform::{instrument, Policy};

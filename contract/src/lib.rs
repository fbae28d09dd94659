//! `mvvm-contract`: what the mvvm compiler (`mvvm-aot`) and the runtime (`mvvm`) must agree on, in
//! one small crate both depend on, so that neither spells a name or a byte layout twice.
//!
//! * [`abi`]: the imports and reserved exports an instrumented module has, and the unwind states.
//! * [`info`]: the site table and function list ([`ModuleInfo`]) every `.aot` file carries.
//! * [`config`]: the one wasmtime configuration; an artifact loads only into an engine built the
//!   same way, so both sides call [`engine_config`].
//! * [`sealed`]: the magic/version/length/CRC framing shared by `.aot` files and images.
//! * [`container`]: reading and writing `.aot` files ([`AotFile`]).
//! * [`file`]: atomic file writes, which every format's writer uses.
//! * [`logging`]: the log conventions both binaries follow (stderr only, `SPDLOG_LEVEL`), so a user
//!   meets one behaviour whichever tool they run.
//! * [`status`]: the exit statuses both binaries use, which scripts depend on.
//!
//! The byte layouts are documented in `contract/FORMAT.md`.

pub mod abi;
pub mod config;
pub mod container;
pub mod file;
pub mod info;
pub mod logging;
pub mod sealed;
pub mod status;

pub use config::{engine_config, EngineOptions, Target};
pub use container::AotFile;
pub use info::{FunctionInfo, ModuleInfo, Policy, SiteInfo, SiteKind};

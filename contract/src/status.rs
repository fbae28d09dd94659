//! The exit statuses of `mvvm` and `mvvm-aot`, which a script can act on.
//!
//! A guest's own status (0 to 125: WASI reserves the rest) passes through untouched, so each of
//! mvvm's own statuses lies above 125, where no guest status can be. The README's exit-status
//! table lists them; it and this module must agree.

/// Bad input or usage: a missing or damaged file, a bad flag, a module the transform refuses, an
/// image that does not fit the program. Nothing was run, or the run was not started.
pub const BAD_INPUT: u8 = 126;

/// The guest trapped (or called `proc_exit` with a status WASI does not allow, which WASI defines
/// as a trap). The same status wasmtime gives: 128 + SIGABRT.
pub const TRAP: u8 = 134;

/// `mvvm run`: the program was stopped at a checkpoint (SIGUSR1, `mvvm checkpoint --pid`) and its
/// image written. It did not finish; `mvvm restore` resumes it.
pub const CHECKPOINTED: u8 = 160;

/// `mvvm checkpoint`: the program ended before the trigger fired. No image was written.
pub const NOT_TRIGGERED: u8 = 161;

/// `mvvm mvx`: a follower diverged from the master. Nothing of the divergent call was done, every
/// variant was stopped, and the report is on stderr.
pub const DIVERGED: u8 = 162;

/// mvvm itself failed while the input was good: an image or output file could not be written, the
/// engine could not be set up.
pub const HOST_FAILURE: u8 = 163;

/// Whether `status` is one a guest can exit with.
pub fn is_guest_status(status: i32) -> bool {
    (0..126).contains(&status)
}

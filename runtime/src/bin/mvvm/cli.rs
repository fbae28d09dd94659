//! The `mvvm` command line: its subcommands and flags.

use clap::{Args, Parser, Subcommand, ValueEnum};
use mvvm_runtime::Isa;
use std::path::PathBuf;
use std::time::Duration;

/// mvvm: a WebAssembly runtime that can stop a program at a checkpoint site, write its whole state
/// to an ISA-neutral image, and resume it on x86_64, aarch64 or pulley64.
///
/// Build programs with `mvvm-aot`, then:
///   mvvm run -t app.aot -- ARGS...               run natively
///   mvvm run -t app.aot --isa pulley64           run on the pulley64 interpreter
///   mvvm checkpoint -t app.aot -f 193 -x 10      stop at the 10th entry of function 193, write app.ckpt
///   mvvm checkpoint -t app.aot -c 5000           stop at the 5000th site poll
///   mvvm checkpoint -t app.aot --after 30s       stop after 30 s (or at SIGUSR1, whichever first)
///   mvvm restore -t app.aot                      resume app.ckpt, on this or any other ISA
///   mvvm inspect app.aot | app.ckpt              describe a program or an image
#[derive(Parser, Debug)]
#[command(name = "mvvm", version, verbatim_doc_comment)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a WASI preview1 command; mvvm exits with the guest's exit status.
    Run(RunArgs),
    /// Run a program until a trigger fires, then write its state to an image and exit 0.
    ///
    /// Triggers: -f FUNC [-x N] (the Nth entry of a function), -c N (the Nth site poll), --after
    /// DURATION, and SIGUSR1 (always armed: `kill -USR1 PID` checkpoints at the next site). The
    /// image goes to -o, or beside APP.aot as APP.ckpt, where `mvvm restore -t APP.aot` finds it.
    /// If the program exits before any trigger fires, no image is written and mvvm exits with
    /// the guest's status.
    #[command(verbatim_doc_comment)]
    Checkpoint(CheckpointArgs),
    /// Resume a program from an image, on any ISA, and exit with the guest's status.
    ///
    /// The program gets the arguments and environment it was started with, and its open files
    /// back at their offsets. Host directories come from --dir HOST::GUEST for each guest
    /// directory the program had; without any --dir, the directories it was checkpointed with
    /// are used where they exist on this host.
    #[command(verbatim_doc_comment)]
    Restore(RestoreArgs),
    /// Describe an .aot file (targets, policy, sites) or an image (call stack, memory, fds).
    Inspect {
        /// An .aot file or a checkpoint image.
        file: PathBuf,
        /// For an image: the .aot it was taken from, for function names and site kinds
        /// (default: the .aot beside the image, e.g. app.aot for app.ckpt).
        #[arg(short = 't', long = "target-file", value_name = "APP.aot")]
        target: Option<PathBuf>,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub(crate) enum IsaArg {
    /// The host's own ISA.
    Native,
    /// wasmtime's portable pulley64 interpreter.
    Pulley64,
}

impl From<IsaArg> for Isa {
    fn from(a: IsaArg) -> Isa {
        match a {
            IsaArg::Native => Isa::Native,
            IsaArg::Pulley64 => Isa::Pulley64,
        }
    }
}

#[derive(Args, Debug)]
pub(crate) struct ProgramArgs {
    /// The program: an .aot file from mvvm-aot (`run` also takes a .wasm/.wat, uninstrumented).
    #[arg(short = 't', long = "target-file", value_name = "APP.aot")]
    pub(crate) target: PathBuf,
    /// Which ISA to run on.
    #[arg(long, value_enum, default_value_t = IsaArg::Native)]
    pub(crate) isa: IsaArg,
    /// Preopen a host directory, seen by the guest as GUEST (default: the host path). Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub(crate) dirs: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) program: ProgramArgs,
    /// Set an environment variable for the guest. Repeatable.
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// Guest arguments, comma-separated (MVVM style): -a one,two,three.
    #[arg(
        short = 'a',
        long = "args",
        value_name = "A,B,C",
        value_delimiter = ','
    )]
    pub(crate) args: Vec<String>,
    /// The guest's argv[0] (default: the program's file name).
    #[arg(long, value_name = "NAME")]
    pub(crate) argv0: Option<String>,
    /// Guest arguments, as a shell passes them.
    #[arg(last = true, value_name = "ARGS")]
    pub(crate) rest: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct CheckpointArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Checkpoint at an entry of this function: an index in the wasm function index space
    /// (imports first) or a name from the name section. Needs --enable-checkpoint sites.
    #[arg(
        short = 'f',
        long = "function",
        value_name = "FUNC",
        conflicts_with = "polls"
    )]
    pub(crate) function: Option<String>,
    /// With -f: which entry (1-based).
    #[arg(
        short = 'x',
        long = "nth",
        value_name = "N",
        default_value_t = 1,
        requires = "function"
    )]
    pub(crate) nth: u64,
    /// Checkpoint at the Nth site poll (1-based; deterministic: every site polls while armed).
    #[arg(short = 'c', long = "count", value_name = "N", id = "polls")]
    pub(crate) polls: Option<u64>,
    /// Checkpoint at the first site after this much time, e.g. 500ms, 2s, 1m.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) after: Option<Duration>,
    /// Keep running after each checkpoint; the trigger fires again every N polls, N entries or
    /// DURATION, and SIGUSR1 at any time, each writing a newer image over the last.
    #[arg(long)]
    pub(crate) leave_running: bool,
    /// Where to write the image (default: APP.ckpt beside APP.aot).
    #[arg(short = 'o', long = "output", value_name = "IMAGE")]
    pub(crate) output: Option<PathBuf>,
    /// Compress the image with zstd at this level (1–19; 3 if given without a value).
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "3",
          value_parser = clap::value_parser!(i32).range(1..=19))]
    pub(crate) zstd: Option<i32>,
}

#[derive(Args, Debug)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) program: ProgramArgs,
    /// The image (default: APP.ckpt beside APP.aot).
    #[arg(short = 'i', long = "image", value_name = "IMAGE")]
    pub(crate) image: Option<PathBuf>,
}

//! The `mvvm` command line: its subcommands and flags.

use clap::{Args, Parser, Subcommand};
use mvvm_runtime::Isa;
use std::path::PathBuf;
use std::time::Duration;

/// mvvm: a WebAssembly runtime that can stop a program at a checkpoint site, write its whole state
/// to an ISA-neutral image, and resume it on x86_64, aarch64 or pulley64.
///
/// Build programs with `mvvm-aot`, then (options before the program, the guest's arguments after):
///   mvvm run app.aot ARGS...                   run natively (SIGUSR1 writes app.ckpt and stops it)
///   mvvm run --isa pulley64 app.aot            run on the pulley64 interpreter
///   mvvm checkpoint -f 193 -x 10 app.aot       stop at the 10th entry of function 193, write app.ckpt
///   mvvm checkpoint -c 5000 app.aot            stop at the 5000th site poll
///   mvvm checkpoint --after 30 app.aot         stop after 30 s (or at SIGUSR1, whichever first)
///   mvvm checkpoint --pid PID --wait           checkpoint a running `mvvm run`, wait for its image
///   mvvm restore app.aot                       resume app.ckpt, on this or any other ISA
///   mvvm inspect app.aot | app.ckpt            describe a program or an image (--json for scripts)
///   mvvm mvx --follower app.aot@pulley64 app.aot   run two variants, compared at every WASI call
///   mvvm mvx --listen 127.0.0.1:7000 app.aot   ... with the follower elsewhere: mvvm mvx-follower
///
/// Exit status: the guest's own (0–125); 126 bad input or usage; 134 the guest trapped; 160 `run`
/// stopped at a checkpoint (image written); 161 `checkpoint`'s trigger never fired (no image);
/// 162 `mvx`'s variants diverged; 163 mvvm failed (e.g. the image could not be written).
#[derive(Parser, Debug)]
#[command(name = "mvvm", version, verbatim_doc_comment)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Say more on stderr: -v what mvvm does (info), -vv debug, -vvv trace. SPDLOG_LEVEL (trace,
    /// debug, info, warn, error, off) sets the same; the more verbose of the two wins.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Run a WASI preview1 command; mvvm exits with the guest's exit status.
    ///
    /// An instrumented program answers SIGUSR1 (or `mvvm checkpoint --pid`) by writing its image
    /// at the next site (--image, or APP.ckpt beside APP.aot) and exiting with status 160.
    #[command(verbatim_doc_comment)]
    Run(RunCommand),
    /// Run a program until a trigger fires, then write its state to an image and exit 0.
    ///
    /// Triggers: -f FUNC [-x N] (the Nth entry of a function), -c N (the Nth site poll), --after
    /// DURATION, and SIGUSR1 (always armed: `kill -USR1 PID` checkpoints at the next site). The
    /// image goes to -o, or beside APP.aot as APP.ckpt, where `mvvm restore APP.aot` finds it.
    /// If the program exits before any trigger fires, no image is written and mvvm exits 161.
    ///
    /// With --pid, checkpoints a program that an `mvvm run` is already running instead.
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
    /// Run a program and follower variants of it side by side, comparing every WASI call.
    ///
    /// The master runs as `mvvm run` runs it and is the only variant that touches the host;
    /// each --follower makes the same calls, which are matched by content (the bytes written,
    /// the paths opened) and answered with the master's results. Under the default policy no
    /// write, send, path change or exit happens before every follower has reached it with the
    /// same content. If they differ, nothing of that call is done, every variant stops, a report
    /// goes to stderr, and mvvm exits 162. Otherwise mvvm exits with the guest's status.
    ///
    ///   mvvm mvx --follower app.aot@pulley64 app.aot ARGS...   the same program on two ISAs
    ///   mvvm mvx --follower variant.aot app.aot                a diversified or shifted variant
    ///
    /// With --listen ADDR, followers may also run in other processes, on this host or another of
    /// any ISA, each started with `mvvm mvx-follower --connect ADDR F.aot`; the master starts
    /// when --followers N of them have joined, or at once with --join-after, and they join it
    /// while it runs, from its snapshot. Both ends hold the same key (--key-file or MVVM_KEY),
    /// which authenticates every message; without one, only loopback is allowed.
    ///
    ///   mvvm mvx --listen 0.0.0.0:7000 --key-file k app.aot     on the server
    ///   mvvm mvx-follower --connect server:7000 --key-file k app.aot   on an aarch64 box
    ///   mvvm mvx --listen 0.0.0.0:7000 --key-file k --followers 2 --join-after 10 app.aot
    #[command(verbatim_doc_comment)]
    Mvx(MvxArgs),
    /// Run a follower variant for an `mvvm mvx --listen` master elsewhere.
    ///
    /// The follower gets the program's arguments, environment and directory names from the
    /// master, touches nothing of this host, and exits with the program's status once it has
    /// agreed with the master to the end; 162 if the variants diverged (the report names where),
    /// or if the master stopped the run; 126 if the master refused it (a key, a version); 163 if
    /// the link failed (a closed connection, a frame that did not authenticate).
    #[command(name = "mvx-follower", verbatim_doc_comment)]
    MvxFollower(MvxFollowerArgs),
    /// Describe an .aot file (targets, policy, sites) or an image (call stack, memory, fds).
    Inspect(InspectArgs),
    /// Print a completion script for a shell, e.g. `mvvm completions bash > /etc/bash_completion.d/mvvm`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where a program runs, and what it sees of the host's file system.
#[derive(Args, Debug)]
pub(crate) struct PlaceArgs {
    /// The program, as an option (the older spelling of the positional APP; then every positional
    /// argument goes to the guest).
    #[arg(short = 't', long = "target-file", value_name = "APP.aot")]
    pub(crate) target: Option<PathBuf>,
    /// Which ISA to run on: native (this host's: x86_64 or aarch64, which may also be named) or
    /// pulley64, wasmtime's portable interpreter.
    #[arg(long, value_name = "ISA", default_value = "native", value_parser = parse_isa)]
    pub(crate) isa: Isa,
    /// Preopen a host directory, seen by the guest as GUEST (default: the host path). Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    pub(crate) dirs: Vec<String>,
    /// Print none of mvvm's own lines on success (errors and warnings still print).
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) place: PlaceArgs,
    /// Set an environment variable for the guest; NAME alone passes the host's value. Repeatable.
    #[arg(short = 'e', long = "env", value_name = "NAME[=VAL]")]
    pub(crate) env: Vec<String>,
    /// Guest arguments, comma-separated (the older spelling; commas cannot be escaped).
    #[arg(
        short = 'a',
        long = "args",
        value_name = "A,B,C",
        value_delimiter = ',',
        hide = true
    )]
    pub(crate) args: Vec<String>,
    /// The guest's argv[0] (default: the program's file name).
    #[arg(long, value_name = "NAME")]
    pub(crate) argv0: Option<String>,
    /// The export to call instead of `_start` (it is called with zero arguments).
    #[arg(long, value_name = "FUNC")]
    pub(crate) invoke: Option<String>,
    /// The program, then the guest's arguments: everything after APP goes to the guest.
    #[arg(value_name = "APP [ARGS]", trailing_var_arg = true)]
    pub(crate) positional: Vec<String>,
}

#[derive(Args, Debug)]
pub(crate) struct RunCommand {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// Where SIGUSR1 writes the image (default: APP.ckpt beside APP.aot).
    #[arg(long = "image", value_name = "IMAGE")]
    pub(crate) image: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) listen: ListenArgs,
}

/// A listening socket for the guest.
#[derive(Args, Debug)]
pub(crate) struct ListenArgs {
    /// Listen on ADDR (e.g. 127.0.0.1:8080) and hand the guest the socket at the descriptor after
    /// its directories (3 without --dir), as wasmtime's --tcplisten does; the guest accepts
    /// connections on it. A program with sockets cannot be checkpointed yet: SIGUSR1 is not armed.
    #[arg(long = "tcplisten", value_name = "ADDR")]
    pub(crate) tcplisten: Option<String>,
}

#[derive(Args, Debug)]
pub(crate) struct MvxArgs {
    #[command(flatten)]
    pub(crate) run: RunArgs,
    /// A follower variant in this process: an .aot (the master's or a variant of it), optionally
    /// with the ISA it runs on (native or pulley64; default native). Repeatable; at least one,
    /// unless followers join from elsewhere (--listen).
    #[arg(
        long = "follower",
        value_name = "F.aot[@ISA]",
        required_unless_present = "listen"
    )]
    pub(crate) followers: Vec<String>,
    /// Wait on this address for followers started elsewhere with `mvvm mvx-follower --connect`
    /// before the master starts, or, with --join-after, while it runs (port 0: the system picks
    /// one; the address is printed).
    #[arg(long, value_name = "ADDR")]
    pub(crate) listen: Option<String>,
    /// With --listen: how many remote followers to wait for (with --join-after: how many may
    /// take part at once).
    #[arg(long = "followers", value_name = "N", default_value_t = 1, requires = "listen",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) remote_followers: u32,
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    #[command(flatten)]
    pub(crate) socket: ListenArgs,
    /// Start the followers only after the master has run this long (e.g. 1, 500ms): the master
    /// starts at once and stops at its next site for an in-memory snapshot, which each follower
    /// resumes (the same module or a variant whose frames fit it); from then on they are
    /// compared. With --listen, remote followers may join at any time after it, each from a
    /// snapshot taken at the master's next site, and one that is lost (its process killed, its
    /// link broken) frees its place for another while a follower remains to compare with.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) join_after: Option<Duration>,
    /// How long the master waits at one event for a follower (e.g. 30, 500ms) before it counts
    /// the follower as lost: a remote late follower is let go while another remains, and any
    /// other stops the run as a divergence, so that a follower stuck in a loop cannot hold the
    /// master for ever. Default: no limit.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub(crate) follower_timeout: Option<Duration>,
    /// When the master waits for its followers: output-lockstep before every call that acts on
    /// the world, so that nothing leaves unagreed; lockstep before every call; loose never (a
    /// divergence is found after the master's output may have left).
    #[arg(long, value_enum, default_value = "output-lockstep")]
    pub(crate) policy: PolicyArg,
}

/// The pre-shared key of a link between mvvm processes.
#[derive(Args, Debug)]
pub(crate) struct KeyArgs {
    /// The pre-shared key both ends must hold (at least 16 bytes; trailing line ends are not
    /// part of it). Default: the MVVM_KEY environment variable; without either, only loopback
    /// addresses are allowed, since anyone who reached the port could take part.
    #[arg(long = "key-file", value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct MvxFollowerArgs {
    /// The follower's program: the master's .aot or a variant of it.
    #[arg(short = 't', long = "target-file", value_name = "F.aot")]
    pub(crate) target: Option<PathBuf>,
    /// The follower's program, as a positional argument.
    #[arg(value_name = "F.aot", conflicts_with = "target")]
    pub(crate) app: Option<PathBuf>,
    /// Which ISA to run on: native or pulley64.
    #[arg(long, value_name = "ISA", default_value = "native", value_parser = parse_isa)]
    pub(crate) isa: Isa,
    /// The master's address, as its --listen gave it. A master not yet listening is retried for
    /// a few seconds, so both may be started at once.
    #[arg(long, value_name = "ADDR")]
    pub(crate) connect: String,
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// Print none of mvvm's own lines on success.
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

/// `--policy`'s values.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub(crate) enum PolicyArg {
    /// Wait before every write, send, path or descriptor change and exit (the default).
    OutputLockstep,
    /// Wait before every call.
    Lockstep,
    /// Never wait; compare as the followers catch up.
    Loose,
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
    /// Checkpoint at the first site after this long: seconds (50, 0.5) or with a unit (500ms, 1m).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
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
    /// Checkpoint the program an `mvvm run` with this process id is running (it writes the image
    /// where its own --image says, then exits 160), instead of starting one.
    #[arg(long, value_name = "PID", conflicts_with_all = ["function", "polls", "after", "leave_running", "output", "zstd"])]
    pub(crate) pid: Option<u32>,
    /// With --pid: wait until the image is written and print where it went.
    #[arg(long, requires = "pid")]
    pub(crate) wait: bool,
}

#[derive(Args, Debug)]
pub(crate) struct RestoreArgs {
    #[command(flatten)]
    pub(crate) place: PlaceArgs,
    /// The image (default: APP.ckpt beside APP.aot).
    #[arg(short = 'i', long = "image", value_name = "IMAGE")]
    pub(crate) image: Option<PathBuf>,
    /// Resume even if an open file's size or modification time changed since the checkpoint (a
    /// file shorter than where the program had read or written to is refused all the same).
    #[arg(long)]
    pub(crate) allow_changed_files: bool,
    /// The program the image was taken from.
    #[arg(value_name = "APP")]
    pub(crate) app: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(crate) struct InspectArgs {
    /// An .aot file or a checkpoint image.
    pub(crate) file: PathBuf,
    /// For an image: the .aot it was taken from, for function names and site kinds
    /// (default: the .aot beside the image, e.g. app.aot for app.ckpt).
    #[arg(short = 't', long = "target-file", value_name = "APP.aot")]
    pub(crate) target: Option<PathBuf>,
    /// Print JSON instead (its shape is in docs/INSPECT.md).
    #[arg(long)]
    pub(crate) json: bool,
    /// For an .aot file: list every function with its index and name, the names `-f` takes.
    #[arg(long)]
    pub(crate) functions: bool,
}

/// An ISA name: `native`, `pulley64`, or the host's own (`x86_64`, `aarch64`); an `.aot` holds
/// code for the other native ISA, but only a host of that ISA can run it.
pub(crate) fn parse_isa(s: &str) -> Result<Isa, String> {
    let host = std::env::consts::ARCH;
    match s {
        "native" => Ok(Isa::Native),
        "pulley64" | "pulley" => Ok(Isa::Pulley64),
        "x86_64" | "aarch64" if s == host => Ok(Isa::Native),
        "x86_64" | "aarch64" => Err(format!(
            "this host is {host}, so it cannot run {s} code; copy the .aot and the image to an {s} host, or use --isa pulley64"
        )),
        _ => Err(format!("unknown ISA {s:?}; use native ({host}) or pulley64")),
    }
}

/// A duration: a plain number is seconds (as wasmtime reads `--timeout`), otherwise a number with
/// a unit (`500ms`, `2s`, `1m`).
fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(seconds) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(seconds)
            .map_err(|_| format!("{s:?} is not a duration in seconds"));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 50, 0.5, 500ms, 1m)"))
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_read_plain_numbers_as_seconds() {
        assert_eq!(parse_duration("50"), Ok(Duration::from_secs(50)));
        assert_eq!(parse_duration("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }
}

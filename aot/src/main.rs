//! `mvvm-aot`: instrument a wasm module with checkpoint sites and precompile it for every ISA.

use anyhow::{Context, Result};
use clap::Parser;
use mvvm_aot::build::{build_reporting, BuildError, Step};
use mvvm_aot::variant::Variant;
use mvvm_contract::file::{atomic_write_as, Access};
use mvvm_contract::status;
use mvvm_contract::{EngineOptions, Policy, Target};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Instrument a WebAssembly module with checkpoint sites and precompile it for x86_64, aarch64 and
/// pulley64 into one `.aot` file that `mvvm run`, `mvvm checkpoint` and `mvvm restore` load.
///
/// Sites are where a running program can be stopped and written out. Every call to an imported
/// function is always a site (so a program about to block in WASI can be checkpointed). The flags
/// add more; they combine. With no policy flag, --enable-counter-loop-checkpoint is used.
///
/// Example: mvvm-aot --enable-checkpoint --enable-counter-loop-checkpoint --threshold-bits 4 -o app.aot app.wasm
///
/// Exit status: 0 written; 126 bad input or usage (nothing written); 163 the output could not be
/// written or a target could not be compiled.
#[derive(Parser, Debug)]
#[command(name = "mvvm-aot", version, verbatim_doc_comment)]
struct Cli {
    /// A site at every function entry (serves `mvvm checkpoint -f FUNC -x N`).
    #[arg(long)]
    enable_checkpoint: bool,
    /// A site at every loop header, checked on every iteration.
    #[arg(long)]
    enable_loop_checkpoint: bool,
    /// A site at loop headers (cheap; the default). A loop without calls counts its iterations
    /// in a register and re-reads the runtime's countdown every 2^K of them; a loop with calls
    /// tests that countdown on every iteration. Either way it stops promptly when asked. Only a
    /// call-free innermost loop that provably ends within 1024 iterations (a constant-bound
    /// `for (i = 0; i < 16; i++)`) has no site.
    #[arg(long)]
    enable_counter_loop_checkpoint: bool,
    /// K for the counter-loop policy: loops without calls re-read the countdown every 2^K
    /// iterations (0..=30).
    #[arg(long, value_name = "K", default_value_t = 16, value_parser = clap::value_parser!(u8).range(0..=30))]
    threshold_bits: u8,
    /// Do not instrument: the uninstrumented baseline with the same exports and engine settings.
    #[arg(long, conflicts_with_all = ["enable_checkpoint", "enable_loop_checkpoint", "enable_counter_loop_checkpoint"])]
    plain: bool,
    /// Target to precompile for (repeatable): x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu,
    /// pulley64 (short names x86_64, aarch64 work too). Default: all three.
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// Cranelift optimisation level: 0 (none), 1 or 2 (speed), 3 (speed and size).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=3))]
    opt_level: u8,
    /// Make a variant for `mvvm mvx`: the C shadow stack (`__stack_pointer`) starts BYTES lower
    /// (a multiple of 16; the stack gets as much smaller), so stack addresses differ from the
    /// original's while the program behaves the same. `mvvm inspect` shows it.
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    shift_stack: u32,
    /// Make a variant for `mvvm mvx` whose heap starts BYTES higher (a multiple of 16; memory
    /// grows to match), so every address malloc returns differs from the original's. Static data
    /// stays where the linker put it: a linked module does not say which of its words are
    /// pointers. Needs a C program as wasm-ld linked it (before wasm-opt).
    #[arg(long, value_name = "BYTES", default_value_t = 0)]
    shift_data: u32,
    /// Make a variant for `mvvm mvx` whose code is rewritten by semantics-preserving
    /// transformations chosen by SEED (locals shuffled, junk stores inserted): the same SEED
    /// gives the same variant, and the program computes what the original does. Combines with
    /// --shift-stack and --shift-data.
    #[arg(long, value_name = "SEED")]
    diversify: Option<u64>,
    /// Also write the instrumented module as plain wasm to this path (for inspection).
    #[arg(long, value_name = "FILE")]
    emit_wasm: Option<PathBuf>,
    /// Output `.aot` file.
    #[arg(short = 'o', long = "output", value_name = "OUT.aot")]
    output: PathBuf,
    /// Print nothing on success (errors are still printed).
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Say more on stderr: -v info, -vv debug, -vvv trace (as SPDLOG_LEVEL does; the more
    /// verbose of the two wins).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Input module: `.wasm` binary or `.wat` text.
    #[arg(value_name = "IN.wasm|IN.wat")]
    input: PathBuf,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(status::BAD_INPUT),
            };
        }
    };
    mvvm_contract::logging::init("mvvm-aot", cli.verbose);
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure(code, e)) => {
            eprintln!("mvvm-aot: error: {e:#}");
            ExitCode::from(code)
        }
    }
}

/// An error and the exit status it gets (see [`status`]).
struct Failure(u8, anyhow::Error);

/// Marks errors of bad input.
fn bad_input<T>(r: Result<T>) -> Result<T, Failure> {
    r.map_err(|e| Failure(status::BAD_INPUT, e))
}

/// Marks errors of the host (writing, compiling).
fn host_failure<T>(r: Result<T>) -> Result<T, Failure> {
    r.map_err(|e| Failure(status::HOST_FAILURE, e))
}

fn run(cli: &Cli) -> Result<(), Failure> {
    let started = Instant::now();
    let targets = bad_input(targets(&cli.targets))?;
    let policy = policy(cli);
    let bytes = bad_input(
        std::fs::read(&cli.input)
            .with_context(|| format!("cannot read input {}", cli.input.display())),
    )?;
    let wasm = bad_input(
        mvvm_aot::transform::parse_input(&bytes)
            .with_context(|| format!("{}", cli.input.display())),
    )?;
    let variant = Variant {
        shift_stack: cli.shift_stack,
        shift_data: cli.shift_data,
        diversify: cli.diversify,
    };
    let wasm = bad_input(
        mvvm_aot::variant::make(&wasm, &variant)
            .with_context(|| format!("{}", cli.input.display())),
    )?;
    let engine = EngineOptions {
        opt_level: cli.opt_level,
        fuel: false,
    };
    let mut progress = Progress::new(cli.quiet);
    let built = build_reporting(&wasm, &policy, &targets, &engine, &mut |s| progress.step(s));
    progress.finish();
    let aot = match built {
        Ok(aot) => aot,
        Err(e @ BuildError::Transform(_)) => {
            return bad_input(Err(
                anyhow::Error::from(e).context(cli.input.display().to_string())
            ))
        }
        Err(e) => return host_failure(Err(anyhow::Error::from(e))),
    };
    if let Some(p) = &cli.emit_wasm {
        host_failure(
            atomic_write_as(p, &aot.wasm, Access::Shared)
                .with_context(|| format!("cannot write {}", p.display())),
        )?;
    }
    let encoded = aot.encode();
    host_failure(
        atomic_write_as(&cli.output, &encoded, Access::Shared)
            .with_context(|| format!("cannot write {}", cli.output.display())),
    )?;
    if !cli.quiet {
        let instrumented = aot.info.functions.iter().filter(|f| f.instrumented).count();
        eprintln!(
            "mvvm-aot: wrote {} ({} bytes) in {:.1} s: policy {}, {} sites, {}/{} functions instrumented, targets {}{}",
            cli.output.display(),
            encoded.len(),
            started.elapsed().as_secs_f64(),
            policy.describe(),
            aot.info.sites.len(),
            instrumented,
            aot.info.functions.len(),
            targets
                .iter()
                .map(|t| t.triple())
                .collect::<Vec<_>>()
                .join(", "),
            if variant.is_identity() {
                String::new()
            } else {
                format!("; a variant: {}", variant.describe())
            }
        );
    }
    Ok(())
}

/// Where a build is: a spinner line on a terminal (redrawn in place and cleared at the end), an
/// info log line per step (`-v`), and nothing when stderr is a pipe or with `-q`.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    started: Instant,
}

impl Progress {
    fn new(quiet: bool) -> Progress {
        use std::io::IsTerminal;
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        Progress {
            bar,
            started: Instant::now(),
        }
    }

    fn step(&mut self, step: Step) {
        let what = match step {
            Step::Instrument => "instrumenting".to_string(),
            Step::Compile { target, index, of } => {
                format!("compiling for {} ({index}/{of})", target.triple())
            }
        };
        let at = self.started.elapsed().as_secs_f64();
        let log = || spdlog::info!("{what} (at {at:.1} s)");
        match &self.bar {
            Some(bar) => {
                bar.suspend(log);
                bar.set_message(format!("mvvm-aot: {what}"));
            }
            None => log(),
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// The targets named by `--target` flags, deduplicated; all three if none.
fn targets(names: &[String]) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for t in names {
        let target = Target::parse(t).with_context(|| {
            format!("unknown target {t:?}; use x86_64-unknown-linux-gnu, aarch64-unknown-linux-gnu or pulley64")
        })?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    if targets.is_empty() {
        targets = Target::ALL.to_vec();
    }
    Ok(targets)
}

/// The policy the flags ask for.
fn policy(cli: &Cli) -> Policy {
    if cli.plain {
        return Policy::plain();
    }
    let none = !cli.enable_checkpoint
        && !cli.enable_loop_checkpoint
        && !cli.enable_counter_loop_checkpoint;
    Policy {
        function_entry: cli.enable_checkpoint,
        loop_header: cli.enable_loop_checkpoint,
        counter_loop: cli.enable_counter_loop_checkpoint || none,
        threshold_bits: cli.threshold_bits,
        instrument: true,
    }
}

//! `mvvm`: run, inspect (and, later, checkpoint and restore) wasm programs built by `mvvm-aot`.

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mvvm_aot::container::AotFile;
use mvvm_runtime::{DirMap, Isa, Outcome, Program, RunConfig, RuntimeError, Trigger};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// mvvm: a WebAssembly runtime that can stop a program at a checkpoint site, write its whole state
/// to an ISA-neutral image, and resume it on x86_64, aarch64 or pulley64.
///
/// Build programs with `mvvm-aot`, then:
///   mvvm run -t app.aot -- ARGS...          run natively
///   mvvm run -t app.aot --isa pulley64      run on the pulley64 interpreter
///   mvvm inspect app.aot                    targets, policy, functions, sites, module hash
#[derive(Parser, Debug)]
#[command(name = "mvvm", version, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a WASI preview1 command; mvvm exits with the guest's exit status.
    Run(RunArgs),
    /// Describe an .aot file: targets, policy, K, function and site counts, module hash.
    Inspect {
        /// The .aot file.
        file: PathBuf,
    },
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum IsaArg {
    /// The host's own ISA.
    Native,
    /// wasmtime's portable pulley64 interpreter.
    Pulley64,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The program: an .aot file from mvvm-aot (or a .wasm/.wat, run uninstrumented).
    #[arg(short = 't', long = "target-file", value_name = "APP.aot")]
    target: PathBuf,
    /// Which ISA to run on.
    #[arg(long, value_enum, default_value_t = IsaArg::Native)]
    isa: IsaArg,
    /// Preopen a host directory, seen by the guest as GUEST (default: the host path). Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Set an environment variable for the guest. Repeatable.
    #[arg(short = 'e', long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// Guest arguments, comma-separated (MVVM style): -a one,two,three.
    #[arg(
        short = 'a',
        long = "args",
        value_name = "A,B,C",
        value_delimiter = ','
    )]
    args: Vec<String>,
    /// The guest's argv[0] (default: the program's file name).
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,
    /// Guest arguments, as a shell passes them.
    #[arg(last = true, value_name = "ARGS")]
    rest: Vec<String>,
}

fn main() -> ExitCode {
    mvvm_aot::logging::init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Run(a) => run(a),
        Command::Inspect { file } => inspect(&file).map(|()| 0),
    };
    match r {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("mvvm: error: {e:#}");
            let trapped = e
                .downcast_ref::<RuntimeError>()
                .is_some_and(|r| matches!(r, RuntimeError::Trap(_)));
            ExitCode::from(if trapped { 134 } else { 2 })
        }
    }
}

fn run(a: RunArgs) -> Result<i32> {
    if !a.target.exists() {
        anyhow::bail!(
            "{}: no such file; build it with `mvvm-aot -o {} APP.wasm`",
            a.target.display(),
            a.target.display()
        );
    }
    let isa = match a.isa {
        IsaArg::Native => Isa::Native,
        IsaArg::Pulley64 => Isa::Pulley64,
    };
    let program = Program::load(&a.target, isa)?;
    let mut env = Vec::new();
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("-e {kv:?}: expected K=V"))?;
        env.push((k.to_string(), v.to_string()));
    }
    let argv0 = a.argv0.clone().unwrap_or_else(|| {
        a.target
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".into())
    });
    let mut argv = vec![argv0];
    argv.extend(a.args.iter().filter(|s| !s.is_empty()).cloned());
    argv.extend(a.rest.iter().cloned());
    let cfg = RunConfig {
        argv,
        env,
        dirs: a.dirs.iter().map(|d| DirMap::parse(d)).collect(),
        ..RunConfig::default()
    };
    match program.run(&cfg, Trigger::None)?.outcome {
        Outcome::Exited(code) => Ok(code),
        Outcome::Checkpointed(_) => anyhow::bail!("the program stopped for a checkpoint, but `mvvm run` takes none; use `mvvm checkpoint`"),
    }
}

fn inspect(file: &Path) -> Result<()> {
    let aot = AotFile::read(file)?;
    let info = &aot.info;
    let instrumented = info.functions.iter().filter(|f| f.instrumented).count();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for s in &info.sites {
        let k = match s.kind {
            mvvm_aot::transform::SiteKind::Entry => "function entry",
            mvvm_aot::transform::SiteKind::LoopHeader { .. } => "loop header",
            mvvm_aot::transform::SiteKind::Import { .. } => "import call",
            mvvm_aot::transform::SiteKind::Call { .. } => "call",
            mvvm_aot::transform::SiteKind::CallIndirect { .. } => "indirect call",
            mvvm_aot::transform::SiteKind::TailCall { .. } => "tail call",
            mvvm_aot::transform::SiteKind::TailCallIndirect { .. } => "indirect tail call",
        };
        *kinds.entry(k).or_default() += 1;
    }
    println!("file:         {}", file.display());
    println!("producer:     {}", aot.producer);
    println!("module hash:  {}", aot.hash_hex());
    println!("wasm size:    {} bytes (instrumented)", aot.wasm.len());
    println!("policy:       {}", info.policy.describe());
    println!("threshold K:  {}", info.policy.threshold_bits);
    println!("opt level:    {}", aot.engine.opt_level);
    println!("targets:");
    for a in &aot.artifacts {
        println!("  {:<28} {} bytes", a.target.triple(), a.bytes.len());
    }
    println!(
        "functions:    {} ({} imported, {} instrumented)",
        info.functions.len(),
        info.imported_funcs,
        instrumented
    );
    println!("sites:        {}", info.sites.len());
    for (k, n) in kinds {
        println!("  {k:<28} {n}");
    }
    Ok(())
}

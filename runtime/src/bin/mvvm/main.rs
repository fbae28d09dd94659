//! `mvvm`: run, checkpoint, restore and inspect wasm programs built by `mvvm-aot`.

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use mvvm_contract::container::AotFile;
use mvvm_contract::{ModuleInfo, SiteKind};
use mvvm_checkpoint::image::{is_image, PAGE};
use mvvm_checkpoint::{FdEntry, Image, Snapshot};
use mvvm_runtime::{DirMap, Isa, Outcome, Program, RunConfig, RuntimeError, Trigger};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
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
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
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
enum IsaArg {
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
struct ProgramArgs {
    /// The program: an .aot file from mvvm-aot (`run` also takes a .wasm/.wat, uninstrumented).
    #[arg(short = 't', long = "target-file", value_name = "APP.aot")]
    target: PathBuf,
    /// Which ISA to run on.
    #[arg(long, value_enum, default_value_t = IsaArg::Native)]
    isa: IsaArg,
    /// Preopen a host directory, seen by the guest as GUEST (default: the host path). Repeatable.
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    program: ProgramArgs,
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

#[derive(Args, Debug)]
struct CheckpointArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Checkpoint at an entry of this function: an index in the wasm function index space
    /// (imports first) or a name from the name section. Needs --enable-checkpoint sites.
    #[arg(
        short = 'f',
        long = "function",
        value_name = "FUNC",
        conflicts_with = "polls"
    )]
    function: Option<String>,
    /// With -f: which entry (1-based).
    #[arg(
        short = 'x',
        long = "nth",
        value_name = "N",
        default_value_t = 1,
        requires = "function"
    )]
    nth: u64,
    /// Checkpoint at the Nth site poll (1-based; deterministic: every site polls while armed).
    #[arg(short = 'c', long = "count", value_name = "N", id = "polls")]
    polls: Option<u64>,
    /// Checkpoint at the first site after this much time, e.g. 500ms, 2s, 1m.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    after: Option<Duration>,
    /// Keep running after each checkpoint; the trigger fires again every N polls, N entries or
    /// DURATION, and SIGUSR1 at any time, each writing a newer image over the last.
    #[arg(long)]
    leave_running: bool,
    /// Where to write the image (default: APP.ckpt beside APP.aot).
    #[arg(short = 'o', long = "output", value_name = "IMAGE")]
    output: Option<PathBuf>,
    /// Compress the image with zstd at this level (1–19; 3 if given without a value).
    #[arg(long, value_name = "LEVEL", num_args = 0..=1, default_missing_value = "3",
          value_parser = clap::value_parser!(i32).range(1..=19))]
    zstd: Option<i32>,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    #[command(flatten)]
    program: ProgramArgs,
    /// The image (default: APP.ckpt beside APP.aot).
    #[arg(short = 'i', long = "image", value_name = "IMAGE")]
    image: Option<PathBuf>,
}

fn main() -> ExitCode {
    mvvm_contract::logging::init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Run(a) => run(a),
        Command::Checkpoint(a) => checkpoint(a),
        Command::Restore(a) => restore(a),
        Command::Inspect { file, target } => inspect(&file, target.as_deref()).map(|()| 0),
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

/// The default image path for a program: `APP.ckpt` beside `APP.aot`.
fn default_image(target: &Path) -> PathBuf {
    target.with_extension("ckpt")
}

fn load(p: &ProgramArgs) -> Result<Program> {
    if !p.target.exists() {
        bail!(
            "{}: no such file; build it with `mvvm-aot -o {} APP.wasm`",
            p.target.display(),
            p.target.display()
        );
    }
    Ok(Program::load(&p.target, p.isa.into())?)
}

fn run_config(a: &RunArgs) -> Result<RunConfig> {
    let mut env = Vec::new();
    for kv in &a.env {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("-e {kv:?}: expected K=V"))?;
        env.push((k.to_string(), v.to_string()));
    }
    let argv0 = a.argv0.clone().unwrap_or_else(|| {
        a.program
            .target
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".into())
    });
    let mut argv = vec![argv0];
    argv.extend(a.args.iter().filter(|s| !s.is_empty()).cloned());
    argv.extend(a.rest.iter().cloned());
    Ok(RunConfig {
        argv,
        env,
        dirs: a.program.dirs.iter().map(|d| DirMap::parse(d)).collect(),
        ..RunConfig::default()
    })
}

fn run(a: RunArgs) -> Result<i32> {
    let program = load(&a.program)?;
    let cfg = run_config(&a)?;
    match program.run(&cfg, Trigger::None)?.outcome {
        Outcome::Exited(code) => Ok(code),
        Outcome::Checkpointed(_) => bail!("the program stopped for a checkpoint, but `mvvm run` takes none; use `mvvm checkpoint`"),
    }
}

fn trigger(a: &CheckpointArgs, info: &ModuleInfo) -> Result<Trigger> {
    if let Some(spec) = &a.function {
        let func = info.resolve_function(spec).with_context(|| {
            format!(
                "-f {spec}: no such function (the module has {} functions, imports first; or a name from its name section)",
                info.functions.len()
            )
        })?;
        let has_entry = info
            .sites
            .iter()
            .any(|s| s.func == func && s.kind == SiteKind::Entry);
        if !has_entry {
            bail!("-f {spec}: function {func} has no entry site; build with `mvvm-aot --enable-checkpoint` (imported and unreachable functions have none)");
        }
        if a.nth == 0 {
            bail!("-x 0: entries count from 1");
        }
        return Ok(Trigger::FuncEntry { func, nth: a.nth });
    }
    match a.polls {
        Some(0) => bail!("-c 0: polls count from 1"),
        Some(n) => Ok(Trigger::Poll(n)),
        None => Ok(Trigger::None),
    }
}

fn checkpoint(a: CheckpointArgs) -> Result<i32> {
    let program = load(&a.run.program)?;
    if !program.info.policy.instrument || program.info.sites.is_empty() {
        bail!(
            "{} has no checkpoint sites; build it with `mvvm-aot --enable-checkpoint --enable-counter-loop-checkpoint`",
            a.run.program.target.display()
        );
    }
    let trigger = trigger(&a, &program.info)?;
    let cfg = run_config(&a.run)?;
    let out = a
        .output
        .clone()
        .unwrap_or_else(|| default_image(&a.run.program.target));
    let bell = cfg.doorbell.clone();
    bell.ring_on_signal(signal_hook::consts::SIGUSR1)
        .context("cannot listen for SIGUSR1")?;
    if let Some(d) = a.after {
        bell.ring_after(d, a.leave_running)
            .context("cannot start the --after timer")?;
    }
    let taken_on = program.target.name().to_string();
    let mut write = |snap: &Snapshot| -> Result<(), RuntimeError> {
        let image = Image {
            producer: format!("mvvm {}", env!("CARGO_PKG_VERSION")),
            taken_on: taken_on.clone(),
            snapshot: snap.clone(),
        };
        let bytes = image
            .write(&out, a.zstd)
            .map_err(|e| RuntimeError::Input(e.to_string()))?;
        spdlog::info!(
            "checkpoint: {} frames, {bytes} bytes written to {}",
            snap.frames.len(),
            out.display()
        );
        Ok(())
    };
    let run = if a.leave_running {
        program.run_with(&cfg, trigger, Some(&mut write))?
    } else {
        program.run(&cfg, trigger)?
    };
    match run.outcome {
        Outcome::Checkpointed(snap) => {
            write(&snap)?;
            if let Some(t) = run.stop_time {
                spdlog::info!("stopped in {:.3} ms", t.as_secs_f64() * 1e3);
            }
            Ok(0)
        }
        Outcome::Exited(code) => {
            if !a.leave_running {
                spdlog::warn!(
                    "the program exited with status {code} before a checkpoint was triggered; no image written"
                );
            }
            Ok(code)
        }
    }
}

fn restore(a: RestoreArgs) -> Result<i32> {
    let image_path = a
        .image
        .clone()
        .unwrap_or_else(|| default_image(&a.program.target));
    if !image_path.exists() {
        bail!(
            "{}: no such image; take one with `mvvm checkpoint -t {}`, or name it with -i",
            image_path.display(),
            a.program.target.display()
        );
    }
    let image = Image::read(&image_path)?;
    let program = load(&a.program)?;
    if image.snapshot.module_hash != program.module_hash {
        bail!(
            "{} was taken from another program than {} (module hash {} vs {}); restore it with the .aot it was taken from",
            image_path.display(),
            a.program.target.display(),
            short_hash(&image.snapshot.module_hash),
            short_hash(&program.module_hash)
        );
    }
    spdlog::info!(
        "restoring {} (taken on {}) on {}",
        image_path.display(),
        image.taken_on,
        program.target.name()
    );
    let cfg = RunConfig {
        dirs: a.program.dirs.iter().map(|d| DirMap::parse(d)).collect(),
        ..RunConfig::default()
    };
    match program
        .resume(&cfg, &image.snapshot, Trigger::None)?
        .outcome
    {
        Outcome::Exited(code) => Ok(code),
        Outcome::Checkpointed(_) => {
            bail!("the program stopped for a checkpoint while restoring, which nothing asked for")
        }
    }
}

fn short_hash(h: &[u8; 32]) -> String {
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

fn site_kind(k: &SiteKind) -> &'static str {
    match k {
        SiteKind::Entry => "function entry",
        SiteKind::LoopHeader { .. } => "loop header",
        SiteKind::Import { .. } => "import call",
        SiteKind::Call { .. } => "call",
        SiteKind::CallIndirect { .. } => "indirect call",
        SiteKind::TailCall { .. } => "tail call",
        SiteKind::TailCallIndirect { .. } => "indirect tail call",
    }
}

fn inspect(file: &Path, target: Option<&Path>) -> Result<()> {
    let mut head = [0u8; 8];
    {
        use std::io::Read;
        let mut f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let n = f.read(&mut head).unwrap_or(0);
        if n == head.len() && is_image(&head) {
            return inspect_image(file, target);
        }
    }
    inspect_aot(file)
}

fn inspect_image(file: &Path, target: Option<&Path>) -> Result<()> {
    let image = Image::read(file)?;
    let s = &image.snapshot;
    let beside = file.with_extension("aot");
    let aot_path = target
        .map(Path::to_path_buf)
        .or_else(|| beside.exists().then_some(beside));
    let aot = match &aot_path {
        Some(p) => Some(AotFile::read(p)?),
        None => None,
    };
    println!("image:        {}", file.display());
    println!("producer:     {}", image.producer);
    println!("taken on:     {}", image.taken_on);
    println!(
        "module hash:  {}",
        s.module_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    match (&aot, &aot_path) {
        (Some(a), Some(p)) if a.module_hash == s.module_hash => {
            println!("program:      {} (matches)", p.display())
        }
        (Some(_), Some(p)) => println!(
            "program:      {} (DOES NOT MATCH: taken from another build)",
            p.display()
        ),
        _ => println!("program:      unknown (pass -t APP.aot for function names and site kinds)"),
    }
    println!("parent:       none (images are complete, not incremental)");
    println!("entry:        {}", s.entry);
    println!(
        "polls:        {} (function entries counted: {})",
        s.counters.polls, s.counters.entries
    );
    let info = aot
        .as_ref()
        .filter(|a| a.module_hash == s.module_hash)
        .map(|a| &a.info);
    println!("call stack:   {} frames, innermost first", s.frames.len());
    for (i, f) in s.frames.iter().enumerate() {
        let name = info
            .and_then(|i| i.functions.get(f.func as usize))
            .and_then(|f| f.name.clone())
            .unwrap_or_else(|| "?".into());
        let kind = info
            .and_then(|i| i.sites.get(f.site as usize))
            .map(|s| site_kind(&s.kind))
            .unwrap_or("?");
        println!(
            "  #{i:<3} func {:<6} {name:<24} site {:<6} {kind:<18} {} slots",
            f.func,
            f.site,
            f.slots.len()
        );
    }
    for m in &s.memories {
        let pages = m.bytes.len() / PAGE;
        let touched = m
            .bytes
            .chunks(PAGE)
            .filter(|p| p.iter().any(|b| *b != 0))
            .count();
        println!(
            "memory {}:     {pages} pages, {touched} non-zero ({} KiB stored)",
            m.index,
            touched * 64
        );
    }
    println!("globals:      {}", s.globals.len());
    for (i, v) in &s.globals {
        println!("  global {i:<5} {v:?}");
    }
    for t in &s.tables {
        let set = t
            .elements
            .iter()
            .filter(|e| {
                !matches!(
                    e,
                    mvvm_checkpoint::Value::FuncRef(None) | mvvm_checkpoint::Value::NullExternRef
                )
            })
            .count();
        println!(
            "table {}:      {} elements, {set} set",
            t.index,
            t.elements.len()
        );
    }
    let Some(w) = &s.wasi else {
        println!("wasi:         none (a bare instance)");
        return Ok(());
    };
    println!("argv:         {:?}", w.argv);
    println!("environment:  {} variables", w.env.len());
    println!("preopens:");
    for (i, p) in w.preopens.iter().enumerate() {
        println!(
            "  fd {:<4} {} (host {} at checkpoint)",
            3 + i,
            p.guest,
            p.host
        );
    }
    println!("open fds:");
    for (fd, e) in &w.fds {
        match e {
            FdEntry::Stdio(k) => println!(
                "  fd {fd:<4} {}",
                ["stdin", "stdout", "stderr"]
                    .get(*k as usize)
                    .copied()
                    .unwrap_or("stdio")
            ),
            FdEntry::Preopen(i) => println!(
                "  fd {fd:<4} preopen {}",
                w.preopens
                    .get(*i as usize)
                    .map(|p| p.guest.as_str())
                    .unwrap_or("?")
            ),
            FdEntry::File(f) => println!(
                "  fd {fd:<4} {}/{} offset {} oflags {:#x} fdflags {:#x}",
                w.preopens
                    .get(f.preopen as usize)
                    .map(|p| p.guest.as_str())
                    .unwrap_or("?"),
                f.path,
                f.offset,
                f.oflags,
                f.fdflags
            ),
        }
    }
    if !w.free_fds.is_empty() {
        println!("free fds:     {:?}", w.free_fds);
    }
    println!("monotonic:    {} ns at checkpoint", w.monotonic_ns);
    Ok(())
}

fn inspect_aot(file: &Path) -> Result<()> {
    let aot = AotFile::read(file)?;
    let info = &aot.info;
    let instrumented = info.functions.iter().filter(|f| f.instrumented).count();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for s in &info.sites {
        let k = site_kind(&s.kind);
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
    // What the code of each artifact this host can load is for (the others cannot be mapped here).
    for isa in [Isa::Native, Isa::Pulley64] {
        let Ok(target) = isa.target() else { continue };
        if aot.artifact(target).is_none() {
            continue;
        }
        let p = match Program::from_aot_artifact(&aot, isa) {
            Ok(p) => p,
            Err(e) => {
                println!("code:         {}: not loadable here: {e}", target.triple());
                continue;
            }
        };
        if let Some(c) = p.code_parts() {
            println!(
                "code:         {}: {} bytes: functions {}, rewind clones {} ({}), other {}",
                target.triple(),
                p.code_size(),
                c.functions_bytes,
                c.clones_bytes,
                c.clones,
                c.other_bytes
            );
        }
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

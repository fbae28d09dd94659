//! `mvvm`: run, checkpoint, restore and inspect wasm programs built by `mvvm-aot`.

mod cli;
mod inspect;
mod mvx;
mod runs;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{CheckpointArgs, Cli, Command, PlaceArgs, RestoreArgs, RunArgs, RunCommand};
use mvvm_checkpoint::{Image, Snapshot};
use mvvm_contract::logging::OpenLine;
use mvvm_contract::status;
use mvvm_contract::{ModuleInfo, SiteKind};
use mvvm_runtime::{DirMap, Isa, Outcome, Program, RunConfig, RuntimeError, Trigger};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let line = mvvm_contract::logging::init("mvvm", cli.verbose);
    let result = match cli.command {
        Command::Run(a) => run(a, &line),
        Command::Checkpoint(a) if a.pid.is_some() => runs::checkpoint_pid(&a),
        Command::Checkpoint(a) => checkpoint(a, &line),
        Command::Restore(a) => restore(a, &line),
        Command::Mvx(a) => mvx::mvx(a, &line),
        Command::MvxFollower(a) => mvx::mvx_follower(a, &line),
        Command::Inspect(a) => inspect::inspect(&a).map(|()| 0),
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "mvvm", &mut script);
            write_stdout(&script).map(|()| 0)
        }
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            line.eprintln(format_args!("mvvm: error: {e:#}"));
            ExitCode::from(failure_status(&e))
        }
    }
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) ends the output quietly.
pub(crate) fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to stdout")
        }
        _ => Ok(()),
    }
}

/// Prints a command-line error (or the help and version texts clap reports the same way).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let _ = e.print();
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => ExitCode::SUCCESS,
        _ => ExitCode::from(status::BAD_INPUT),
    }
}

/// The exit status of a failure (see [`status`]).
fn failure_status(e: &anyhow::Error) -> u8 {
    use mvvm_runtime::link::LinkError;
    use mvvm_runtime::mvx::remote::RemoteError;
    let link = match e.downcast_ref::<RemoteError>() {
        Some(RemoteError::Link(l)) => Some(l),
        _ => e.downcast_ref::<LinkError>(),
    };
    if let Some(l) = link {
        return if l.is_refusal() {
            status::BAD_INPUT
        } else {
            status::HOST_FAILURE
        };
    }
    let runtime = match e.downcast_ref::<RemoteError>() {
        Some(RemoteError::Runtime(r)) => Some(r),
        _ => e.downcast_ref::<RuntimeError>(),
    };
    match runtime {
        Some(RuntimeError::Trap(_)) => status::TRAP,
        Some(RuntimeError::Engine(_) | RuntimeError::Write(_)) => status::HOST_FAILURE,
        _ => status::BAD_INPUT,
    }
}

/// The exit status of a guest that exited with `code` (WASI keeps it in 0..126; see
/// [`status::is_guest_status`]).
pub(crate) fn guest_status(code: i32) -> u8 {
    if status::is_guest_status(code) {
        code as u8
    } else {
        status::TRAP
    }
}

/// The default image path for a program: `APP.ckpt` beside `APP.aot`.
fn default_image(target: &Path) -> PathBuf {
    target.with_extension("ckpt")
}

/// The program a command names (`-t APP` or the first positional) and the guest's arguments (the
/// other positionals).
pub(crate) fn program_and_args(
    place: &PlaceArgs,
    positional: &[String],
) -> Result<(PathBuf, Vec<String>)> {
    match (&place.target, positional.split_first()) {
        (Some(t), _) => Ok((t.clone(), positional.to_vec())),
        (None, Some((app, args))) => Ok((PathBuf::from(app), args.to_vec())),
        (None, None) => {
            bail!("no program given; usage: mvvm run [OPTIONS] APP.aot [ARGS]... (see mvvm run --help)")
        }
    }
}

pub(crate) fn load(target: &Path, isa: Isa) -> Result<Program> {
    if !target.exists() {
        bail!(
            "{}: no such file; build it with `mvvm-aot -o {} APP.wasm`",
            target.display(),
            target.display()
        );
    }
    Ok(Program::load(target, isa)?)
}

/// The guest's environment: `NAME=VAL`, or `NAME` for the host's value.
fn environment(specs: &[String]) -> Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for spec in specs {
        match spec.split_once('=') {
            Some((k, v)) => env.push((k.to_string(), v.to_string())),
            None => {
                let v = std::env::var(spec).with_context(|| {
                    format!("--env {spec}: the host has no such variable (or it is not UTF-8); give NAME=VALUE")
                })?;
                env.push((spec.clone(), v));
            }
        }
    }
    Ok(env)
}

pub(crate) fn run_config(
    a: &RunArgs,
    target: &Path,
    args: Vec<String>,
    line: &OpenLine,
) -> Result<RunConfig> {
    let argv0 = a.argv0.clone().unwrap_or_else(|| {
        target
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "app".into())
    });
    let mut argv = vec![argv0];
    argv.extend(a.args.iter().filter(|s| !s.is_empty()).cloned());
    argv.extend(args);
    let mut cfg = RunConfig {
        argv,
        env: environment(&a.env)?,
        dirs: dir_maps(&a.place.dirs)?,
        stderr_line: line.clone(),
        ..RunConfig::default()
    };
    if let Some(entry) = &a.invoke {
        cfg.entry = entry.clone();
    }
    Ok(cfg)
}

/// The `--dir` flags: host paths made absolute (an image records them), each guest path once.
fn dir_maps(specs: &[String]) -> Result<Vec<DirMap>> {
    let mut maps: Vec<DirMap> = Vec::new();
    for spec in specs {
        let mut map = DirMap::parse(spec);
        if !spec.contains("::") && !map.host.exists() {
            if let Some((host, guest)) = spec.split_once(':') {
                bail!("--dir {spec}: no such directory; to show host directory {host} to the guest as {guest}, write --dir {host}::{guest}");
            }
        }
        if let Some(first) = maps.iter().find(|m| m.guest == map.guest) {
            bail!(
                "--dir {spec}: the guest path {} is already given to {}; give each guest directory once",
                map.guest,
                first.host.display()
            );
        }
        map.host = std::path::absolute(&map.host).unwrap_or(map.host);
        maps.push(map);
    }
    Ok(maps)
}

/// Whether a program can be checkpointed at all.
fn has_sites(info: &ModuleInfo) -> bool {
    info.policy.instrument && !info.sites.is_empty()
}

fn run(command: RunCommand, line: &OpenLine) -> Result<u8> {
    let RunCommand {
        run: a,
        image,
        listen,
    } = command;
    let (target, args) = program_and_args(&a.place, &a.positional)?;
    let mut cfg = run_config(&a, &target, args, line)?;
    cfg.listener = listener(&listen)?;
    let program = load(&target, a.place.isa)?;
    // A checkpoint cannot hold a socket: a program with one is not offered SIGUSR1.
    if !has_sites(&program.info) || cfg.listener.is_some() {
        return match program.run(&cfg, Trigger::None)?.outcome {
            Outcome::Exited(code) => Ok(guest_status(code)),
            Outcome::Checkpointed(_) => bail!("a program without sites stopped for a checkpoint"),
        };
    }
    // An instrumented program answers SIGUSR1 with an image; the run file lets
    // `mvvm checkpoint --pid` find it and see where the image goes.
    let named_image = image.is_some();
    let image = image.unwrap_or_else(|| default_image(&target));
    cfg.doorbell
        .ring_on_signal(signal_hook::consts::SIGUSR1)
        .context("cannot listen for SIGUSR1")?;
    // Without a run file the program still runs and answers SIGUSR1; only `--pid` cannot find it.
    let _record = runs::RunFile::create(&target, &image)
        .map_err(|e| spdlog::warn!("{e:#}; `mvvm checkpoint --pid` will not find this run"))
        .ok();
    let started = Instant::now();
    match program.run(&cfg, Trigger::None)?.outcome {
        Outcome::Exited(code) => Ok(guest_status(code)),
        Outcome::Checkpointed(snap) => {
            let bytes = write_image(&program, &snap, &image, None)?;
            if a.place.quiet {
                return Ok(status::CHECKPOINTED);
            }
            report_checkpoint(line, &snap, bytes, &image, started);
            line.eprintln(format_args!(
                "mvvm: the program stopped at a checkpoint; resume it with `mvvm restore {}{}`",
                target.display(),
                if named_image {
                    format!(" -i {}", image.display())
                } else {
                    String::new()
                }
            ));
            Ok(status::CHECKPOINTED)
        }
    }
}

/// The socket `--tcplisten` asks for, bound.
pub(crate) fn listener(
    a: &cli::ListenArgs,
) -> Result<Option<std::sync::Arc<std::net::TcpListener>>> {
    let Some(addr) = &a.tcplisten else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(addr).with_context(|| {
        format!("--tcplisten {addr}: cannot listen there (a port in use, or an address of another host)")
    })?;
    Ok(Some(std::sync::Arc::new(listener)))
}

/// Writes `snap` as an image of `program` at `path`; returns its size.
fn write_image(
    program: &Program,
    snap: &Snapshot,
    path: &Path,
    zstd: Option<i32>,
) -> Result<u64, RuntimeError> {
    let image = Image {
        producer: format!("mvvm {}", env!("CARGO_PKG_VERSION")),
        taken_on: program.target.name().to_string(),
        snapshot: snap.clone(),
    };
    image
        .write(path, zstd)
        .map_err(|e| RuntimeError::Write(format!("{}: {e}", path.display())))
}

/// The one line that says a checkpoint was written.
fn report_checkpoint(line: &OpenLine, snap: &Snapshot, bytes: u64, path: &Path, started: Instant) {
    line.eprintln(format_args!(
        "mvvm: checkpoint: {} frames, {bytes} bytes written to {} after {:.2} s",
        snap.frames.len(),
        path.display(),
        started.elapsed().as_secs_f64()
    ));
}

fn trigger(a: &CheckpointArgs, info: &ModuleInfo) -> Result<Trigger> {
    if let Some(spec) = &a.function {
        let func = info.resolve_function(spec).with_context(|| {
            let named = info.functions.iter().any(|f| !f.imported && f.name.is_some());
            let names = if named {
                "or a name from its name section"
            } else {
                "its name section is gone, so only indices work: keep names when building it, e.g. \
                 link without -O, since clang then runs wasm-opt, which drops them"
            };
            format!(
                "-f {spec}: no such function (the module has {} functions, imports first; {names}; `mvvm inspect --functions APP.aot` lists them)",
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

fn checkpoint(a: CheckpointArgs, line: &OpenLine) -> Result<u8> {
    let (target, args) = program_and_args(&a.run.place, &a.run.positional)?;
    let cfg = run_config(&a.run, &target, args, line)?;
    let program = load(&target, a.run.place.isa)?;
    if !has_sites(&program.info) {
        bail!(
            "{} has no checkpoint sites; build it with `mvvm-aot --enable-checkpoint --enable-counter-loop-checkpoint`",
            target.display()
        );
    }
    let trigger = trigger(&a, &program.info)?;
    let out = a.output.clone().unwrap_or_else(|| default_image(&target));
    let bell = cfg.doorbell.clone();
    bell.ring_on_signal(signal_hook::consts::SIGUSR1)
        .context("cannot listen for SIGUSR1")?;
    if let Some(d) = a.after {
        bell.ring_after(d, a.leave_running)
            .context("cannot start the --after timer")?;
    }
    let started = Instant::now();
    let mut write = |snap: &Snapshot| -> Result<(), RuntimeError> {
        let bytes = write_image(&program, snap, &out, a.zstd)?;
        if !a.run.place.quiet {
            report_checkpoint(line, snap, bytes, &out, started);
        }
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
        Outcome::Exited(code) if a.leave_running => Ok(guest_status(code)),
        Outcome::Exited(code) => {
            line.eprintln(format_args!(
                "mvvm: the program exited with status {code} before the trigger fired; no image written"
            ));
            Ok(status::NOT_TRIGGERED)
        }
    }
}

fn restore(a: RestoreArgs, line: &OpenLine) -> Result<u8> {
    let target = match (&a.place.target, &a.app) {
        (Some(t), None) | (None, Some(t)) => t.clone(),
        (Some(_), Some(_)) => bail!("the program is given twice (-t and APP); give it once"),
        (None, None) => bail!("no program given; usage: mvvm restore [OPTIONS] APP.aot"),
    };
    let image_path = a.image.clone().unwrap_or_else(|| default_image(&target));
    if !image_path.exists() {
        bail!(
            "{}: no such image; take one with `mvvm checkpoint {}`, or name it with -i",
            image_path.display(),
            target.display()
        );
    }
    let image = Image::read(&image_path)?;
    let dirs = dir_maps(&a.place.dirs)?;
    let program = load(&target, a.place.isa)?;
    if image.snapshot.module_hash != program.module_hash {
        bail!(
            "{} was taken from another program than {} (module hash {} vs {}); restore it with the .aot it was taken from",
            image_path.display(),
            target.display(),
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
        dirs,
        allow_changed_files: a.allow_changed_files,
        stderr_line: line.clone(),
        ..RunConfig::default()
    };
    let run = program.resume(&cfg, &image.snapshot, Trigger::None)?;
    if !a.place.quiet {
        // After the run, so that the line cannot land inside the guest's own stderr.
        line.eprintln(format_args!(
            "mvvm: restore: {} (taken on {}) resumed on {} {:.3} s after it was read",
            image_path.display(),
            image.taken_on,
            program.target.name(),
            run.resume_time.unwrap_or_default().as_secs_f64()
        ));
    }
    match run.outcome {
        Outcome::Exited(code) => Ok(guest_status(code)),
        Outcome::Checkpointed(_) => {
            bail!("the program stopped for a checkpoint while restoring, which nothing asked for")
        }
    }
}

fn short_hash(h: &[u8; 32]) -> String {
    h[..8].iter().map(|b| format!("{b:02x}")).collect()
}

//! `mvvm`: run, checkpoint, restore and inspect wasm programs built by `mvvm-aot`.

mod cli;
mod inspect;

use anyhow::{bail, Context, Result};
use clap::Parser;
use cli::{CheckpointArgs, Cli, Command, ProgramArgs, RestoreArgs, RunArgs};
use mvvm_checkpoint::{Image, Snapshot};
use mvvm_contract::{ModuleInfo, SiteKind};
use mvvm_runtime::{DirMap, Outcome, Program, RunConfig, RuntimeError, Trigger};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn main() -> ExitCode {
    mvvm_contract::logging::init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Run(a) => run(a),
        Command::Checkpoint(a) => checkpoint(a),
        Command::Restore(a) => restore(a),
        Command::Inspect { file, target } => inspect::inspect(&file, target.as_deref()).map(|()| 0),
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

//! `mvvm mvx`: a master and its followers, compared at every WASI call.

use crate::cli::{parse_isa, MvxArgs, PolicyArg};
use crate::{guest_status, load, program_and_args, run_config};
use anyhow::{bail, Result};
use mvvm_contract::logging::OpenLine;
use mvvm_contract::status;
use mvvm_runtime::mvx::{self, Follower, MvxOutcome, Policy};
use std::path::PathBuf;
use std::sync::Arc;

/// Runs `mvvm mvx`; the guest's status, or [`status::DIVERGED`] with the report on stderr.
pub(crate) fn mvx(a: MvxArgs, line: &OpenLine) -> Result<u8> {
    let (target, args) = program_and_args(&a.run.place, &a.run.positional)?;
    let cfg = run_config(&a.run, &target, args, line)?;
    let master = load(&target, a.run.place.isa)?;
    let mut followers = Vec::new();
    for (k, spec) in a.followers.iter().enumerate() {
        let (path, isa) = follower_spec(spec)?;
        let program = load(&path, isa)?;
        let name = format!(
            "follower {} ({} on {})",
            k + 1,
            path.display(),
            program.target.name()
        );
        followers.push(Follower {
            program: Arc::new(program),
            name,
        });
    }
    let policy = match a.policy {
        PolicyArg::OutputLockstep => Policy::OutputLockstep,
        PolicyArg::Lockstep => Policy::Lockstep,
        PolicyArg::Loose => Policy::Loose,
    };
    let run = mvx::run(&master, &followers, &cfg, policy)?;
    match run.outcome {
        MvxOutcome::Exited(code) => {
            spdlog::info!(
                "mvx: {} events, on which every follower agreed with the master",
                run.events
            );
            Ok(guest_status(code))
        }
        MvxOutcome::Diverged(report) => {
            line.eprintln(format_args!("mvvm: mvx: {report}"));
            Ok(status::DIVERGED)
        }
    }
}

/// `F.aot` or `F.aot@ISA`.
fn follower_spec(spec: &str) -> Result<(PathBuf, mvvm_runtime::Isa)> {
    if let Some((path, isa)) = spec.rsplit_once('@') {
        match parse_isa(isa) {
            Ok(isa) => return Ok((PathBuf::from(path), isa)),
            Err(e) if !std::path::Path::new(spec).exists() => {
                bail!("--follower {spec}: {e}")
            }
            Err(_) => {}
        }
    }
    Ok((PathBuf::from(spec), mvvm_runtime::Isa::Native))
}

//! `mvvm mvx`: a master and its followers, compared at every WASI call; and `mvvm mvx-follower`,
//! a follower in a process of its own.

use crate::cli::{parse_isa, KeyArgs, MvxArgs, MvxFollowerArgs, PolicyArg};
use crate::{guest_status, load, program_and_args, run_config};
use anyhow::{bail, Context, Result};
use mvvm_contract::logging::OpenLine;
use mvvm_contract::status;
use mvvm_runtime::link::Key;
use mvvm_runtime::mvx::late::{Late, LateRemote};
use mvvm_runtime::mvx::remote::{self, Join, Listener, Network, Remote};
use mvvm_runtime::mvx::{self, Follower, FollowerEnd, Followers, MvxOutcome, Policy};
use std::path::PathBuf;
use std::sync::Arc;

/// Runs `mvvm mvx`; the guest's status, or [`status::DIVERGED`] with the report on stderr.
pub(crate) fn mvx(a: MvxArgs, line: &OpenLine) -> Result<u8> {
    let (target, args) = program_and_args(&a.run.place, &a.run.positional)?;
    let mut cfg = run_config(&a.run, &target, args, line)?;
    cfg.listener = crate::listener(&a.socket)?;
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
    let network = a.listen.as_ref().map(|_| Network::new()).transpose()?;
    let listener = match (&a.listen, &network) {
        (Some(addr), Some(network)) => Some(listen(network, addr, &a, line)?),
        _ => None,
    };
    let mut followers = match (a.join_after, listener) {
        (None, None) => Followers::local(followers),
        (None, Some(listener)) => Followers {
            remote: wait_for_followers(&listener, a.remote_followers, followers.len())?,
            local: followers,
            ..Followers::default()
        },
        (Some(after), listener) => Followers {
            late: Some(Late {
                followers,
                remote: listener.map(|listener| LateRemote {
                    listener,
                    places: a.remote_followers as usize,
                }),
                after,
            }),
            ..Followers::default()
        },
    };
    followers.timeout = a.follower_timeout;
    let run = mvx::run(&master, followers, &cfg, policy)?;
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

/// Listens on `addr` for `--followers` remote followers, and says where (the address ends the
/// line, for scripts that listen on port 0).
fn listen(network: &Network, addr: &str, a: &MvxArgs, line: &OpenLine) -> Result<Listener> {
    let key = key(&a.key)?;
    let listener = network
        .listen(addr, key)
        .with_context(|| format!("--listen {addr}"))?;
    if !a.run.place.quiet {
        let n = a.remote_followers;
        let s = if n == 1 { "" } else { "s" };
        let at = listener.local_addr();
        match a.join_after {
            None => line.eprintln(format_args!(
                "mvvm: mvx: waiting for {n} follower{s} on {at}"
            )),
            Some(after) => line.eprintln(format_args!(
                "mvvm: mvx: running; {n} follower{s} may join after {after:?} on {at}"
            )),
        }
    }
    Ok(listener)
}

/// Waits until `n` remote followers have joined at `listener`; the first is numbered after
/// the `locals`.
fn wait_for_followers(listener: &Listener, n: u32, locals: usize) -> Result<Vec<Remote>> {
    let mut remotes = Vec::new();
    for k in 0..n as usize {
        let r = listener.accept()?;
        spdlog::info!(
            "mvx: follower {} joined: {} on {} from {}",
            locals + k + 1,
            r.join.program,
            r.join.isa,
            r.peer
        );
        remotes.push(r);
    }
    Ok(remotes)
}

/// The link key: `--key-file`, else `MVVM_KEY`, else none.
fn key(a: &KeyArgs) -> Result<Key> {
    if let Some(file) = &a.key_file {
        let bytes = std::fs::read(file)
            .with_context(|| format!("--key-file {}: cannot read it", file.display()))?;
        return Key::from_bytes(&bytes).with_context(|| format!("--key-file {}", file.display()));
    }
    match std::env::var_os("MVVM_KEY") {
        Some(k) => Key::from_bytes(k.as_encoded_bytes()).context("MVVM_KEY"),
        None => Ok(Key::none()),
    }
}

/// Runs `mvvm mvx-follower`: the program's status once it agreed to the end, or
/// [`status::DIVERGED`].
pub(crate) fn mvx_follower(a: MvxFollowerArgs, line: &OpenLine) -> Result<u8> {
    let Some(target) = a.target.or(a.app) else {
        bail!("no program given; usage: mvvm mvx-follower --connect ADDR F.aot (see mvvm mvx-follower --help)")
    };
    let program = load(&target, a.isa)?;
    let key = key(&a.key)?;
    let network = Network::new()?;
    let join = Join {
        program: target.file_name().map_or_else(
            || target.display().to_string(),
            |n| n.to_string_lossy().into(),
        ),
        isa: program.target.name().into(),
    };
    let joined = network
        .join(&a.connect, &key, &join)
        .with_context(|| format!("--connect {}", a.connect))?;
    if !a.quiet {
        let from = match joined.starts_after() {
            Some(seq) => format!(", from its snapshot after event {seq}"),
            None => String::new(),
        };
        line.eprintln(format_args!(
            "mvvm: mvx-follower: joined the master at {} as {}{from}",
            joined.master(),
            joined.setup.name
        ));
    }
    match remote::follow_remote(&network, &program, joined)? {
        FollowerEnd::Agreed(code) => Ok(guest_status(code)),
        FollowerEnd::Diverged(report) => {
            line.eprintln(format_args!("mvvm: mvx-follower: {report}"));
            Ok(status::DIVERGED)
        }
        FollowerEnd::Stopped => {
            line.eprintln(format_args!(
                "mvvm: mvx-follower: the master stopped the run before its end (its report says why)"
            ));
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

//! Running a program: fresh runs, checkpoints taken in memory, and resumption from a snapshot.

use crate::doorbell::Doorbell;
use crate::host::{self, set_countdown, CkptState, Countdown, HostState, Trigger};
use crate::program::Program;
use crate::wasi_state::{restore_dirs, FdShadow};
use crate::{wasi, RuntimeError};
use mvvm_contract::abi::{self, State};
use mvvm_checkpoint::{capture, FuncMap, Snapshot};
use std::path::PathBuf;
use std::time::Duration;
use wasmtime::{Instance, Linker, Store, Val};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

/// A host directory made visible to the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirMap {
    /// The host directory.
    pub host: PathBuf,
    /// The path the guest sees.
    pub guest: String,
}

impl DirMap {
    /// Parses `HOST[::GUEST]`; without `::GUEST` the guest sees the host path as written.
    pub fn parse(s: &str) -> DirMap {
        match s.split_once("::") {
            Some((h, g)) => DirMap {
                host: h.into(),
                guest: g.into(),
            },
            None => DirMap {
                host: s.into(),
                guest: s.into(),
            },
        }
    }
}

/// Where a guest's stdout or stderr goes.
#[derive(Clone)]
pub enum Output {
    /// The process's own stream.
    Inherit,
    /// An in-memory buffer (tests; concatenated across checkpoint and resume).
    Capture(MemoryOutputPipe),
}

/// Everything about a run that is not the program.
#[derive(Clone)]
pub struct RunConfig {
    /// `argv`, including `argv[0]`.
    pub argv: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Preopened directories.
    pub dirs: Vec<DirMap>,
    /// The guest's stdout.
    pub stdout: Output,
    /// The guest's stderr.
    pub stderr: Output,
    /// The export to run.
    pub entry: String,
    /// Rung, the run checkpoints at its next site: at the first, if rung before the run starts.
    /// Ring a clone of it from any thread (or from a signal: [`Doorbell::ring_on_signal`]).
    pub doorbell: Doorbell,
    /// Fuel limit (only for engines built with fuel).
    pub fuel: Option<u64>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            argv: vec!["app".into()],
            env: Vec::new(),
            dirs: Vec::new(),
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            entry: "_start".into(),
            doorbell: Doorbell::new(),
            fuel: None,
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct Run {
    /// How it ended.
    pub outcome: Outcome,
    /// How many times sites polled the host (deterministic for a given trigger; with an armed
    /// trigger every site visit polls). A resumed run counts on from its image.
    pub polls: u64,
    /// For a checkpoint: the time from the poll that fired to the snapshot in hand (unwinding the
    /// stack and copying memory, globals, tables and WASI state).
    pub stop_time: Option<Duration>,
}

/// Called with every checkpoint of a run that goes on after it (`mvvm checkpoint
/// --leave-running`); an error stops the run.
pub type OnCheckpoint<'a> = &'a mut dyn FnMut(&Snapshot) -> Result<(), RuntimeError>;

/// How a run ended.
#[derive(Debug)]
pub enum Outcome {
    /// The guest finished; its exit status (0 when `_start` returns).
    Exited(i32),
    /// The guest unwound for a checkpoint.
    Checkpointed(Box<Snapshot>),
}

impl Program {
    fn instantiate(
        &self,
        cfg: &RunConfig,
        trigger: Trigger,
    ) -> Result<(Store<HostState>, Instance), RuntimeError> {
        let mut b = WasiCtxBuilder::new();
        b.args(&cfg.argv);
        for (k, v) in &cfg.env {
            b.env(k, v);
        }
        for d in &cfg.dirs {
            if !d.host.is_dir() {
                return Err(RuntimeError::Input(format!(
                    "--dir {}: no such directory on this host",
                    d.host.display()
                )));
            }
            b.preopened_dir(&d.host, &d.guest, FsPerms::ReadWrite)
                .map_err(|e| RuntimeError::Input(format!("--dir {}: {e:#}", d.host.display())))?;
        }
        match &cfg.stdout {
            Output::Inherit => b.inherit_stdout(),
            Output::Capture(p) => b.stdout(p.clone()),
        };
        match &cfg.stderr {
            Output::Inherit => b.inherit_stderr(),
            Output::Capture(p) => b.stderr(p.clone()),
        };
        b.inherit_stdin();
        let state = HostState {
            wasi: b.build_p1(),
            ckpt: CkptState::new(self.info.clone(), trigger, cfg.doorbell.clone()),
            fds: FdShadow::new(&cfg.argv, &cfg.env, &cfg.dirs),
        };
        let mut store = Store::new(&self.engine, state);
        if let Some(f) = cfg.fuel {
            store.set_fuel(f).map_err(RuntimeError::Engine)?;
        }
        let mut linker: Linker<HostState> = Linker::new(&self.engine);
        wasi::add_to_linker(&mut linker).map_err(RuntimeError::Engine)?;
        host::add_to_linker(&mut linker).map_err(RuntimeError::Engine)?;
        let instance = linker
            .instantiate(&mut store, &self.module)
            .map_err(|e| RuntimeError::Instantiate(format!("{e:#}")))?;
        let funcs = FuncMap::new(&mut store, &instance);
        store.data_mut().ckpt.set_funcs(funcs);
        if self.info.policy.instrument {
            let countdown = Countdown::of(&mut store, &instance).ok_or_else(|| {
                RuntimeError::Input(format!(
                    "the module lacks a usable {} (a one-page memory); build it with this mvvm-aot",
                    abi::EXPORT_COUNTDOWN
                ))
            })?;
            store.data_mut().ckpt.set_countdown_location(countdown);
            store.data_mut().ckpt.state_global = instance.get_global(&mut store, abi::EXPORT_STATE);
            let mut slot_globals = Vec::with_capacity(self.info.slots.len());
            for n in 0..self.info.slots.len() as u32 {
                let name = abi::export_slot(n);
                let g = instance.get_global(&mut store, &name).ok_or_else(|| {
                    RuntimeError::Input(format!("the module lacks {name}; build it with mvvm-aot"))
                })?;
                slot_globals.push(g);
            }
            store.data_mut().ckpt.slot_globals = slot_globals;
            // A doorbell rung before the run is answered at the first site.
            let cd = store.data().ckpt.countdown();
            set_countdown(&mut store, cd).map_err(RuntimeError::Engine)?;
        }
        Ok((store, instance))
    }

    /// Runs the program from the start until it exits or a trigger checkpoints it.
    pub fn run(&self, cfg: &RunConfig, trigger: Trigger) -> Result<Run, RuntimeError> {
        self.run_with(cfg, trigger, None)
    }

    /// Like [`Program::run`]; with `keep_running`, each checkpoint is handed to it and the program
    /// goes on (rewinding in place), the trigger firing again every N polls or entries.
    pub fn run_with(
        &self,
        cfg: &RunConfig,
        trigger: Trigger,
        keep_running: Option<OnCheckpoint<'_>>,
    ) -> Result<Run, RuntimeError> {
        let (mut store, instance) = self.instantiate(cfg, trigger)?;
        if keep_running.is_some() {
            store.data_mut().ckpt.repeat();
        }
        if let Err(e) = call_start(&mut store, &instance) {
            let outcome = finish_error(e)?;
            return Ok(Run {
                outcome,
                polls: store.data().ckpt.polls(),
                stop_time: None,
            });
        }
        self.drive(&mut store, &instance, &cfg.entry, keep_running)
    }

    /// Resumes `snap` (taken from this module, on any ISA) until it exits or checkpoints again.
    ///
    /// A snapshot with WASI state runs with the argv and environment it was started with; its
    /// preopened directories map to host directories as [`restore_dirs`] decides from `cfg.dirs`,
    /// and its open files are reopened there at their offsets.
    pub fn resume(
        &self,
        cfg: &RunConfig,
        snap: &Snapshot,
        trigger: Trigger,
    ) -> Result<Run, RuntimeError> {
        self.resume_with(cfg, snap, trigger, None)
    }

    /// Like [`Program::resume`], with [`Program::run_with`]'s `keep_running`.
    pub fn resume_with(
        &self,
        cfg: &RunConfig,
        snap: &Snapshot,
        trigger: Trigger,
        keep_running: Option<OnCheckpoint<'_>>,
    ) -> Result<Run, RuntimeError> {
        if !self.info.policy.instrument {
            return Err(RuntimeError::Input(
                "this module is not instrumented; it cannot be resumed".into(),
            ));
        }
        let mut cfg = cfg.clone();
        if let Some(w) = &snap.wasi {
            cfg.argv = w.argv.clone();
            cfg.env = w.env.clone();
            cfg.dirs = restore_dirs(&w.preopens, &cfg.dirs)?;
        }
        let (mut store, instance) = self.instantiate(&cfg, trigger)?;
        if let Some(w) = &snap.wasi {
            let HostState { wasi, fds, .. } = store.data_mut();
            *fds = FdShadow::reopen(wasi, w)?;
        }
        store.data_mut().ckpt.set_counters(&snap.counters);
        if keep_running.is_some() {
            store.data_mut().ckpt.repeat();
        }
        self.prepare_rewind(&mut store, &instance, snap)?;
        let run = self.drive(&mut store, &instance, &snap.entry, keep_running)?;
        if !store.data().ckpt.rewound {
            return Err(RuntimeError::Trap(
                "the program finished without reaching the checkpointed site; the image does not match this module".into(),
            ));
        }
        Ok(run)
    }

    /// Loads `snap` into a fresh instance and arms the rewind: the next call of its entry export
    /// reloads every frame.
    fn prepare_rewind(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        snap: &Snapshot,
    ) -> Result<(), RuntimeError> {
        mvvm_restore::apply(&mut *store, instance, self.module_hash, snap)?;
        arm_rewind(store, instance, snap.frames.clone())
    }

    /// Calls `entry` until the program exits or checkpoints (and, with `keep_running`, rewinds
    /// after every checkpoint and calls it again).
    fn drive(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        entry: &str,
        mut keep_running: Option<OnCheckpoint<'_>>,
    ) -> Result<Run, RuntimeError> {
        let func = instance.get_func(&mut *store, entry).ok_or_else(|| {
            RuntimeError::Input(format!("the module exports no function {entry:?}"))
        })?;
        let ty = func.ty(&*store);
        let params: Vec<Val> = ty
            .params()
            .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
            .collect();
        let mut results: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
        let mut stop_time = None;
        loop {
            let called = func.call(&mut *store, &params, &mut results);
            let run = |outcome, store: &Store<HostState>, stop_time| Run {
                outcome,
                polls: store.data().ckpt.polls(),
                stop_time,
            };
            if let Err(e) = called {
                return Ok(run(finish_error(e)?, store, stop_time));
            }
            if !self.info.policy.instrument || get_state(store, instance)? != State::Unwinding {
                return Ok(run(Outcome::Exited(0), store, stop_time));
            }
            let snap = self.snapshot(store, instance, entry)?;
            stop_time = store.data().ckpt.fired_at.map(|t| t.elapsed());
            let Some(on_checkpoint) = keep_running.as_mut() else {
                return Ok(run(Outcome::Checkpointed(Box::new(snap)), store, stop_time));
            };
            on_checkpoint(&snap)?;
            // Go on from where it stopped: memory, globals, tables and WASI state are untouched,
            // so only the frames need reloading.
            arm_rewind(store, instance, snap.frames)?;
        }
    }

    /// Captures the instance the guest has just unwound, with its WASI state and counters.
    fn snapshot(
        &self,
        store: &mut Store<HostState>,
        instance: &Instance,
        entry: &str,
    ) -> Result<Snapshot, RuntimeError> {
        let frames = std::mem::take(&mut store.data_mut().ckpt.unwound);
        let mut snap = capture(&mut *store, instance, self.module_hash, entry, frames)?;
        let HostState { wasi, fds, ckpt } = store.data_mut();
        snap.wasi = Some(fds.capture(wasi)?);
        snap.counters = ckpt.counters();
        Ok(snap)
    }
}

/// Runs the module's start function, if it had one, with checkpoints suspended: instantiation is
/// not resumable, so its polls neither count nor fire.
fn call_start(store: &mut Store<HostState>, instance: &Instance) -> wasmtime::Result<()> {
    let Some(start) = instance.get_func(&mut *store, abi::EXPORT_START) else {
        return Ok(());
    };
    store.data_mut().ckpt.suspended = true;
    let r = start.call(&mut *store, &[], &mut []);
    store.data_mut().ckpt.suspended = false;
    r
}

fn finish_error(e: wasmtime::Error) -> Result<Outcome, RuntimeError> {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(Outcome::Exited(exit.0));
    }
    Err(RuntimeError::Trap(format!("{e:?}")))
}

/// Arms a rewind of `frames` (innermost first): the next call of the entry export reloads them.
/// The countdown is zeroed so that every site's check takes its slow path, where the dispatch
/// of a loop header or function entry lives; the poll that ends the rewind resets it.
fn arm_rewind(
    store: &mut Store<HostState>,
    instance: &Instance,
    frames: Vec<mvvm_checkpoint::Frame>,
) -> Result<(), RuntimeError> {
    store.data_mut().ckpt.set_rewind(frames);
    set_countdown(&mut *store, 0).map_err(RuntimeError::Engine)?;
    set_global(store, instance, abi::EXPORT_STATE, State::Rewinding as i32)
}

fn set_global(
    store: &mut Store<HostState>,
    instance: &Instance,
    name: &str,
    v: i32,
) -> Result<(), RuntimeError> {
    let g = instance.get_global(&mut *store, name).ok_or_else(|| {
        RuntimeError::Input(format!("the module lacks {name}; build it with mvvm-aot"))
    })?;
    g.set(&mut *store, Val::I32(v))
        .map_err(RuntimeError::Engine)
}

fn get_state(store: &mut Store<HostState>, instance: &Instance) -> Result<State, RuntimeError> {
    let g = instance
        .get_global(&mut *store, abi::EXPORT_STATE)
        .ok_or_else(|| {
            RuntimeError::Input("the module lacks mvvm:state; build it with mvvm-aot".into())
        })?;
    g.get(&mut *store)
        .i32()
        .and_then(State::from_i32)
        .ok_or_else(|| RuntimeError::Trap("guest state global holds an invalid value".into()))
}

/// The result of calling one export in [`Program::probe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// It returned these values.
    Values(Vec<mvvm_checkpoint::Value>),
    /// It trapped with this trap code.
    Trap(String),
}

/// How a [`Program::probe`] ended.
#[derive(Debug)]
pub enum ProbeEnd {
    /// Every export was called.
    Done {
        /// One result per export called.
        results: Vec<CallResult>,
        /// Memories, globals and tables at the end (`frames` empty).
        state: Box<Snapshot>,
        /// Site polls.
        polls: u64,
    },
    /// A trigger checkpointed export `index`.
    Checkpointed {
        /// The export that was running.
        index: usize,
        /// Results of the exports before it.
        results: Vec<CallResult>,
        /// The checkpoint.
        snap: Box<Snapshot>,
        /// Site polls.
        polls: u64,
    },
}

impl Program {
    /// Calls `exports[from..]` in order with default arguments, recording results, traps and the
    /// final state: the differential referee's driver. With `resume`, the snapshot (taken while
    /// `exports[from]` ran) is restored and `exports[from]` resumes instead of starting.
    pub fn probe(
        &self,
        cfg: &RunConfig,
        exports: &[String],
        from: usize,
        resume: Option<&Snapshot>,
        trigger: Trigger,
    ) -> Result<ProbeEnd, RuntimeError> {
        let (mut store, instance) = self.instantiate(cfg, trigger)?;
        if let Some(snap) = resume {
            self.prepare_rewind(&mut store, &instance, snap)?;
        } else if let Err(e) = call_start(&mut store, &instance) {
            return Err(RuntimeError::Trap(format!(
                "start function: {}",
                trap_code(&e)?
            )));
        }
        let funcs = FuncMap::new(&mut store, &instance);
        let mut results = Vec::new();
        for (index, name) in exports.iter().enumerate().skip(from) {
            let func = instance
                .get_func(&mut store, name)
                .ok_or_else(|| RuntimeError::Input(format!("no exported function {name:?}")))?;
            let ty = func.ty(&store);
            let params: Vec<Val> = ty
                .params()
                .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
                .collect();
            let mut out: Vec<Val> = ty.results().map(|_| Val::I32(0)).collect();
            let r = func.call(&mut store, &params, &mut out);
            if self.info.policy.instrument && get_state(&mut store, &instance)? == State::Unwinding
            {
                let frames = std::mem::take(&mut store.data_mut().ckpt.unwound);
                let snap = capture(&mut store, &instance, self.module_hash, name, frames)?;
                let polls = store.data().ckpt.polls();
                return Ok(ProbeEnd::Checkpointed {
                    index,
                    results,
                    snap: Box::new(snap),
                    polls,
                });
            }
            results.push(match r {
                Ok(()) => CallResult::Values(
                    out.iter()
                        .map(|v| mvvm_checkpoint::value_of(&mut store, &funcs, v, name))
                        .collect::<Result<_, _>>()?,
                ),
                Err(e) => CallResult::Trap(trap_code(&e)?),
            });
        }
        let state = capture(&mut store, &instance, self.module_hash, "", Vec::new())?;
        let polls = store.data().ckpt.polls();
        Ok(ProbeEnd::Done {
            results,
            state: Box::new(state),
            polls,
        })
    }
}

/// A wasm trap's code; any other error (a host failure) is returned as an error.
fn trap_code(e: &wasmtime::Error) -> Result<String, RuntimeError> {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(t) => Ok(format!("{t:?}")),
        None => Err(RuntimeError::Trap(format!("{e:?}"))),
    }
}

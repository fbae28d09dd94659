//! One instance of a program in its store, and what running it takes: instantiating it with the
//! WASI context and the `mvvm.*` imports, calling its entry until it exits or unwinds for a
//! checkpoint, capturing the snapshot, and arming the rewind of one.
//!
//! A [`Session`] is built from a module's compiled [`Code`]; `Program` (one level up) turns its
//! public `run`, `resume` and `probe` into sessions.

use crate::checkpoint::countdown::{self, Countdown};
use crate::checkpoint::CheckpointState;
use crate::config::{Output, RunConfig, Trigger};
use crate::error::RuntimeError;
use crate::store::{self, HostState};
use crate::wasi::monitor::{CallMonitor, Halted};
use crate::wasi::sockets::Sockets;
use crate::wasi::DescriptorMirror;
use mvvm_checkpoint::{capture, FuncMap, Snapshot, WasiState};
use mvvm_contract::abi::{self, State};
use mvvm_contract::ModuleInfo;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::{Engine, Instance, Module, Store, Val};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

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
    /// For a resumed run: the time from the image in hand to the guest running on from its
    /// checkpoint (instantiating, reopening files and rewinding the frames).
    pub resume_time: Option<Duration>,
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

/// The result of calling one export in `Program::probe`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// It returned these values.
    Values(Vec<mvvm_checkpoint::Value>),
    /// It trapped with this trap code.
    Trap(String),
}

/// How a `Program::probe` ended.
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

/// A compiled module and what the runtime knows of it: what a [`Session`] instantiates.
#[derive(Clone, Copy)]
pub(crate) struct Code<'p> {
    pub(crate) engine: &'p Engine,
    pub(crate) module: &'p Module,
    pub(crate) info: &'p Arc<ModuleInfo>,
    pub(crate) module_hash: [u8; 32],
}

/// One instance of a program in its store.
pub(crate) struct Session<'p> {
    code: Code<'p>,
    store: Store<HostState>,
    instance: Instance,
}

impl<'p> Session<'p> {
    /// Instantiates `code` with the WASI context `cfg` describes and the checkpoint state for
    /// `trigger`; a doorbell rung before now is answered at the first site.
    pub(crate) fn new(
        code: Code<'p>,
        cfg: &RunConfig,
        trigger: Trigger,
    ) -> Result<Session<'p>, RuntimeError> {
        let (wasi, sockets) = wasi_context(cfg)?;
        let state = HostState {
            wasi,
            sockets,
            checkpoint: CheckpointState::new(code.info.clone(), trigger, cfg.doorbell.clone()),
            descriptors: DescriptorMirror::new(&cfg.argv, &cfg.env, &cfg.dirs).watching_stderr(
                matches!(cfg.stderr, Output::Inherit).then(|| cfg.stderr_line.clone()),
            ),
            monitor: None,
        };
        let mut store = Store::new(code.engine, state);
        if let Some(f) = cfg.fuel {
            store.set_fuel(f).map_err(RuntimeError::Engine)?;
        }
        let linker = store::linker(code.engine).map_err(RuntimeError::Engine)?;
        let instance = linker
            .instantiate(&mut store, code.module)
            .map_err(|e| RuntimeError::Instantiate(format!("{e:#}")))?;
        let funcs = FuncMap::new(&mut store, &instance);
        store.data_mut().checkpoint.set_funcs(funcs);
        let mut session = Session {
            code,
            store,
            instance,
        };
        if code.info.policy.instrument {
            session.bind_checkpoint_exports()?;
        }
        Ok(session)
    }

    /// Finds the countdown, the state global and the slot globals the transform exported, and
    /// sets the countdown for the trigger.
    fn bind_checkpoint_exports(&mut self) -> Result<(), RuntimeError> {
        let (store, instance) = (&mut self.store, &self.instance);
        let countdown = Countdown::of(&mut *store, instance).ok_or_else(|| {
            RuntimeError::Input(format!(
                "the module lacks a usable {} (a one-page memory); build it with this mvvm-aot",
                abi::EXPORT_COUNTDOWN
            ))
        })?;
        store
            .data_mut()
            .checkpoint
            .set_countdown_location(countdown);
        store.data_mut().checkpoint.state_global =
            instance.get_global(&mut *store, abi::EXPORT_STATE);
        let mut slot_globals = Vec::with_capacity(self.code.info.slots.len());
        for n in 0..self.code.info.slots.len() as u32 {
            let name = abi::export_slot(n);
            let g = instance.get_global(&mut *store, &name).ok_or_else(|| {
                RuntimeError::Input(format!("the module lacks {name}; build it with mvvm-aot"))
            })?;
            slot_globals.push(g);
        }
        store.data_mut().checkpoint.slot_globals = slot_globals;
        let cd = store.data().checkpoint.countdown();
        countdown::set(&mut *store, cd).map_err(RuntimeError::Engine)
    }

    /// Hands every WASI call of this session to `monitor` from now on.
    pub(crate) fn set_monitor(&mut self, monitor: Box<dyn CallMonitor>) {
        self.store.data_mut().monitor = Some(monitor);
    }

    /// Takes the session's call monitor back.
    pub(crate) fn take_monitor(&mut self) -> Option<Box<dyn CallMonitor>> {
        self.store.data_mut().monitor.take()
    }

    /// Sites polled so far.
    pub(crate) fn polls(&self) -> u64 {
        self.store.data().checkpoint.polls()
    }

    /// Re-arms the trigger after every checkpoint (see [`CheckpointState::repeat`]).
    pub(crate) fn repeat_trigger(&mut self) {
        self.store.data_mut().checkpoint.repeat();
    }

    /// When a rewind armed by [`Session::arm_resume`] reached its innermost site, if it did.
    pub(crate) fn rewound_at(&self) -> Option<std::time::Instant> {
        self.store.data().checkpoint.rewound_at
    }

    /// Runs the module's start function, if it had one, with checkpoints suspended: instantiation
    /// is not resumable, so its polls neither count nor fire.
    pub(crate) fn start(&mut self) -> wasmtime::Result<()> {
        let Some(start) = self.instance.get_func(&mut self.store, abi::EXPORT_START) else {
            return Ok(());
        };
        self.store.data_mut().checkpoint.suspended = true;
        let r = start.call(&mut self.store, &[], &mut []);
        self.store.data_mut().checkpoint.suspended = false;
        r
    }

    /// Rebuilds a snapshot's WASI descriptors in this session's fresh context.
    pub(crate) fn reopen_descriptors(
        &mut self,
        wasi: &WasiState,
        allow_changed_files: bool,
    ) -> Result<(), RuntimeError> {
        let HostState {
            wasi: ctx,
            descriptors,
            ..
        } = self.store.data_mut();
        let stderr_line = descriptors.stderr_line();
        *descriptors =
            DescriptorMirror::reopen(ctx, wasi, allow_changed_files)?.watching_stderr(stderr_line);
        Ok(())
    }

    /// Loads `snap` (memories, globals, tables, trigger progress) into the instance and arms the
    /// rewind: the next call of its entry export reloads every frame.
    pub(crate) fn arm_resume(&mut self, snap: &Snapshot) -> Result<(), RuntimeError> {
        self.arm_resume_from(snap, self.code.module_hash)
    }

    /// Like [`Session::arm_resume`], for a snapshot of another variant of this module (a
    /// multi-variant follower joining late): only its frames and values must fit.
    pub(crate) fn arm_resume_of_variant(&mut self, snap: &Snapshot) -> Result<(), RuntimeError> {
        self.arm_resume_from(snap, snap.module_hash)
    }

    fn arm_resume_from(
        &mut self,
        snap: &Snapshot,
        module_hash: [u8; 32],
    ) -> Result<(), RuntimeError> {
        self.store
            .data_mut()
            .checkpoint
            .set_counters(&snap.counters);
        mvvm_restore::apply(&mut self.store, &self.instance, module_hash, snap)?;
        self.arm_rewind(snap.frames.clone())
    }

    /// Arms a rewind of `frames` (innermost first): the next call of the entry export reloads
    /// them. The countdown is zeroed so that every site's check takes its slow path, where the
    /// dispatch of a loop header or function entry lives; the poll that ends the rewind resets it.
    fn arm_rewind(&mut self, frames: Vec<mvvm_checkpoint::Frame>) -> Result<(), RuntimeError> {
        self.store.data_mut().checkpoint.set_rewind(frames);
        countdown::set(&mut self.store, 0).map_err(RuntimeError::Engine)?;
        let g = self.global(abi::EXPORT_STATE)?;
        g.set(&mut self.store, Val::I32(State::Rewinding as i32))
            .map_err(RuntimeError::Engine)
    }

    fn global(&mut self, name: &str) -> Result<wasmtime::Global, RuntimeError> {
        self.instance
            .get_global(&mut self.store, name)
            .ok_or_else(|| {
                RuntimeError::Input(format!("the module lacks {name}; build it with mvvm-aot"))
            })
    }

    /// Whether the guest has just returned from its entry to unwind for a checkpoint.
    fn unwinding(&mut self) -> Result<bool, RuntimeError> {
        if !self.code.info.policy.instrument {
            return Ok(false);
        }
        let g = self.global(abi::EXPORT_STATE)?;
        let state = g
            .get(&mut self.store)
            .i32()
            .and_then(State::from_i32)
            .ok_or_else(|| {
                RuntimeError::Trap("guest state global holds an invalid value".into())
            })?;
        Ok(state == State::Unwinding)
    }

    /// Calls `entry` until the program exits or checkpoints (and, with `keep_running`, rewinds
    /// after every checkpoint and calls it again).
    pub(crate) fn drive(
        &mut self,
        entry: &str,
        mut keep_running: Option<OnCheckpoint<'_>>,
    ) -> Result<Run, RuntimeError> {
        let func = self
            .instance
            .get_func(&mut self.store, entry)
            .ok_or_else(|| {
                RuntimeError::Input(format!("the module exports no function {entry:?}"))
            })?;
        let (params, mut results) = default_arguments(&func.ty(&self.store));
        let mut stop_time = None;
        loop {
            let called = func.call(&mut self.store, &params, &mut results);
            let outcome = match called {
                Err(e) => Some(finish_error(e, self.code.info)?),
                Ok(()) if !self.unwinding()? => Some(Outcome::Exited(0)),
                Ok(()) => None,
            };
            if let Some(outcome) = outcome {
                return Ok(self.ended(outcome, stop_time));
            }
            let snap = self.snapshot(entry)?;
            stop_time = self.store.data().checkpoint.fired_at.map(|t| t.elapsed());
            let Some(on_checkpoint) = keep_running.as_mut() else {
                return Ok(self.ended(Outcome::Checkpointed(Box::new(snap)), stop_time));
            };
            on_checkpoint(&snap)?;
            // Go on from where it stopped: memory, globals, tables and WASI state are untouched,
            // so only the frames need reloading.
            self.arm_rewind(snap.frames)?;
        }
    }

    /// The [`Run`] of a session that ended with `outcome`.
    pub(crate) fn ended(&self, outcome: Outcome, stop_time: Option<Duration>) -> Run {
        Run {
            outcome,
            polls: self.polls(),
            stop_time,
            resume_time: None,
        }
    }

    /// Captures the instance the guest has just unwound, with its WASI state and counters.
    fn snapshot(&mut self, entry: &str) -> Result<Snapshot, RuntimeError> {
        let frames = std::mem::take(&mut self.store.data_mut().checkpoint.unwound);
        let mut snap = capture(
            &mut self.store,
            &self.instance,
            self.code.module_hash,
            entry,
            frames,
        )?;
        let HostState {
            wasi,
            descriptors,
            checkpoint,
            ..
        } = self.store.data_mut();
        snap.wasi = Some(descriptors.capture(wasi)?);
        snap.counters = checkpoint.counters();
        Ok(snap)
    }

    /// Calls `exports[from..]` in order with default arguments, recording results and traps,
    /// until one unwinds for a checkpoint or all have run (see `Program::probe`).
    pub(crate) fn probe(
        &mut self,
        exports: &[String],
        from: usize,
    ) -> Result<ProbeEnd, RuntimeError> {
        let funcs = FuncMap::new(&mut self.store, &self.instance);
        let mut results = Vec::new();
        for (index, name) in exports.iter().enumerate().skip(from) {
            let func = self
                .instance
                .get_func(&mut self.store, name)
                .ok_or_else(|| RuntimeError::Input(format!("no exported function {name:?}")))?;
            let (params, mut out) = default_arguments(&func.ty(&self.store));
            let r = func.call(&mut self.store, &params, &mut out);
            if self.unwinding()? {
                let frames = std::mem::take(&mut self.store.data_mut().checkpoint.unwound);
                let snap = capture(
                    &mut self.store,
                    &self.instance,
                    self.code.module_hash,
                    name,
                    frames,
                )?;
                return Ok(ProbeEnd::Checkpointed {
                    index,
                    results,
                    snap: Box::new(snap),
                    polls: self.polls(),
                });
            }
            results.push(match r {
                Ok(()) => CallResult::Values(
                    out.iter()
                        .map(|v| mvvm_checkpoint::value_of(&mut self.store, &funcs, v, name))
                        .collect::<Result<_, _>>()?,
                ),
                Err(e) => CallResult::Trap(trap_code(&e)?),
            });
        }
        let state = capture(
            &mut self.store,
            &self.instance,
            self.code.module_hash,
            "",
            Vec::new(),
        )?;
        Ok(ProbeEnd::Done {
            results,
            state: Box::new(state),
            polls: self.polls(),
        })
    }
}

/// The WASI context of a run: its arguments, environment, preopened directories and streams;
/// and its sockets.
fn wasi_context(cfg: &RunConfig) -> Result<(WasiP1Ctx, Sockets), RuntimeError> {
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
    let sockets = match &cfg.listener {
        None => Sockets::default(),
        Some(listener) => {
            let placeholder = tempfile::tempdir()
                .map_err(|e| RuntimeError::Io("a placeholder directory".into(), e))?;
            b.preopened_dir(placeholder.path(), "/.mvvm-tcplisten", FsPerms::ReadOnly)
                .map_err(|e| RuntimeError::Input(format!("--tcplisten: {e:#}")))?;
            let fd = 3 + cfg.dirs.len() as u32;
            Sockets::new(Some((fd, listener.clone())), Some(placeholder))
        }
    };
    Ok((b.build_p1(), sockets))
}

/// Default arguments for a function of type `ty`, and room for its results.
fn default_arguments(ty: &wasmtime::FuncType) -> (Vec<Val>, Vec<Val>) {
    let params = ty
        .params()
        .map(|t| Val::default_for_ty(&t).unwrap_or(Val::I32(0)))
        .collect();
    let results = ty.results().map(|_| Val::I32(0)).collect();
    (params, results)
}

/// The outcome of an entry call that failed: the guest's `proc_exit`, a call monitor that halted
/// it, or a trap.
pub(crate) fn finish_error(e: wasmtime::Error, info: &ModuleInfo) -> Result<Outcome, RuntimeError> {
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        return Ok(Outcome::Exited(exit.0));
    }
    if e.downcast_ref::<Halted>().is_some() {
        return Err(RuntimeError::Halted);
    }
    Err(RuntimeError::Trap(crate::trap::describe(&e, info)))
}

/// A wasm trap's code; any other error (a host failure) is returned as an error.
pub(crate) fn trap_code(e: &wasmtime::Error) -> Result<String, RuntimeError> {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(t) => Ok(format!("{t:?}")),
        None => Err(RuntimeError::Trap(format!("{e:?}"))),
    }
}

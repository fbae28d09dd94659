//! A loaded program: an `.aot` file (or plain wasm) compiled or loaded into a wasmtime engine
//! for the chosen ISA, and everything it can do: run, resume from a snapshot, and probe.

use crate::config::{RunConfig, Trigger};
use crate::error::RuntimeError;
use crate::session::{finish_error, trap_code, Code, OnCheckpoint, ProbeEnd, Run, Session};
use crate::wasi::monitor::CallMonitor;
use crate::wasi::restore_dirs;
use mvvm_aot::transform::{instrument, parse_input};
use mvvm_checkpoint::Snapshot;
use mvvm_contract::container::{module_hash, AotFile};
use mvvm_contract::{engine_config, EngineOptions, ModuleInfo, Policy, Target};
use std::path::Path;
use std::sync::Arc;
use wasmtime::{Engine, Module};

/// Which ISA to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// The host's own ISA (x86_64 or aarch64).
    Native,
    /// wasmtime's pulley64 interpreter.
    Pulley64,
}

impl Isa {
    /// The compilation target for this ISA on this host.
    pub fn target(self) -> Result<Target, RuntimeError> {
        match self {
            Isa::Pulley64 => Ok(Target::Pulley64),
            Isa::Native => {
                Target::host().ok_or(RuntimeError::UnsupportedHost(std::env::consts::ARCH))
            }
        }
    }
}

/// How the module's code was obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeSource {
    /// The `.aot` file's precompiled artifact.
    Artifact,
    /// Compiled at load time (no usable artifact for this target).
    Compiled,
}

/// A loaded program, ready to instantiate.
pub struct Program {
    /// Site table, function names, policy.
    pub info: Arc<ModuleInfo>,
    /// SHA-256 of the instrumented module.
    pub module_hash: [u8; 32],
    /// The target the code runs on.
    pub target: Target,
    /// Where the code came from.
    pub source: CodeSource,
    engine: Engine,
    module: Module,
}

impl Program {
    /// Loads `path`: an `.aot` file, or a `.wasm`/`.wat` module, which runs uninstrumented
    /// ([`Policy::plain`]) and compiled on the fly.
    pub fn load(path: &Path, isa: Isa) -> Result<Program, RuntimeError> {
        let io = |e| RuntimeError::Io(path.display().to_string(), e);
        let file = std::fs::File::open(path).map_err(io)?;
        // The file is mapped, not read: the loader touches the artifact it needs (and the
        // checksums read every byte once), and wasmtime copies that artifact into executable
        // memory; reading would copy every byte once more.
        // What cannot be mapped (a pipe, a directory) is read, which also gives the usual error.
        // SAFETY: the mapping is only read, and dropped before `load` returns. Like wasmtime's
        // own `Module::deserialize_file`, it assumes nobody truncates the file meanwhile (a
        // bus error otherwise); `mvvm-aot` replaces files by renaming a new one over them, which
        // leaves a mapped file's contents alone.
        let map = unsafe { memmap2::Mmap::map(&file) }.ok();
        let read;
        let bytes: &[u8] = match &map {
            Some(m) => m,
            None => {
                read = std::fs::read(path).map_err(io)?;
                &read
            }
        };
        if bytes.starts_with(&mvvm_contract::container::MAGIC[..4]) {
            let aot = AotFile::decode(&path.display().to_string(), bytes)?;
            Program::from_aot(&aot, isa)
        } else {
            let wasm = parse_input(bytes)
                .map_err(|e| RuntimeError::Input(format!("{}: {e}", path.display())))?;
            Program::from_wasm(&wasm, &Policy::plain(), isa, &EngineOptions::default())
        }
    }

    /// Loads a decoded `.aot` file, preferring its precompiled artifact for the target.
    pub fn from_aot(aot: &AotFile<'_>, isa: Isa) -> Result<Program, RuntimeError> {
        let target = isa.target()?;
        let engine = aot_engine(aot, target)?;
        let (module, source) = match artifact_module(aot, target, &engine) {
            Ok(m) => (m, CodeSource::Artifact),
            Err(e) => {
                spdlog::warn!("{e}; compiling the embedded module instead");
                let m = Module::new(&engine, &aot.wasm).map_err(RuntimeError::Engine)?;
                (m, CodeSource::Compiled)
            }
        };
        Ok(Program::of_aot(aot, target, source, engine, module))
    }

    /// Loads only the `.aot` file's precompiled artifact for the target and never compiles: for
    /// describing the artifact itself (`mvvm inspect`). Fails where [`Program::from_aot`] would
    /// fall back to compiling the embedded module.
    pub fn from_aot_artifact(aot: &AotFile<'_>, isa: Isa) -> Result<Program, RuntimeError> {
        let target = isa.target()?;
        let engine = aot_engine(aot, target)?;
        let module = artifact_module(aot, target, &engine).map_err(RuntimeError::Input)?;
        Ok(Program::of_aot(
            aot,
            target,
            CodeSource::Artifact,
            engine,
            module,
        ))
    }

    /// The program of `aot`'s module, compiled or loaded as `module` for `target`.
    fn of_aot(
        aot: &AotFile<'_>,
        target: Target,
        source: CodeSource,
        engine: Engine,
        module: Module,
    ) -> Program {
        Program {
            info: Arc::new(aot.info.clone()),
            module_hash: aot.module_hash,
            target,
            source,
            engine,
            module,
        }
    }

    /// Instruments (per `policy`) and compiles `wasm` in-process.
    pub fn from_wasm(
        wasm: &[u8],
        policy: &Policy,
        isa: Isa,
        opts: &EngineOptions,
    ) -> Result<Program, RuntimeError> {
        let out = instrument(wasm, policy).map_err(|e| RuntimeError::Input(e.to_string()))?;
        Program::from_instrumented(&out.wasm, out.info, isa, opts)
    }

    /// Compiles a module the transform has already instrumented, `info` being its site table:
    /// e.g. [`Mode::PollsOnly`](mvvm_aot::transform::Mode::PollsOnly) output that another tool
    /// rewrote afterwards, as the benchmarks do with Binaryen's Asyncify.
    pub fn from_instrumented(
        wasm: &[u8],
        info: ModuleInfo,
        isa: Isa,
        opts: &EngineOptions,
    ) -> Result<Program, RuntimeError> {
        let target = isa.target()?;
        let engine = Engine::new(&engine_config(target, opts).map_err(RuntimeError::Engine)?)
            .map_err(RuntimeError::Engine)?;
        let module = Module::new(&engine, wasm).map_err(RuntimeError::Engine)?;
        Ok(Program {
            info: Arc::new(info),
            module_hash: module_hash(wasm),
            target,
            source: CodeSource::Compiled,
            engine,
            module,
        })
    }

    /// The compiled module, for a [`Session`].
    fn code(&self) -> Code<'_> {
        Code {
            engine: &self.engine,
            module: &self.module,
            info: &self.info,
            module_hash: self.module_hash,
        }
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
        let mut session = Session::new(self.code(), cfg, trigger)?;
        if keep_running.is_some() {
            session.repeat_trigger();
        }
        self.start_and_drive(&mut session, cfg, keep_running)
    }

    /// Runs a fresh session's start function, then its entry.
    fn start_and_drive(
        &self,
        session: &mut Session<'_>,
        cfg: &RunConfig,
        keep_running: Option<OnCheckpoint<'_>>,
    ) -> Result<Run, RuntimeError> {
        if let Err(e) = session.start() {
            let outcome = finish_error(e, &self.info)?;
            return Ok(session.ended(outcome, None));
        }
        session.drive(&cfg.entry, keep_running)
    }

    /// Runs the program from the start, as [`Program::run`] does, with `monitor` watching every
    /// WASI call; the monitor is handed back with the result, which is
    /// [`RuntimeError::Halted`] if the monitor stopped the run.
    pub fn run_monitored<M: CallMonitor>(
        &self,
        cfg: &RunConfig,
        monitor: M,
    ) -> (Result<Run, RuntimeError>, M) {
        self.run_monitored_with(cfg, monitor, None)
    }

    /// Like [`Program::run_monitored`], with [`Program::run_with`]'s `keep_running`: each
    /// checkpoint (the doorbell's) is handed to it, and the program goes on with its monitor.
    pub fn run_monitored_with<M: CallMonitor>(
        &self,
        cfg: &RunConfig,
        monitor: M,
        keep_running: Option<OnCheckpoint<'_>>,
    ) -> (Result<Run, RuntimeError>, M) {
        with_monitor(monitor, |slot| {
            let mut session = Session::new(self.code(), cfg, Trigger::None)?;
            session.set_monitor(slot.take().expect("set once"));
            let run = self.start_and_drive(&mut session, cfg, keep_running);
            *slot = session.take_monitor();
            run
        })
    }

    /// Resumes `snap` as a follower variant that joins a running master late, with `monitor`
    /// answering every call that is not local. Unlike [`Program::resume`], no descriptor is
    /// reopened (a follower's calls never reach the host), and `snap` may come from another
    /// variant of this program: only its frames must fit this module, and the comparison that
    /// follows checks the rest.
    pub fn resume_monitored<M: CallMonitor>(
        &self,
        cfg: &RunConfig,
        snap: &Snapshot,
        monitor: M,
    ) -> (Result<Run, RuntimeError>, M) {
        with_monitor(monitor, |slot| {
            let (mut session, _) = self.resume_session(cfg, snap, Trigger::None)?;
            session.arm_resume_of_variant(snap)?;
            session.set_monitor(slot.take().expect("set once"));
            let run = session.drive(&snap.entry, None);
            *slot = session.take_monitor();
            run
        })
    }

    /// A session for resuming `snap`, and the configuration it was made with: `cfg` with the
    /// snapshot's arguments, environment and directories.
    fn resume_session(
        &self,
        cfg: &RunConfig,
        snap: &Snapshot,
        trigger: Trigger,
    ) -> Result<(Session<'_>, RunConfig), RuntimeError> {
        if !self.info.policy.instrument {
            return Err(RuntimeError::Input(
                "this module is not instrumented; it cannot be resumed".into(),
            ));
        }
        crate::checkpoint::frames::check_frames(&self.info, &snap.frames)
            .map_err(RuntimeError::Input)?;
        let mut cfg = cfg.clone();
        if let Some(w) = &snap.wasi {
            cfg.argv = w.argv.clone();
            cfg.env = w.env.clone();
            cfg.dirs = restore_dirs(&w.preopens, &cfg.dirs)?;
        }
        let session = Session::new(self.code(), &cfg, trigger)?;
        Ok((session, cfg))
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
        let started = std::time::Instant::now();
        if self.info.policy.instrument {
            mvvm_restore::check_module(self.module_hash, snap)?;
        }
        let (mut session, cfg) = self.resume_session(cfg, snap, trigger)?;
        if let Some(w) = &snap.wasi {
            session.reopen_descriptors(w, cfg.allow_changed_files)?;
        }
        if keep_running.is_some() {
            session.repeat_trigger();
        }
        session.arm_resume(snap)?;
        let mut run = session.drive(&snap.entry, keep_running)?;
        let Some(rewound_at) = session.rewound_at() else {
            return Err(RuntimeError::Trap(
                "the program finished without reaching the checkpointed site; the image does not match this module".into(),
            ));
        };
        run.resume_time = Some(rewound_at.duration_since(started));
        Ok(run)
    }

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
        let mut session = Session::new(self.code(), cfg, trigger)?;
        if let Some(snap) = resume {
            session.arm_resume(snap)?;
        } else if let Err(e) = session.start() {
            return Err(RuntimeError::Trap(format!(
                "start function: {}",
                trap_code(&e)?
            )));
        }
        session.probe(exports, from)
    }

    /// Bytes of machine code (or pulley bytecode) compiled for the module's functions.
    pub fn code_size(&self) -> usize {
        self.module.text().len()
    }

    /// [`Program::code_size`] split by what the code is for: the module's own functions, the
    /// rewind clones (contract/FORMAT.md §3, *Rewind clone*), and the rest. `None` when the module's
    /// functions are not laid out as `mvvm-aot` lays them out (its own functions, then, in a
    /// checkpointable module, one clone per instrumented function and the poll stub): e.g. a
    /// module that another tool rewrote after the transform, as the benchmarks do with Asyncify.
    pub fn code_parts(&self) -> Option<CodeParts> {
        let imports = self
            .module
            .imports()
            .filter(|i| matches!(i.ty(), wasmtime::ExternType::Func(_)))
            .count() as u64;
        let own = self.info.functions.iter().filter(|f| !f.imported).count() as u64;
        let instrumented = self
            .info
            .functions
            .iter()
            .filter(|f| f.instrumented)
            .count() as u64;
        let defined = self.module.functions().len() as u64;
        // A checkpointable module has a clone per instrumented function and the poll stub after
        // its own functions; a plain or polls-only one has nothing after them.
        let clones = match defined.checked_sub(own)? {
            0 => 0,
            extra if extra == instrumented + 1 => instrumented,
            _ => return None,
        };
        let first_clone = imports + own;
        let mut parts = CodeParts {
            clones: clones as usize,
            ..CodeParts::default()
        };
        for f in self.module.functions() {
            let i = u64::from(f.index.as_u32());
            if i < first_clone {
                parts.functions_bytes += f.len;
            } else if i < first_clone + clones {
                parts.clones_bytes += f.len;
            }
        }
        parts.other_bytes = self
            .code_size()
            .checked_sub(parts.functions_bytes + parts.clones_bytes)?;
        Some(parts)
    }
}

/// A module's compiled code by what it is for ([`Program::code_parts`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CodeParts {
    /// Bytes of the module's own functions: what a program runs, instrumented or not.
    pub functions_bytes: usize,
    /// Bytes of the rewind clones: code that only runs to finish an activation a restore rebuilt.
    pub clones_bytes: usize,
    /// How many rewind clones there are (one per instrumented function; none in a plain module).
    pub clones: usize,
    /// Every other byte of the text section: the poll stub, the trampolines between host and wasm,
    /// alignment padding between functions.
    pub other_bytes: usize,
}

/// The engine an `.aot` file's code runs in on `target` (the settings it was compiled with).
fn aot_engine(aot: &AotFile<'_>, target: Target) -> Result<Engine, RuntimeError> {
    if aot.engine.fuel {
        return Err(RuntimeError::Input(
            "this .aot was compiled with fuel metering, which mvvm-aot never writes; rebuild it with mvvm-aot".into(),
        ));
    }
    let config = engine_config(target, &aot.engine).map_err(RuntimeError::Engine)?;
    Engine::new(&config).map_err(RuntimeError::Engine)
}

/// The `.aot` file's precompiled artifact for `target`, or why it cannot be used here.
fn artifact_module(aot: &AotFile<'_>, target: Target, engine: &Engine) -> Result<Module, String> {
    let a = aot.artifact(target).ok_or_else(|| {
        format!("the .aot file has no {target} artifact (rebuild with mvvm-aot --target {target} to add it)")
    })?;
    // SAFETY: the bytes come from an .aot file whose checksum and module hash were verified on
    // decode, written by mvvm-aot with the same engine configuration. Like wasmtime's own .cwasm
    // files, .aot files must be trusted like executables.
    unsafe { Module::deserialize(engine, &a.bytes) }
        .map_err(|e| format!("the {target} artifact cannot be loaded here ({e:#})"))
}

/// Runs `go` with `monitor` in a slot that `go` moves into its session and back out of it, then
/// hands the monitor back with `go`'s result.
fn with_monitor<M: CallMonitor>(
    monitor: M,
    go: impl FnOnce(&mut Option<Box<dyn CallMonitor>>) -> Result<Run, RuntimeError>,
) -> (Result<Run, RuntimeError>, M) {
    let mut slot = Some(Box::new(monitor) as Box<dyn CallMonitor>);
    let result = go(&mut slot);
    let monitor: Box<dyn std::any::Any> = slot.expect("the session gave the monitor back");
    match monitor.downcast::<M>() {
        Ok(m) => (result, *m),
        Err(_) => unreachable!("the monitor given is the monitor taken"),
    }
}

//! The runs an `mvvm run` announces, so that `mvvm checkpoint --pid` can find them.
//!
//! Each `mvvm run` of an instrumented program writes a *run file*, `PID.json` in mvvm's run
//! directory (`$XDG_RUNTIME_DIR/mvvm`, else `mvvm-UID` in the temporary directory, mode 0700),
//! and removes it when it ends. It records the program and where its image goes. `mvvm
//! checkpoint --pid PID` reads it (so it never signals a process that is not an mvvm run), sends
//! SIGUSR1, and with `--wait` waits for the process to end and checks the image it wrote. The
//! format is described in docs/INSPECT.md ("Run files").

use crate::cli::CheckpointArgs;
use anyhow::{bail, Context, Result};
use mvvm_checkpoint::Image;
use serde::{Deserialize, Serialize};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// What a run file holds.
#[derive(Serialize, Deserialize)]
struct RunRecord {
    /// The run file format's version.
    version: u32,
    /// The `mvvm run` process.
    pid: u32,
    /// The program, as an absolute path.
    program: PathBuf,
    /// Where SIGUSR1 writes the image, as an absolute path.
    image: PathBuf,
}

/// The current run file format.
const RUN_FILE_VERSION: u32 = 1;

/// The directory that holds the run files.
fn run_directory() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("mvvm"),
        // SAFETY: getuid has no preconditions and cannot fail.
        _ => std::env::temp_dir().join(format!("mvvm-{}", unsafe { libc::getuid() })),
    }
}

fn run_file(pid: u32) -> PathBuf {
    run_directory().join(format!("{pid}.json"))
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// This process's run file; removed when dropped.
pub(crate) struct RunFile {
    path: PathBuf,
}

impl RunFile {
    /// Announces this process as a run of `program` whose image goes to `image`.
    pub(crate) fn create(program: &Path, image: &Path) -> Result<RunFile> {
        let dir = run_directory();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create the run directory {}", dir.display()))?;
        let pid = std::process::id();
        let record = RunRecord {
            version: RUN_FILE_VERSION,
            pid,
            program: absolute(program),
            image: absolute(image),
        };
        let path = run_file(pid);
        let json = serde_json::to_vec_pretty(&record).context("cannot encode the run file")?;
        mvvm_contract::file::atomic_write(&path, &json)
            .with_context(|| format!("cannot write the run file {}", path.display()))?;
        Ok(RunFile { path })
    }
}

impl Drop for RunFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether process `pid` exists.
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

/// The device, inode and modification time of `path`, if it exists.
fn identity(path: &Path) -> Option<(u64, u64, SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.modified().ok()?))
}

/// How long `--wait` waits for the process to write its image and end.
const WAIT_LIMIT: Duration = Duration::from_secs(600);

/// `mvvm checkpoint --pid PID [--wait]`.
pub(crate) fn checkpoint_pid(a: &CheckpointArgs) -> Result<u8> {
    let Some(pid) = a.pid else {
        bail!("--pid is missing");
    };
    let path = run_file(pid);
    let record: RunRecord = match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{}: not a run file", path.display()))?,
        Err(_) => bail!(
            "process {pid} is not an mvvm run of an instrumented program (no {}); start it with `mvvm run APP.aot`",
            path.display()
        ),
    };
    if record.version != RUN_FILE_VERSION || record.pid != pid {
        bail!("{}: a run file of another mvvm version", path.display());
    }
    if !alive(pid) {
        let _ = std::fs::remove_file(&path);
        bail!("process {pid} has ended (its run file was left behind and is now removed)");
    }
    // An image is written to a new file renamed into place: a new inode says it was written.
    // (File times come from a coarse clock and cannot be compared with the time of asking.)
    let before = identity(&record.image);
    // SAFETY: sending a signal has no memory-safety preconditions.
    if unsafe { libc::kill(pid as libc::pid_t, libc::SIGUSR1) } != 0 {
        bail!(
            "cannot signal process {pid}: {}",
            std::io::Error::last_os_error()
        );
    }
    if !a.wait {
        eprintln!(
            "mvvm: asked process {pid} to checkpoint; its image goes to {}",
            record.image.display()
        );
        return Ok(0);
    }
    let started = Instant::now();
    while alive(pid) {
        if started.elapsed() > WAIT_LIMIT {
            bail!(
                "process {pid} has not ended {} s after it was asked to checkpoint",
                WAIT_LIMIT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let after = identity(&record.image);
    if after.is_none() || after == before {
        bail!(
            "process {pid} ended without writing {} (it may have finished first)",
            record.image.display()
        );
    }
    let image = Image::read(&record.image)?;
    let bytes = std::fs::metadata(&record.image)
        .map(|m| m.len())
        .unwrap_or(0);
    eprintln!(
        "mvvm: checkpoint: {} frames, {bytes} bytes written to {}",
        image.snapshot.frames.len(),
        record.image.display()
    );
    Ok(0)
}

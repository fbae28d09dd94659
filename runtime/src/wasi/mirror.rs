//! The WASI state the dispatch point tracks, so that a checkpoint can record it and a restore can
//! rebuild it: which descriptor is which file (by guest directory and path, never by host path),
//! which descriptor numbers are free for reuse, and the monotonic clock's offset.
//!
//! wasmtime-wasi keeps its descriptor table private, so [`DescriptorMirror`] mirrors it from the calls
//! that change it (`path_open`, `fd_close`, `fd_renumber`, `fd_fdstat_set_*`), replicating its
//! number allocation (a freed number is reused highest first). Restoring replays WASI calls into a
//! fresh context (see `rebuild`): it reopens every file under its preopen, seeks to the saved
//! offset, moves renumbered standard streams and preopens, and recreates the free numbers, so that
//! the resumed guest sees the same descriptors and gets the same numbers from its next `path_open`
//! as it would have.

use crate::config::DirMap;
use crate::error::RuntimeError;
use mvvm_checkpoint::{FdEntry, OpenFile, Preopen, WasiState};
use mvvm_contract::logging::OpenLine;
use std::collections::{BTreeMap, BTreeSet};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as raw, WasiSnapshotPreview1};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

const CLOCK_MONOTONIC: i32 = 1;
const OFLAGS_DIRECTORY: u16 = 2;
/// `oflags` not repeated when a file is reopened: the file exists and keeps its contents.
const OFLAGS_CREATE_ONLY: u16 = 1 | 4 | 8; // creat, excl, trunc
const LOOKUP_SYMLINK_FOLLOW: i32 = 1;
/// Rights of a placeholder descriptor (a directory nobody reads).
const RIGHTS_NONE: i64 = 0;
/// Host-call fuel (bytes WASI may copy out of guest memory per call) for the calls mvvm itself
/// makes while saving and rebuilding descriptors; paths are at most 4 KiB.
pub(super) const REPLAY_FUEL: usize = 1 << 20;

/// The dispatch point's mirror of a program's WASI descriptor table.
#[derive(Clone, Debug, Default)]
pub struct DescriptorMirror {
    argv: Vec<String>,
    env: Vec<(String, String)>,
    preopens: Vec<Preopen>,
    fds: BTreeMap<u32, FdEntry>,
    free: BTreeSet<u32>,
    /// Added to every monotonic clock reading, so that a restored program's clock never runs back.
    clock_offset_ns: u64,
    /// Where to record whether the guest left a line open on the process's stderr.
    stderr_line: Option<OpenLine>,
}

pub(super) fn le_u32(mem: &[u8], at: i64) -> Option<u32> {
    let at = usize::try_from(at).ok()?;
    let b = mem.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn guest_str(mem: &[u8], ptr: i64, len: i64) -> Option<String> {
    let p = usize::try_from(ptr).ok()?;
    let l = usize::try_from(len).ok()?;
    let b = mem.get(p..p.checked_add(l)?)?;
    Some(String::from_utf8_lossy(b).into_owned())
}

/// The last byte an `fd_write` that succeeded wrote, if any (decoded through the call table).
fn last_written(mem: &[u8], args: &[i64]) -> Option<u8> {
    let spec = super::calls::spec("fd_write")?;
    let written = u64::from(le_u32(mem, *args.get(3)?)?);
    let inputs = super::calls::decode_inputs(spec, args, mem).ok()?;
    let Some(super::calls::Content::Bytes(bytes)) = inputs.get(1) else {
        return None;
    };
    let n = usize::try_from(written).ok()?.min(bytes.len());
    n.checked_sub(1).map(|last| bytes[last])
}

/// Joins `rel` onto `base` and folds `.` and `..` (never above the preopen).
fn join(base: &str, rel: &str) -> String {
    let mut parts: Vec<&str> = base.split('/').filter(|p| !p.is_empty()).collect();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

impl DescriptorMirror {
    /// The table of a freshly started program: stdio at 0–2, preopen `i` at `3 + i`.
    pub fn new(argv: &[String], env: &[(String, String)], dirs: &[DirMap]) -> DescriptorMirror {
        let mut fds = BTreeMap::new();
        for i in 0..3 {
            fds.insert(i, FdEntry::Stdio(i));
        }
        for i in 0..dirs.len() as u32 {
            fds.insert(3 + i, FdEntry::Preopen(i));
        }
        DescriptorMirror {
            argv: argv.to_vec(),
            env: env.to_vec(),
            preopens: dirs
                .iter()
                .map(|d| Preopen {
                    guest: d.guest.clone(),
                    host: d.host.display().to_string(),
                })
                .collect(),
            fds,
            free: BTreeSet::new(),
            clock_offset_ns: 0,
            stderr_line: None,
        }
    }

    /// Where the mirror records whether the guest's stderr line is open, if anywhere.
    pub fn stderr_line(&self) -> Option<OpenLine> {
        self.stderr_line.clone()
    }

    /// Records in `line` whether the guest's writes to stderr (wherever it renumbered it) leave
    /// a line open; `None` when its stderr is not the process's.
    pub fn watching_stderr(mut self, line: Option<OpenLine>) -> DescriptorMirror {
        self.stderr_line = line;
        self
    }

    /// Records the effect of a WASI call that succeeded (errno 0); `mem` is guest memory after it.
    pub fn observe(&mut self, name: &str, args: &[i64], mem: &[u8]) {
        let arg = |i: usize| args.get(i).copied().unwrap_or(-1);
        let fd = |i: usize| u32::try_from(arg(i)).unwrap_or(u32::MAX);
        match name {
            "fd_write" if self.fds.get(&fd(0)) == Some(&FdEntry::Stdio(2)) => {
                if let (Some(line), Some(last)) = (&self.stderr_line, last_written(mem, args)) {
                    line.set(last != b'\n');
                }
            }
            "path_open" => {
                let (Some(new), Some((preopen, path))) = (
                    le_u32(mem, arg(8)),
                    self.resolve(fd(0), mem, arg(2), arg(3)),
                ) else {
                    spdlog::warn!("path_open relative to untracked descriptor {}", fd(0));
                    return;
                };
                self.free.remove(&new);
                self.fds.insert(
                    new,
                    FdEntry::File(OpenFile {
                        preopen,
                        path,
                        dirflags: arg(1) as u32,
                        oflags: arg(4) as u16,
                        fdflags: arg(7) as u16,
                        rights_base: arg(5) as u64,
                        rights_inheriting: arg(6) as u64,
                        offset: 0,
                        size: 0,
                        mtime_ns: 0,
                    }),
                );
            }
            "path_rename" => {
                let (Some(from), Some(to)) = (
                    self.resolve(fd(0), mem, arg(1), arg(2)),
                    self.resolve(fd(3), mem, arg(4), arg(5)),
                ) else {
                    return;
                };
                // Open files keep their descriptors across a rename: follow them.
                for e in self.fds.values_mut() {
                    if let FdEntry::File(f) = e {
                        if f.preopen != from.0 {
                            continue;
                        }
                        if f.path == from.1 {
                            f.preopen = to.0;
                            f.path = to.1.clone();
                        } else if let Some(rest) = f.path.strip_prefix(&format!("{}/", from.1)) {
                            f.preopen = to.0;
                            f.path = join(&to.1, rest);
                        }
                    }
                }
            }
            "fd_close" if self.fds.remove(&fd(0)).is_some() => {
                self.free.insert(fd(0));
            }
            "fd_renumber" if fd(0) != fd(1) => {
                if let Some(e) = self.fds.remove(&fd(0)) {
                    self.fds.insert(fd(1), e);
                    self.free.insert(fd(0));
                    self.free.remove(&fd(1));
                }
            }
            "fd_fdstat_set_flags" => {
                if let Some(FdEntry::File(f)) = self.fds.get_mut(&fd(0)) {
                    f.fdflags = arg(1) as u16;
                }
            }
            "fd_fdstat_set_rights" => {
                if let Some(FdEntry::File(f)) = self.fds.get_mut(&fd(0)) {
                    f.rights_base = arg(1) as u64;
                    f.rights_inheriting = arg(2) as u64;
                }
            }
            _ => {}
        }
    }

    /// The preopen and preopen-relative path of guest path (`ptr`, `len`) relative to `dirfd`.
    fn resolve(&self, dirfd: u32, mem: &[u8], ptr: i64, len: i64) -> Option<(u32, String)> {
        let rel = guest_str(mem, ptr, len)?;
        match self.fds.get(&dirfd)? {
            FdEntry::Preopen(p) => Some((*p, join("", &rel))),
            FdEntry::File(f) => Some((f.preopen, join(&f.path, &rel))),
            FdEntry::Stdio(_) => None,
        }
    }

    /// Shifts a monotonic `clock_time_get` result that the call wrote into guest memory.
    pub fn adjust_clock(&self, name: &str, args: &[i64], mem: &mut [u8]) {
        if self.clock_offset_ns == 0 || name != "clock_time_get" || args[0] != 1 {
            return;
        }
        let Some(at) = usize::try_from(args[2]).ok() else {
            return;
        };
        if let Some(b) = at.checked_add(8).and_then(|end| mem.get_mut(at..end)) {
            let mut w = [0u8; 8];
            w.copy_from_slice(b);
            let t = u64::from_le_bytes(w).saturating_add(self.clock_offset_ns);
            b.copy_from_slice(&t.to_le_bytes());
        }
    }

    /// The state to write into an image: the table, every file's current offset, and the clock.
    pub fn capture(&self, ctx: &mut WasiP1Ctx) -> Result<WasiState, RuntimeError> {
        ctx.set_hostcall_fuel(REPLAY_FUEL);
        let mut scratch = [0u8; 16];
        let mut fds = Vec::with_capacity(self.fds.len());
        for (&fd, e) in &self.fds {
            let mut e = e.clone();
            if let FdEntry::File(f) = &mut e {
                if f.oflags & OFLAGS_DIRECTORY == 0 {
                    let mut mem = GuestMemory::Unshared(&mut scratch);
                    let errno = raw::fd_tell(ctx, &mut mem, fd as i32, 0).map_err(wasi_err)?;
                    if errno == 0 {
                        f.offset = u64::from_le_bytes(scratch[..8].try_into().unwrap_or([0; 8]));
                    }
                    (f.size, f.mtime_ns) = file_stat(ctx, fd)?;
                }
            }
            fds.push((fd, e));
        }
        Ok(WasiState {
            argv: self.argv.clone(),
            env: self.env.clone(),
            preopens: self.preopens.clone(),
            fds,
            free_fds: self.free.iter().rev().copied().collect(),
            monotonic_ns: self.monotonic(ctx)?,
        })
    }

    fn monotonic(&self, ctx: &mut WasiP1Ctx) -> Result<u64, RuntimeError> {
        let mut scratch = [0u8; 8];
        let mut mem = GuestMemory::Unshared(&mut scratch);
        let errno = raw::clock_time_get(ctx, &mut mem, CLOCK_MONOTONIC, 1, 0).map_err(wasi_err)?;
        if errno != 0 {
            return Err(RuntimeError::Input(format!(
                "cannot read the monotonic clock (errno {errno})"
            )));
        }
        Ok(u64::from_le_bytes(scratch).saturating_add(self.clock_offset_ns))
    }

    /// Rebuilds `state` in `ctx`, a fresh context built with `state`'s preopens in order (see
    /// [`restore_dirs`]), descriptor for descriptor (see [`super::rebuild`]). Returns the mirror for
    /// the resumed program.
    pub fn reopen(
        ctx: &mut WasiP1Ctx,
        state: &WasiState,
        allow_changed_files: bool,
    ) -> Result<DescriptorMirror, RuntimeError> {
        let (fds, free) = super::rebuild::rebuild(ctx, state, allow_changed_files)?;
        let mut mirror = DescriptorMirror {
            argv: state.argv.clone(),
            env: state.env.clone(),
            preopens: state.preopens.clone(),
            fds,
            free,
            clock_offset_ns: 0,
            stderr_line: None,
        };
        let now = mirror.monotonic(ctx)?;
        mirror.clock_offset_ns = state.monotonic_ns.saturating_sub(now);
        Ok(mirror)
    }
}

/// The size and modification time (ns) of the file open at `fd`.
pub(super) fn file_stat(ctx: &mut WasiP1Ctx, fd: u32) -> Result<(u64, u64), RuntimeError> {
    // A WASI `filestat` is 64 bytes: size at 32, mtim at 48, both u64 little-endian.
    let mut stat = [0u8; 64];
    let mut mem = GuestMemory::Unshared(&mut stat);
    let errno = in_tokio(raw::fd_filestat_get(ctx, &mut mem, fd as i32, 0)).map_err(wasi_err)?;
    if errno != 0 {
        return Err(RuntimeError::Input(format!(
            "cannot read the size of descriptor {fd} (WASI errno {errno})"
        )));
    }
    let word = |at: usize| u64::from_le_bytes(stat[at..at + 8].try_into().unwrap_or([0; 8]));
    Ok((word(32), word(48)))
}

/// How [`super::rebuild`] opens a descriptor: `path_open`'s flags and rights.
pub(super) struct PathOpen {
    pub(super) dirflags: i32,
    pub(super) oflags: u16,
    pub(super) rights: i64,
    pub(super) inheriting: i64,
    pub(super) fdflags: u16,
}

impl PathOpen {
    /// The `oflags` bit of a directory.
    pub(super) const DIRECTORY: u16 = OFLAGS_DIRECTORY;

    /// A placeholder: the preopen's directory itself, with no rights.
    pub(super) fn placeholder() -> PathOpen {
        PathOpen {
            dirflags: LOOKUP_SYMLINK_FOLLOW,
            oflags: OFLAGS_DIRECTORY,
            rights: RIGHTS_NONE,
            inheriting: RIGHTS_NONE,
            fdflags: 0,
        }
    }

    /// An open file as it was opened, without the flags that would create or truncate it again.
    pub(super) fn of(f: &OpenFile) -> PathOpen {
        PathOpen {
            dirflags: f.dirflags as i32,
            oflags: f.oflags & !OFLAGS_CREATE_ONLY,
            rights: f.rights_base as i64,
            inheriting: f.rights_inheriting as i64,
            fdflags: f.fdflags,
        }
    }
}

pub(super) fn wasi_err(e: wasmtime::Error) -> RuntimeError {
    RuntimeError::Input(format!(
        "WASI failed while saving or restoring descriptors: {e:#}"
    ))
}

/// The host directory for each of the image's preopens, in order. A guest path named by the
/// restoring command's `given` mappings uses that host directory; one it does not name uses the
/// checkpoint's host directory if no mapping at all was given and that directory exists here.
/// Anything else is an error naming the flag to add.
pub fn restore_dirs(preopens: &[Preopen], given: &[DirMap]) -> Result<Vec<DirMap>, RuntimeError> {
    let mut out = Vec::with_capacity(preopens.len());
    for p in preopens {
        let chosen = given.iter().find(|d| d.guest == p.guest);
        let host = match chosen {
            Some(d) => d.host.clone(),
            None if given.is_empty() && std::path::Path::new(&p.host).is_dir() => {
                spdlog::info!(
                    "guest directory {} maps to {} as when it was checkpointed",
                    p.guest,
                    p.host
                );
                p.host.clone().into()
            }
            None => {
                return Err(RuntimeError::Input(format!(
                    "the program had guest directory {} open (host {} at checkpoint){}; pass --dir HOST::{}",
                    p.guest,
                    p.host,
                    if given.is_empty() { ", which does not exist here" } else { "" },
                    p.guest
                )))
            }
        };
        out.push(DirMap {
            host,
            guest: p.guest.clone(),
        });
    }
    for d in given {
        if !preopens.iter().any(|p| p.guest == d.guest) {
            spdlog::warn!(
                "--dir {}::{}: the program did not have {} open when it was checkpointed; ignored",
                d.host.display(),
                d.guest,
                d.guest
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_folds_dots_and_stays_inside() {
        assert_eq!(join("", "a/./b"), "a/b");
        assert_eq!(join("a/b", "../c"), "a/c");
        assert_eq!(join("", "../../x"), "x");
        assert_eq!(join("a", ".."), ".");
    }

    #[test]
    fn the_mirror_allocates_like_wasi() {
        let dirs = [DirMap::parse("/tmp::/data"), DirMap::parse("/tmp::/other")];
        let mut s = DescriptorMirror::new(&[], &[], &dirs);
        let mut mem = vec![0u8; 64];
        mem[32..37].copy_from_slice(b"f.txt");
        let open = |s: &mut DescriptorMirror, mem: &mut Vec<u8>, fd: u32| {
            mem[0..4].copy_from_slice(&fd.to_le_bytes());
            s.observe("path_open", &[3, 1, 32, 5, 9, 2, 0, 1, 0], mem);
        };
        open(&mut s, &mut mem, 5);
        open(&mut s, &mut mem, 6);
        s.observe("fd_close", &[5], &mem);
        assert_eq!(s.free.iter().copied().collect::<Vec<_>>(), vec![5]);
        // Renumbering over preopen 1 (descriptor 4) frees the source number.
        s.observe("fd_renumber", &[6, 4], &mem);
        assert!(
            matches!(s.fds.get(&4), Some(FdEntry::File(f)) if f.path == "f.txt" && f.oflags == 9)
        );
        assert_eq!(s.free.iter().copied().collect::<Vec<_>>(), vec![5, 6]);
        open(&mut s, &mut mem, 6);
        assert!(!s.free.contains(&6));
        // A rename moves the open files with it.
        mem[48..53].copy_from_slice(b"g.txt");
        s.observe("path_rename", &[3, 32, 5, 3, 48, 5], &mem);
        for fd in [4, 6] {
            assert!(
                matches!(s.fds.get(&fd), Some(FdEntry::File(f)) if f.path == "g.txt"),
                "descriptor {fd} follows the rename"
            );
        }
    }

    #[test]
    fn restoring_never_widens_access() {
        let p = vec![Preopen {
            guest: "/data".into(),
            host: "/definitely/not/here".into(),
        }];
        let e = restore_dirs(&p, &[]).unwrap_err().to_string();
        assert!(e.contains("pass --dir HOST::/data"), "{e}");
        let e = restore_dirs(&p, &[DirMap::parse("/tmp::/other")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("pass --dir HOST::/data"), "{e}");
        let ok = restore_dirs(&p, &[DirMap::parse("/tmp::/data")]).unwrap();
        assert_eq!(ok, vec![DirMap::parse("/tmp::/data")]);
    }
}

//! Rebuilding an image's descriptor table in a fresh WASI context, number for number.
//!
//! A fresh context has the standard streams at 0–2 and preopen `i` at `3 + i` (their *home*
//! numbers); WASI hands out a freed number highest first, else one above the highest in use, and
//! `fd_renumber` moves a descriptor onto a number that is in use. The image may have moved any of
//! them (`fd_renumber`), closed them, and put files anywhere. [`rebuild`] gets there with WASI
//! calls only, keeping no number free until the end so that each open lands where it must:
//!
//! 1. every number from `3 + n` to the table's top is opened: a file where the image has one, a
//!    placeholder (a directory handle nobody reads) elsewhere;
//! 2. every home descriptor the image moved is renumbered onto its number, which then holds a
//!    placeholder, and a placeholder refills its home (a cycle of moves goes through a placeholder
//!    the image leaves free); one the image closed is replaced by a placeholder where its number is
//!    needed;
//! 3. files the image has below `3 + n` are opened where their placeholder was;
//! 4. every number the image does not use is closed, which frees exactly the image's free numbers.

use super::mirror::{file_stat, le_u32, wasi_err, PathOpen, REPLAY_FUEL};
use crate::error::RuntimeError;
use mvvm_checkpoint::{FdEntry, WasiState};
use std::collections::{BTreeMap, BTreeSet};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as raw, WasiSnapshotPreview1};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

/// What a number of the context being rebuilt holds.
#[derive(Clone, Debug, PartialEq)]
enum Holder {
    /// A standard stream or preopen of the fresh context, as the image names it.
    Home(FdEntry),
    /// The image's file at this number.
    File,
    /// A directory handle that only occupies the number.
    Placeholder,
}

/// The context being rebuilt and what each of its numbers holds.
struct Rebuild<'c> {
    ctx: &'c mut WasiP1Ctx,
    holds: BTreeMap<u32, Holder>,
    free: BTreeSet<u32>,
    scratch: Vec<u8>,
    /// Reopen files that changed since the checkpoint instead of refusing them.
    allow_changed_files: bool,
}

/// Rebuilds `state`'s table in `ctx`, a fresh context with `state`'s preopens in order. Returns the
/// table and its free numbers. A file whose size or modification time differs from the
/// checkpoint's is refused unless `allow_changed_files`; one shorter than its offset always is.
pub(super) fn rebuild(
    ctx: &mut WasiP1Ctx,
    state: &WasiState,
    allow_changed_files: bool,
) -> Result<(BTreeMap<u32, FdEntry>, BTreeSet<u32>), RuntimeError> {
    ctx.set_hostcall_fuel(REPLAY_FUEL);
    let n = state.preopens.len() as u32;
    let want: BTreeMap<u32, FdEntry> = state.fds.iter().cloned().collect();
    check_entries(&want, n)?;
    let top = want
        .keys()
        .chain(state.free_fds.iter())
        .copied()
        .chain(std::iter::once(2 + n))
        .max()
        .unwrap_or(2);
    let mut holds = BTreeMap::new();
    for k in 0..3 {
        holds.insert(k, Holder::Home(FdEntry::Stdio(k)));
    }
    for i in 0..n {
        holds.insert(3 + i, Holder::Home(FdEntry::Preopen(i)));
    }
    let mut r = Rebuild {
        ctx,
        holds,
        free: BTreeSet::new(),
        scratch: vec![0u8; 4096 + 16],
        allow_changed_files,
    };
    for fd in (3 + n)..=top {
        match want.get(&fd) {
            Some(FdEntry::File(_)) => r.open_file(&want, state, fd)?,
            _ => r.expect_placeholder(fd)?,
        }
    }
    r.move_homes(&want)?;
    for (fd, e) in &want {
        if *fd < 3 + n && matches!(e, FdEntry::File(_)) {
            r.close(*fd)?;
            r.open_file(&want, state, *fd)?;
        }
    }
    let unused: Vec<u32> = r
        .holds
        .keys()
        .filter(|fd| !want.contains_key(fd))
        .copied()
        .collect();
    for fd in unused {
        r.close(fd)?;
    }
    let image_free: BTreeSet<u32> = state.free_fds.iter().copied().collect();
    if r.free != image_free {
        return Err(RuntimeError::Input(format!(
            "the image's free descriptors {image_free:?} cannot be rebuilt exactly (got {:?}); the image is damaged, or its table needs a spare descriptor it does not have",
            r.free
        )));
    }
    Ok((want, r.free))
}

/// Each standard stream and preopen appears at most once, and files lie under listed preopens.
fn check_entries(want: &BTreeMap<u32, FdEntry>, n: u32) -> Result<(), RuntimeError> {
    let damaged = |what: String| {
        RuntimeError::Input(format!(
            "the image's descriptor table {what}; the image is damaged"
        ))
    };
    let mut seen: Vec<&FdEntry> = Vec::new();
    for (fd, e) in want {
        match e {
            FdEntry::Stdio(k) if *k >= 3 => return Err(damaged(format!("has stdio stream {k}"))),
            FdEntry::Preopen(i) if *i >= n => {
                return Err(damaged(format!("has preopen {i} of {n}")))
            }
            FdEntry::File(f) if f.preopen >= n => {
                return Err(damaged(format!(
                    "has descriptor {fd} under preopen {}, which it does not list",
                    f.preopen
                )))
            }
            FdEntry::Stdio(_) | FdEntry::Preopen(_) if seen.contains(&e) => {
                return Err(damaged(format!("has {e:?} twice")))
            }
            FdEntry::Stdio(_) | FdEntry::Preopen(_) => seen.push(e),
            FdEntry::File(_) => {}
        }
    }
    Ok(())
}

impl Rebuild<'_> {
    /// Moves every home descriptor to where the image has it (see the module's step 2).
    fn move_homes(&mut self, want: &BTreeMap<u32, FdEntry>) -> Result<(), RuntimeError> {
        let target = |e: &FdEntry| want.iter().find(|(_, w)| *w == e).map(|(fd, _)| *fd);
        // (where it is, where the image has it) for every home descriptor not at its number.
        let mut pending: Vec<(u32, Option<u32>)> = self
            .holds
            .iter()
            .filter_map(|(fd, h)| match h {
                Holder::Home(e) if target(e) != Some(*fd) => Some((*fd, target(e))),
                _ => None,
            })
            .collect();
        // Closed ones first where their number is needed; a preopen goes to a spare number, as a
        // file below `3 + n` may still have to be opened through it.
        for (from, _) in pending.iter_mut().filter(|(_, t)| t.is_none()) {
            if want.contains_key(from) {
                let preopen = matches!(
                    self.holds.get(from),
                    Some(Holder::Home(FdEntry::Preopen(_)))
                );
                if preopen {
                    let spare = self.spare(want)?;
                    self.renumber_and_refill(*from, spare)?;
                    *from = spare;
                } else {
                    self.close(*from)?;
                    self.expect_placeholder(*from)?;
                }
            }
        }
        pending.retain(|(_, t)| t.is_some());
        while !pending.is_empty() {
            let ready = pending.iter().position(|(_, t)| {
                t.is_some_and(|t| self.holds.get(&t) == Some(&Holder::Placeholder))
            });
            match ready {
                Some(k) => {
                    let (from, t) = pending.swap_remove(k);
                    self.renumber_and_refill(from, t.unwrap_or(from))?;
                }
                None => {
                    // A cycle: move one of them aside, onto a spare number.
                    let spare = self.spare(want)?;
                    self.renumber_and_refill(pending[0].0, spare)?;
                    pending[0].0 = spare;
                }
            }
        }
        Ok(())
    }

    /// A number holding a placeholder that the image leaves free (so no move targets it); a new
    /// placeholder above the table if there is none (the final check then reports it).
    fn spare(&mut self, want: &BTreeMap<u32, FdEntry>) -> Result<u32, RuntimeError> {
        let found = self
            .holds
            .iter()
            .find(|(fd, h)| **h == Holder::Placeholder && !want.contains_key(fd))
            .map(|(fd, _)| *fd);
        match found {
            Some(fd) => Ok(fd),
            None => {
                let fd = self.placeholder()?;
                Ok(fd)
            }
        }
    }

    /// `fd_renumber(from, to)` (closing what `to` held), then a placeholder refills `from`.
    fn renumber_and_refill(&mut self, from: u32, to: u32) -> Result<(), RuntimeError> {
        let mut mem = GuestMemory::Unshared(&mut self.scratch);
        let errno = in_tokio(raw::fd_renumber(self.ctx, &mut mem, from as i32, to as i32))
            .map_err(wasi_err)?;
        if errno != 0 {
            return Err(RuntimeError::Input(format!(
                "cannot move descriptor {from} to {to} while rebuilding the image's table (WASI errno {errno})"
            )));
        }
        let moved = self.holds.remove(&from).unwrap_or(Holder::Placeholder);
        self.holds.insert(to, moved);
        self.free.insert(from);
        self.expect_placeholder(from)
    }

    /// Closes `fd`.
    fn close(&mut self, fd: u32) -> Result<(), RuntimeError> {
        let mut mem = GuestMemory::Unshared(&mut self.scratch);
        let errno = in_tokio(raw::fd_close(self.ctx, &mut mem, fd as i32)).map_err(wasi_err)?;
        if errno != 0 {
            return Err(RuntimeError::Input(format!(
                "cannot close descriptor {fd} while rebuilding the image's table (WASI errno {errno})"
            )));
        }
        self.holds.remove(&fd);
        self.free.insert(fd);
        Ok(())
    }

    /// The number WASI gives the next open.
    fn next_number(&self) -> u32 {
        match self.free.last() {
            Some(fd) => *fd,
            None => self.holds.keys().last().map_or(0, |fd| fd + 1),
        }
    }

    /// Opens a placeholder and checks it landed on `fd`.
    fn expect_placeholder(&mut self, fd: u32) -> Result<(), RuntimeError> {
        let got = self.placeholder()?;
        if got != fd {
            return Err(RuntimeError::Input(format!(
                "rebuilding the image's table put a placeholder at descriptor {got}, not {fd}; the image's descriptor table is inconsistent"
            )));
        }
        Ok(())
    }

    /// Opens a placeholder: the directory of the first preopen still open.
    fn placeholder(&mut self) -> Result<u32, RuntimeError> {
        let dir = self.holds.iter().find_map(|(fd, h)| match h {
            Holder::Home(FdEntry::Preopen(_)) => Some(*fd),
            _ => None,
        });
        let Some(dir) = dir else {
            return Err(RuntimeError::Input(
                "the image's descriptor table needs a spare descriptor, but no preopened directory is open to make one".into(),
            ));
        };
        let fd = self.path_open(dir, &PathOpen::placeholder(), "placeholder", ".")?;
        self.holds.insert(fd, Holder::Placeholder);
        Ok(fd)
    }

    /// Opens the image's file at `fd` (through its preopen, wherever that is now) and seeks it.
    fn open_file(
        &mut self,
        want: &BTreeMap<u32, FdEntry>,
        state: &WasiState,
        fd: u32,
    ) -> Result<(), RuntimeError> {
        let Some(FdEntry::File(f)) = want.get(&fd) else {
            return Err(RuntimeError::Input(format!(
                "descriptor {fd} is not a file"
            )));
        };
        let dir = self.holds.iter().find_map(|(at, h)| match h {
            Holder::Home(FdEntry::Preopen(i)) if *i == f.preopen => Some(*at),
            _ => None,
        });
        let guest_dir = &state.preopens[f.preopen as usize].guest;
        let Some(dir) = dir else {
            return Err(RuntimeError::Input(format!(
                "cannot reopen {:?}: its directory {guest_dir} was closed before the checkpoint",
                f.path
            )));
        };
        let got = self.path_open(dir, &PathOpen::of(f), guest_dir, &f.path)?;
        if got != fd {
            return Err(RuntimeError::Input(format!(
                "reopening descriptor {fd} produced descriptor {got}; the image's descriptor table is inconsistent"
            )));
        }
        self.holds.insert(fd, Holder::File);
        if f.oflags & PathOpen::DIRECTORY == 0 {
            self.check_unchanged(fd, f, guest_dir)?;
        }
        if f.offset > 0 {
            let mut mem = GuestMemory::Unshared(&mut self.scratch);
            let errno = in_tokio(raw::fd_seek(
                self.ctx,
                &mut mem,
                fd as i32,
                f.offset as i64,
                0,
                0,
            ))
            .map_err(wasi_err)?;
            if errno != 0 {
                return Err(RuntimeError::Input(format!(
                    "cannot seek {:?} under {guest_dir} to offset {} (WASI errno {errno})",
                    f.path, f.offset
                )));
            }
        }
        Ok(())
    }

    /// Refuses a file that no longer is what the program had open: shorter than its offset (the
    /// program would read a hole), or, unless allowed, of another size or modification time.
    fn check_unchanged(
        &mut self,
        fd: u32,
        f: &mvvm_checkpoint::OpenFile,
        guest_dir: &str,
    ) -> Result<(), RuntimeError> {
        let (size, mtime_ns) = file_stat(self.ctx, fd)?;
        let name = format!("{guest_dir}/{}", f.path);
        if size < f.offset {
            return Err(RuntimeError::Input(format!(
                "{name} is {size} bytes, shorter than the offset {} the program had reached; it changed since the checkpoint, so the image cannot resume",
                f.offset
            )));
        }
        if (size, mtime_ns) != (f.size, f.mtime_ns) && !self.allow_changed_files {
            return Err(RuntimeError::Input(format!(
                "{name} changed since the checkpoint ({} bytes then, {size} now, or modified since); restore the files as they were, or pass --allow-changed-files",
                f.size
            )));
        }
        Ok(())
    }

    /// `path_open(dir, path)` with `how`; returns the number WASI gave it.
    fn path_open(
        &mut self,
        dir: u32,
        how: &PathOpen,
        guest_dir: &str,
        path: &str,
    ) -> Result<u32, RuntimeError> {
        let bytes = path.as_bytes();
        if bytes.len() > self.scratch.len() - 16 {
            return Err(RuntimeError::Input(format!(
                "the image has a path longer than 4096 bytes: {path:?}"
            )));
        }
        let expected = self.next_number();
        self.scratch[16..16 + bytes.len()].copy_from_slice(bytes);
        let mut mem = GuestMemory::Unshared(&mut self.scratch);
        let errno = in_tokio(raw::path_open(
            self.ctx,
            &mut mem,
            dir as i32,
            how.dirflags,
            16,
            bytes.len() as i32,
            i32::from(how.oflags),
            how.rights,
            how.inheriting,
            i32::from(how.fdflags),
            0,
        ))
        .map_err(wasi_err)?;
        if errno != 0 {
            return Err(RuntimeError::Input(format!(
                "cannot reopen {path:?} under {guest_dir} (WASI errno {errno}); was it deleted or moved, or does --dir map {guest_dir} to the wrong directory?"
            )));
        }
        let got = le_u32(&self.scratch, 0).unwrap_or(u32::MAX);
        self.free.remove(&got);
        if got != expected {
            spdlog::debug!("path_open gave {got}, expected {expected}");
        }
        Ok(got)
    }
}

//! Atomic file writes: a crash never leaves a half-written file under the final name.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Who may read a file [`atomic_write_as`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only its owner (mode 0600): images, which hold a program's memory and environment.
    Private,
    /// As the user's umask allows (mode 0666 before the umask), like any file a tool writes:
    /// `.aot` files, reports.
    Shared,
}

/// Writes `bytes` to `path` atomically, readable only by its owner (see [`atomic_write_as`]).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    atomic_write_as(path, bytes, Access::Private)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory is written, synced,
/// and renamed over `path`, and the directory is synced. Whatever `path` held before stays intact
/// until the rename.
pub fn atomic_write_as(path: &Path, bytes: &[u8], access: Access) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mode = match access {
        Access::Private => 0o600,
        Access::Shared => 0o666,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".mvvm-tmp-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{atomic_write, atomic_write_as, Access};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_files_are_0600_and_shared_ones_follow_the_umask() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mode = |p: &std::path::Path| {
            std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777
        };
        let private = dir.path().join("a.ckpt");
        atomic_write(&private, b"x").expect("write");
        assert_eq!(mode(&private), 0o600);
        let shared = dir.path().join("a.aot");
        atomic_write_as(&shared, b"x", Access::Shared).expect("write");
        // SAFETY: umask only reads and sets this process's mask; it is set back at once.
        let umask = unsafe {
            let m = libc::umask(0o022);
            libc::umask(m);
            m
        };
        assert_eq!(mode(&shared), 0o666 & !(umask as u32));
    }
}

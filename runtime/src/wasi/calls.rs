//! The table of WASI preview1 functions: for each, its class (what multi-variant execution does
//! with it) and the role of each raw argument, from which a call is decoded into content (bytes
//! and values, never guest pointers) and its results are captured from one variant's memory and
//! applied to another's, whose buffers may lie elsewhere.
//!
//! The dispatch point ([`super::dispatch`]) sees every call as a name and raw arguments; this
//! table is what gives those arguments meaning. docs/MVX.md describes the classes and events.

use serde::{Deserialize, Serialize};

/// What a variant pair does with a call (docs/MVX.md, "Classes").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum CallClass {
    /// The master executes it; followers get its result and memory writes, in their own buffers.
    Replicated,
    /// Compared by content across variants before the master executes it (it acts on the world).
    Compared,
    /// Changes the descriptor table: compared, and followers adopt the master's descriptor numbers.
    Descriptor,
    /// Each variant answers it from the same configuration (arguments, environment, preopens).
    Local,
    /// `proc_exit`: the last synchronisation point, where the exit statuses are compared.
    Exit,
}

/// The role of one raw argument. Indices name other raw arguments of the same call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A descriptor number.
    Fd,
    /// A scalar: flags, an offset, a length that stands alone, a clock id, a signal.
    Value,
    /// A pointer to `len` input bytes, the length being argument `len` (a path, a buffer).
    InBytes {
        /// The argument holding the length.
        len: usize,
    },
    /// A pointer to `count` input iovecs (`ciovec`: pointer and length, 8 bytes each).
    InIovecs {
        /// The argument holding the number of iovecs.
        count: usize,
    },
    /// A pointer to `count` input records of `size` bytes (poll subscriptions).
    InArray {
        /// The size of one record.
        size: u32,
        /// The argument holding the number of records.
        count: usize,
    },
    /// The length or count of another argument; decoded with it.
    Length,
    /// A pointer to `count` output iovecs, filled with as many bytes as the `u32` at argument
    /// `used` says.
    OutIovecs {
        /// The argument holding the number of iovecs.
        count: usize,
        /// The argument pointing at the number of bytes written.
        used: usize,
    },
    /// A pointer to an output buffer of argument `len` bytes, filled entirely or, with `used`,
    /// with as many bytes as the `u32` at that argument says.
    OutBuffer {
        /// The argument holding the buffer's length.
        len: usize,
        /// The argument pointing at the number of bytes written, if the call says.
        used: Option<usize>,
    },
    /// A pointer to an output record of `size` bytes (a count, an offset, a filestat).
    Out {
        /// The record's size.
        size: u32,
    },
    /// A pointer to room for argument `capacity` output records of `size` bytes, of which the
    /// call fills as many as the `u32` at argument `count` says.
    OutArray {
        /// The size of one record.
        size: u32,
        /// The argument holding how many records there is room for.
        capacity: usize,
        /// The argument pointing at the number of records written.
        count: usize,
    },
    /// A pointer whose contents each variant answers itself and nobody compares (`args_get`).
    Answered,
}

/// One WASI function.
#[derive(Debug)]
pub struct CallSpec {
    /// Its name, as imported from `wasi_snapshot_preview1`.
    pub name: &'static str,
    /// What a variant pair does with it.
    pub class: CallClass,
    /// The role of each raw argument, in order.
    pub args: &'static [Arg],
}

use Arg::*;
use CallClass::*;

const U16: Arg = Out { size: 2 };
const U32: Arg = Out { size: 4 };
const U64: Arg = Out { size: 8 };
const FILESTAT: Arg = Out { size: 64 };
const FDSTAT: Arg = Out { size: 24 };
const PATH_AT_2: Arg = InBytes { len: 3 };

macro_rules! specs {
    ($( $name:ident $class:ident [$($arg:expr),*] ;)*) => {
        /// Every WASI preview1 function, in the order of the `wasi_snapshot_preview1` interface.
        pub const CALLS: &[CallSpec] = &[
            $( CallSpec { name: stringify!($name), class: $class, args: &[$($arg),*] } ),*
        ];
    };
}

specs! {
    args_get Local [Answered, Answered];
    args_sizes_get Local [Answered, Answered];
    environ_get Local [Answered, Answered];
    environ_sizes_get Local [Answered, Answered];
    clock_res_get Replicated [Value, U64];
    clock_time_get Replicated [Value, Value, U64];
    fd_advise Compared [Fd, Value, Value, Value];
    fd_allocate Compared [Fd, Value, Value];
    fd_close Descriptor [Fd];
    fd_datasync Compared [Fd];
    fd_fdstat_get Replicated [Fd, FDSTAT];
    fd_fdstat_set_flags Compared [Fd, Value];
    fd_fdstat_set_rights Compared [Fd, Value, Value];
    fd_filestat_get Replicated [Fd, FILESTAT];
    fd_filestat_set_size Compared [Fd, Value];
    fd_filestat_set_times Compared [Fd, Value, Value, Value];
    fd_pread Replicated [Fd, OutIovecs { count: 2, used: 4 }, Length, Value, U32];
    fd_prestat_get Local [Fd, Answered];
    fd_prestat_dir_name Local [Fd, Answered, Value];
    fd_pwrite Compared [Fd, InIovecs { count: 2 }, Length, Value, U32];
    fd_read Replicated [Fd, OutIovecs { count: 2, used: 3 }, Length, U32];
    fd_readdir Replicated [Fd, OutBuffer { len: 2, used: Some(4) }, Length, Value, U32];
    fd_renumber Descriptor [Fd, Fd];
    fd_seek Replicated [Fd, Value, Value, U64];
    fd_sync Compared [Fd];
    fd_tell Replicated [Fd, U64];
    fd_write Compared [Fd, InIovecs { count: 2 }, Length, U32];
    path_create_directory Compared [Fd, InBytes { len: 2 }, Length];
    path_filestat_get Replicated [Fd, Value, PATH_AT_2, Length, FILESTAT];
    path_filestat_set_times Compared [Fd, Value, PATH_AT_2, Length, Value, Value, Value];
    path_link Compared [Fd, Value, PATH_AT_2, Length, Fd, InBytes { len: 6 }, Length];
    path_open Descriptor [Fd, Value, PATH_AT_2, Length, Value, Value, Value, Value, U32];
    path_readlink Replicated [Fd, InBytes { len: 2 }, Length, OutBuffer { len: 4, used: Some(5) }, Length, U32];
    path_remove_directory Compared [Fd, InBytes { len: 2 }, Length];
    path_rename Compared [Fd, InBytes { len: 2 }, Length, Fd, InBytes { len: 5 }, Length];
    path_symlink Compared [InBytes { len: 1 }, Length, Fd, InBytes { len: 4 }, Length];
    path_unlink_file Compared [Fd, InBytes { len: 2 }, Length];
    poll_oneoff Replicated [InArray { size: 48, count: 2 }, OutArray { size: 32, capacity: 2, count: 3 }, Length, U32];
    proc_exit Exit [Value];
    proc_raise Compared [Value];
    sched_yield Local [];
    random_get Replicated [OutBuffer { len: 1, used: None }, Length];
    sock_accept Descriptor [Fd, Value, U32];
    sock_recv Replicated [Fd, OutIovecs { count: 2, used: 4 }, Length, Value, U32, U16];
    sock_send Compared [Fd, InIovecs { count: 2 }, Length, Value, U32];
    sock_shutdown Compared [Fd, Value];
}

/// The table entry of the function named `name`.
pub fn spec(name: &str) -> Option<&'static CallSpec> {
    CALLS.iter().find(|c| c.name == name)
}

impl CallSpec {
    /// The raw argument each of [`decode_inputs`]'s contents comes from, in order, and what it
    /// is, in words (for reports).
    pub fn inputs(&self) -> impl Iterator<Item = (usize, &'static str)> + '_ {
        self.args.iter().enumerate().filter_map(|(i, role)| {
            let what = match role {
                Fd => "a descriptor",
                Value => "a value",
                InBytes { .. } if self.name.starts_with("path_") => "a path",
                InBytes { .. } => "bytes",
                InIovecs { .. } => "the bytes of its iovecs",
                InArray { .. } => "its records",
                _ => return None,
            };
            Some((i, what))
        })
    }
}

/// An argument of a call, by content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Content {
    /// A descriptor number.
    Fd(u32),
    /// A scalar argument.
    Value(i64),
    /// The bytes a pointer argument points at (a path, the iovecs' bytes concatenated).
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
}

/// Why an argument could not be read or written: it points outside the guest's memory.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{call}: argument {arg} points outside the guest's memory")]
pub struct OutOfBounds {
    /// The function.
    pub call: &'static str,
    /// The raw argument's index.
    pub arg: usize,
}

/// Guest memory seen through one call's raw arguments.
struct View<'a> {
    spec: &'static CallSpec,
    args: &'a [i64],
}

impl View<'_> {
    fn raw(&self, i: usize) -> Result<i64, OutOfBounds> {
        self.args.get(i).copied().ok_or(self.bad(i))
    }

    fn bad(&self, arg: usize) -> OutOfBounds {
        OutOfBounds {
            call: self.spec.name,
            arg,
        }
    }

    /// The range `[at, at + len)` of a memory of `size` bytes, or an error naming argument `i`.
    fn range(
        &self,
        i: usize,
        at: i64,
        len: u64,
        size: usize,
    ) -> Result<std::ops::Range<usize>, OutOfBounds> {
        let start = u32::try_from(at).map_err(|_| self.bad(i))? as usize;
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| start.checked_add(l))
            .filter(|&e| e <= size)
            .ok_or(self.bad(i))?;
        Ok(start..end)
    }

    fn u32_at(&self, i: usize, mem: &[u8], at: i64) -> Result<u32, OutOfBounds> {
        let r = self.range(i, at, 4, mem.len())?;
        let mut b = [0u8; 4];
        b.copy_from_slice(&mem[r]);
        Ok(u32::from_le_bytes(b))
    }

    /// The u32 that argument `i` points at.
    fn pointee_u32(&self, i: usize, mem: &[u8]) -> Result<u32, OutOfBounds> {
        self.u32_at(i, mem, self.raw(i)?)
    }

    /// The ranges of the `count` iovecs at argument `i`, clipped to `limit` bytes in all.
    fn iovecs(
        &self,
        i: usize,
        count: usize,
        mem: &[u8],
        limit: u64,
    ) -> Result<Vec<std::ops::Range<usize>>, OutOfBounds> {
        let base = self.raw(i)?;
        let n = u32::try_from(self.raw(count)?).map_err(|_| self.bad(count))?;
        // Bound the count by the memory before walking it.
        self.range(i, base, u64::from(n) * 8, mem.len())?;
        let mut left = limit;
        let mut out = Vec::new();
        for k in 0..i64::from(n) {
            let buf = self.u32_at(i, mem, base + 8 * k)?;
            let len = self.u32_at(i, mem, base + 8 * k + 4)?;
            let used = u64::from(len).min(left);
            out.push(self.range(i, i64::from(buf), used, mem.len())?);
            left -= used;
        }
        Ok(out)
    }
}

/// The inputs of a call by content: one [`Content`] per argument that is not a length, an
/// output or answered locally. Two variants making the same call get equal inputs wherever
/// their buffers lie.
pub fn decode_inputs(
    spec: &'static CallSpec,
    args: &[i64],
    mem: &[u8],
) -> Result<Vec<Content>, OutOfBounds> {
    let v = View { spec, args };
    let mut inputs = Vec::new();
    for (i, role) in spec.args.iter().enumerate() {
        match *role {
            Fd => inputs.push(Content::Fd(v.raw(i)? as u32)),
            Value => inputs.push(Content::Value(v.raw(i)?)),
            InBytes { len } => {
                let len = u32::try_from(v.raw(len)?).map_err(|_| v.bad(len))?;
                let r = v.range(i, v.raw(i)?, u64::from(len), mem.len())?;
                inputs.push(Content::Bytes(mem[r].to_vec()));
            }
            InIovecs { count } => {
                let mut bytes = Vec::new();
                for r in v.iovecs(i, count, mem, u64::MAX)? {
                    bytes.extend_from_slice(&mem[r]);
                }
                inputs.push(Content::Bytes(bytes));
            }
            InArray { size, count } => {
                let n = u32::try_from(v.raw(count)?).map_err(|_| v.bad(count))?;
                let r = v.range(i, v.raw(i)?, u64::from(size) * u64::from(n), mem.len())?;
                inputs.push(Content::Bytes(mem[r].to_vec()));
            }
            Length
            | Answered
            | OutIovecs { .. }
            | OutBuffer { .. }
            | Out { .. }
            | OutArray { .. } => {}
        }
    }
    Ok(inputs)
}

/// What a call that has just run wrote into guest memory, one byte string per output argument
/// in order: the bytes it read, counts, records.
pub fn capture_outputs(
    spec: &'static CallSpec,
    args: &[i64],
    mem: &[u8],
) -> Result<Vec<Vec<u8>>, OutOfBounds> {
    let v = View { spec, args };
    let mut outputs = Vec::new();
    for (i, role) in spec.args.iter().enumerate() {
        let ranges = match *role {
            OutIovecs { count, used } => {
                v.iovecs(i, count, mem, u64::from(v.pointee_u32(used, mem)?))?
            }
            OutBuffer { len, used } => {
                let len = u32::try_from(v.raw(len)?).map_err(|_| v.bad(len))?;
                let n = match used {
                    Some(u) => v.pointee_u32(u, mem)?.min(len),
                    None => len,
                };
                vec![v.range(i, v.raw(i)?, u64::from(n), mem.len())?]
            }
            Out { size } => vec![v.range(i, v.raw(i)?, u64::from(size), mem.len())?],
            OutArray { size, count, .. } => {
                let n = v.pointee_u32(count, mem)?;
                vec![v.range(i, v.raw(i)?, u64::from(size) * u64::from(n), mem.len())?]
            }
            _ => continue,
        };
        outputs.push(
            ranges
                .into_iter()
                .flat_map(|r| mem[r].iter().copied())
                .collect(),
        );
    }
    Ok(outputs)
}

/// How many bytes the first output iovecs of a call can take (what a read may fill).
pub fn output_capacity(
    spec: &'static CallSpec,
    args: &[i64],
    mem: &[u8],
) -> Result<usize, OutOfBounds> {
    let v = View { spec, args };
    for (i, role) in spec.args.iter().enumerate() {
        if let OutIovecs { count, .. } = *role {
            return Ok(v
                .iovecs(i, count, mem, u64::MAX)?
                .iter()
                .map(|r| r.len())
                .sum());
        }
    }
    Ok(0)
}

/// Writes `outputs` (from [`capture_outputs`] in another variant) into this variant's buffers,
/// which its own raw `args` point at. An output longer than this variant's buffer is refused.
pub fn apply_outputs(
    spec: &'static CallSpec,
    args: &[i64],
    mem: &mut [u8],
    outputs: &[impl AsRef<[u8]>],
) -> Result<(), OutOfBounds> {
    let v = View { spec, args };
    let mut next = outputs.iter();
    for (i, role) in spec.args.iter().enumerate() {
        let ranges = match *role {
            OutIovecs { count, .. } => v.iovecs(i, count, mem, u64::MAX)?,
            OutBuffer { len, .. } => {
                let len = u32::try_from(v.raw(len)?).map_err(|_| v.bad(len))?;
                vec![v.range(i, v.raw(i)?, u64::from(len), mem.len())?]
            }
            Out { size } => vec![v.range(i, v.raw(i)?, u64::from(size), mem.len())?],
            OutArray { size, capacity, .. } => {
                let n = u32::try_from(v.raw(capacity)?).map_err(|_| v.bad(capacity))?;
                vec![v.range(i, v.raw(i)?, u64::from(size) * u64::from(n), mem.len())?]
            }
            _ => continue,
        };
        let bytes = next.next().ok_or(v.bad(i))?.as_ref();
        let room: usize = ranges.iter().map(|r| r.len()).sum();
        if bytes.len() > room {
            return Err(v.bad(i));
        }
        let mut rest = bytes;
        for r in ranges {
            let n = r.len().min(rest.len());
            mem[r.start..r.start + n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every function the dispatch point defines has an entry, with one role per raw argument,
    /// and every index a role names is an argument of the same call.
    #[test]
    fn the_table_covers_every_dispatched_function() {
        assert_eq!(CALLS.len(), super::super::dispatch::FUNCTIONS.len());
        for name in super::super::dispatch::FUNCTIONS {
            let spec = spec(name).unwrap_or_else(|| panic!("{name} has no entry"));
            let arity = super::super::dispatch::arity(name).expect("dispatched");
            assert_eq!(spec.args.len(), arity, "{name}");
            for role in spec.args {
                let named: Vec<usize> = match *role {
                    InBytes { len } => vec![len],
                    InIovecs { count } | InArray { count, .. } => vec![count],
                    OutIovecs { count, used } => vec![count, used],
                    OutBuffer { len, used } => vec![len].into_iter().chain(used).collect(),
                    OutArray {
                        capacity, count, ..
                    } => vec![capacity, count],
                    _ => vec![],
                };
                assert!(named.iter().all(|&i| i < arity), "{name}: {role:?}");
            }
        }
    }

    /// Lays out `iovecs` (pointer, length) at `at` in a 4 KiB memory.
    fn memory_with_iovecs(at: usize, iovecs: &[(u32, u32)]) -> Vec<u8> {
        let mut mem = vec![0u8; 4096];
        for (k, (p, l)) in iovecs.iter().enumerate() {
            mem[at + 8 * k..at + 8 * k + 4].copy_from_slice(&p.to_le_bytes());
            mem[at + 8 * k + 4..at + 8 * k + 8].copy_from_slice(&l.to_le_bytes());
        }
        mem
    }

    /// Two variants writing the same bytes from buffers at different addresses make equal events.
    #[test]
    fn a_write_is_decoded_by_content() {
        let write = spec("fd_write").expect("fd_write");
        let mut a = memory_with_iovecs(100, &[(1000, 3), (2000, 2)]);
        a[1000..1003].copy_from_slice(b"hel");
        a[2000..2002].copy_from_slice(b"lo");
        let mut b = memory_with_iovecs(300, &[(3000, 5)]);
        b[3000..3005].copy_from_slice(b"hello");
        let ea = decode_inputs(write, &[1, 100, 2, 50], &a).expect("a");
        let eb = decode_inputs(write, &[1, 300, 1, 60], &b).expect("b");
        assert_eq!(ea, vec![Content::Fd(1), Content::Bytes(b"hello".to_vec())]);
        assert_eq!(ea, eb);
        b[3004] = b'!';
        assert_ne!(decode_inputs(write, &[1, 300, 1, 60], &b).expect("b"), ea);
    }

    /// What a read wrote in the master's buffers lands in the follower's, wherever they are.
    #[test]
    fn a_read_is_replicated_into_other_buffers() {
        let read = spec("fd_read").expect("fd_read");
        let mut master = memory_with_iovecs(100, &[(1000, 4), (2000, 8)]);
        master[1000..1004].copy_from_slice(b"abcd");
        master[2000..2002].copy_from_slice(b"ef");
        master[50..54].copy_from_slice(&6u32.to_le_bytes());
        let outputs = capture_outputs(read, &[0, 100, 2, 50], &master).expect("capture");
        assert_eq!(
            outputs,
            vec![b"abcdef".to_vec(), 6u32.to_le_bytes().to_vec()]
        );
        let mut follower = memory_with_iovecs(200, &[(3000, 2), (3100, 16)]);
        apply_outputs(read, &[0, 200, 2, 60], &mut follower, &outputs).expect("apply");
        assert_eq!(&follower[3000..3002], b"ab");
        assert_eq!(&follower[3100..3104], b"cdef");
        assert_eq!(&follower[60..64], &6u32.to_le_bytes());
        // A follower whose buffers are smaller than what the master read is refused.
        let mut small = memory_with_iovecs(200, &[(3000, 2)]);
        assert!(apply_outputs(read, &[0, 200, 1, 60], &mut small, &outputs).is_err());
    }

    /// Pointers and counts outside memory are errors, never panics.
    #[test]
    fn out_of_bounds_arguments_are_refused() {
        let write = spec("fd_write").expect("fd_write");
        let mem = memory_with_iovecs(100, &[(4000, 200)]);
        assert!(decode_inputs(write, &[1, 100, 1, 50], &mem).is_err());
        assert!(decode_inputs(write, &[1, 4090, 1_000_000, 50], &mem).is_err());
        assert!(decode_inputs(write, &[1, -1, 1, 50], &mem).is_err());
        let random = spec("random_get").expect("random_get");
        assert!(capture_outputs(random, &[4000, 200], &mem).is_err());
    }
}

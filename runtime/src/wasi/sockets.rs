//! TCP sockets of mvvm's own: the listening socket `--tcplisten` hands the guest, and the
//! connections it accepts. The preview1 layer of wasmtime-wasi answers every socket call with
//! `ENOTSOCK`, so the dispatch point routes calls on these descriptors here instead, after the
//! call monitor has seen them (a follower of a multi-variant run is answered by its master and
//! never reaches this).
//!
//! The listener takes the descriptor after the preopened directories, as wasmtime's own
//! `--tcplisten` does; a placeholder preopen holds that number in the WASI table, so no file the
//! guest opens gets it, and its `fd_prestat_get` says `EBADF`, which ends wasi-libc's scan of
//! preopens there. Accepted connections get descriptors from [`FIRST_CONNECTION`] up, far above
//! any the WASI table hands out.

use super::calls::{self, Content};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;

/// The first descriptor an accepted connection gets.
pub const FIRST_CONNECTION: u32 = 1 << 30;

/// WASI errno values used here.
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const AGAIN: i32 = 6;
    pub const BADF: i32 = 8;
    pub const CONNRESET: i32 = 15;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const NOTSOCK: i32 = 57;
    pub const PIPE: i32 = 64;
}

/// The sockets of one run.
#[derive(Default)]
pub struct Sockets {
    /// The listening socket and its descriptor.
    listener: Option<(u32, Arc<TcpListener>)>,
    /// Accepted connections by descriptor.
    connections: BTreeMap<u32, TcpStream>,
    /// The descriptor the next connection gets.
    next: u32,
    /// The empty directory whose preopen holds the listener's number in the WASI table, kept
    /// (and removed when the run ends) by being owned here.
    _placeholder: Option<tempfile::TempDir>,
}

impl Sockets {
    /// The sockets of a run given `listener` at descriptor `fd`, if any, whose number the
    /// preopen of `placeholder` holds.
    pub fn new(
        listener: Option<(u32, Arc<TcpListener>)>,
        placeholder: Option<tempfile::TempDir>,
    ) -> Sockets {
        Sockets {
            listener,
            connections: BTreeMap::new(),
            next: FIRST_CONNECTION,
            _placeholder: placeholder,
        }
    }

    /// Runs `name` if its first argument is one of these sockets, returning its errno; `None`
    /// leaves the call to the WASI implementation. Every WASI call passes here: a run without
    /// sockets returns at the first test.
    pub fn handle(&mut self, name: &str, args: &[i64], mem: &mut [u8]) -> Option<i32> {
        if self.listener.is_none() && self.connections.is_empty() {
            return None;
        }
        let spec = calls::spec(name)?;
        // Only a descriptor argument names a socket (a clock id or a pointer may equal one).
        if spec.args.first() != Some(&calls::Arg::Fd) {
            return None;
        }
        let fd = u32::try_from(*args.first()?).ok()?;
        let listening = self.listener.as_ref().is_some_and(|(l, _)| *l == fd);
        if !listening && !self.connections.contains_key(&fd) {
            return None;
        }
        Some(match (name, listening) {
            ("fd_prestat_get", _) => errno::BADF,
            ("sock_accept", true) => self.accept(spec, args, mem),
            ("fd_close", _) => self.close(fd),
            ("fd_fdstat_get", _) => fdstat(spec, args, mem),
            (_, true) => errno::INVAL,
            (_, false) => {
                let stream = self.connections.get_mut(&fd)?;
                match name {
                    "sock_recv" | "fd_read" => receive(stream, spec, args, mem),
                    "sock_send" | "fd_write" => send(stream, spec, args, mem),
                    "sock_shutdown" => shutdown(stream, args),
                    _ => errno::NOTSOCK,
                }
            }
        })
    }

    fn accept(&mut self, spec: &'static calls::CallSpec, args: &[i64], mem: &mut [u8]) -> i32 {
        let Some((_, listener)) = &self.listener else {
            return errno::BADF;
        };
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) => return errno_of(&e),
        };
        let _ = stream.set_nodelay(true);
        let fd = self.next;
        let written = written(calls::apply_outputs(spec, args, mem, &[fd.to_le_bytes()]));
        if written != errno::SUCCESS {
            return written;
        }
        self.next += 1;
        self.connections.insert(fd, stream);
        errno::SUCCESS
    }

    fn close(&mut self, fd: u32) -> i32 {
        if self.connections.remove(&fd).is_none() {
            self.listener = None;
        }
        errno::SUCCESS
    }
}

/// `sock_recv` or `fd_read` on `stream`: as many bytes as one read gives, into the iovecs.
fn receive(
    stream: &mut TcpStream,
    spec: &'static calls::CallSpec,
    args: &[i64],
    mem: &mut [u8],
) -> i32 {
    let Ok(room) = calls::output_capacity(spec, args, mem) else {
        return errno::FAULT;
    };
    let mut buf = vec![0; room];
    let n = match stream.read(&mut buf) {
        Ok(n) => n,
        Err(e) => return errno_of(&e),
    };
    let count = (n as u32).to_le_bytes();
    written(match spec.name {
        "sock_recv" => calls::apply_outputs(spec, args, mem, &[&buf[..n], &count, &[0, 0]]),
        _ => calls::apply_outputs(spec, args, mem, &[&buf[..n], &count]),
    })
}

/// `sock_send` or `fd_write` on `stream`: every byte of the iovecs.
fn send(
    stream: &mut TcpStream,
    spec: &'static calls::CallSpec,
    args: &[i64],
    mem: &mut [u8],
) -> i32 {
    let bytes = match calls::decode_inputs(spec, args, mem).as_deref() {
        Ok([_, Content::Bytes(b), ..]) => b.clone(),
        _ => return errno::FAULT,
    };
    if let Err(e) = stream.write_all(&bytes) {
        return errno_of(&e);
    }
    let count = (bytes.len() as u32).to_le_bytes();
    written(calls::apply_outputs(spec, args, mem, &[count]))
}

/// `sock_shutdown` on `stream`.
fn shutdown(stream: &TcpStream, args: &[i64]) -> i32 {
    let how = match args.get(1) {
        Some(1) => Shutdown::Read,
        Some(2) => Shutdown::Write,
        Some(3) => Shutdown::Both,
        _ => return errno::INVAL,
    };
    match stream.shutdown(how) {
        Ok(()) => errno::SUCCESS,
        Err(e) => errno_of(&e),
    }
}

/// `fd_fdstat_get` on a socket: a stream socket, no flags, every right.
fn fdstat(spec: &'static calls::CallSpec, args: &[i64], mem: &mut [u8]) -> i32 {
    const SOCKET_STREAM: u8 = 6;
    let mut stat = [0u8; 24];
    stat[0] = SOCKET_STREAM;
    stat[8..16].copy_from_slice(&u64::MAX.to_le_bytes());
    stat[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    written(calls::apply_outputs(spec, args, mem, &[stat]))
}

/// The errno of a call whose outputs were written into guest memory, or fell outside it.
fn written(outputs: Result<(), calls::OutOfBounds>) -> i32 {
    match outputs {
        Ok(()) => errno::SUCCESS,
        Err(_) => errno::FAULT,
    }
}

/// The WASI errno of a socket error.
fn errno_of(e: &std::io::Error) -> i32 {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::WouldBlock => errno::AGAIN,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => errno::CONNRESET,
        ErrorKind::BrokenPipe => errno::PIPE,
        _ => errno::IO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_calls_on_a_socket_descriptor_are_taken() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut s = Sockets::new(Some((3, Arc::new(listener))), None);
        let mut mem = vec![0u8; 64];
        // A clock id, a pointer or an exit status that equals the listener's number is not it.
        assert_eq!(s.handle("clock_time_get", &[3, 0, 8], &mut mem), None);
        assert_eq!(s.handle("random_get", &[3, 4], &mut mem), None);
        assert_eq!(s.handle("proc_exit", &[3], &mut mem), None);
        // Another descriptor is the WASI table's.
        assert_eq!(s.handle("fd_close", &[4], &mut mem), None);
        // The listener ends the scan of preopens, and refuses what it cannot do.
        assert_eq!(
            s.handle("fd_prestat_get", &[3, 0], &mut mem),
            Some(errno::BADF)
        );
        assert_eq!(
            s.handle("sock_recv", &[3, 0, 0, 0, 8, 12], &mut mem),
            Some(errno::INVAL)
        );
        assert_eq!(
            s.handle("fd_fdstat_get", &[3, 16], &mut mem),
            Some(errno::SUCCESS)
        );
        assert_eq!(mem[16], 6, "a stream socket");
        assert_eq!(s.handle("fd_close", &[3], &mut mem), Some(errno::SUCCESS));
        assert_eq!(
            s.handle("fd_prestat_get", &[3, 0], &mut mem),
            None,
            "closed"
        );
    }

    /// Little-endian u32 at `at`.
    fn u32_at(mem: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(mem[at..at + 4].try_into().expect("4 bytes"))
    }

    #[test]
    fn an_accepted_connection_reads_and_writes_through_recv_send_read_and_write() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut s = Sockets::new(Some((3, Arc::new(listener))), None);
        let mut client = TcpStream::connect(addr).expect("connect");
        let mut mem = vec![0u8; 256];
        assert_eq!(s.handle("sock_accept", &[3, 0, 0], &mut mem), Some(0));
        let fd = u32_at(&mem, 0);
        assert_eq!(fd, FIRST_CONNECTION);
        // An iovec at 16 of 5 bytes at 64.
        mem[16..20].copy_from_slice(&64u32.to_le_bytes());
        mem[20..24].copy_from_slice(&5u32.to_le_bytes());
        mem[64..69].copy_from_slice(b"hello");
        let fd = i64::from(fd);
        assert_eq!(s.handle("fd_write", &[fd, 16, 1, 32], &mut mem), Some(0));
        assert_eq!(u32_at(&mem, 32), 5);
        assert_eq!(
            s.handle("sock_send", &[fd, 16, 1, 0, 36], &mut mem),
            Some(0)
        );
        let mut got = [0u8; 10];
        client.read_exact(&mut got).expect("read");
        assert_eq!(&got, b"hellohello");
        client.write_all(b"abc").expect("write");
        assert_eq!(
            s.handle("sock_recv", &[fd, 16, 1, 0, 40, 44], &mut mem),
            Some(0)
        );
        assert_eq!((u32_at(&mem, 40), &mem[64..67]), (3, &b"abc"[..]));
        client.write_all(b"xy").expect("write");
        assert_eq!(s.handle("fd_read", &[fd, 16, 1, 48], &mut mem), Some(0));
        assert_eq!((u32_at(&mem, 48), &mem[64..66]), (2, &b"xy"[..]));
        assert_eq!(s.handle("sock_shutdown", &[fd, 2], &mut mem), Some(0));
        assert_eq!(client.read(&mut got).expect("end"), 0, "shut for writing");
        assert_eq!(s.handle("fd_close", &[fd], &mut mem), Some(0));
        assert_eq!(
            s.handle("fd_read", &[fd, 16, 1, 48], &mut mem),
            None,
            "closed"
        );
    }
}

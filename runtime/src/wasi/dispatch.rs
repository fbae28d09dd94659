//! The single dispatch point every WASI preview1 call passes through.
//!
//! Every `wasi_snapshot_preview1` import is defined here, and every one of them goes through
//! [`dispatch`], which sees the call's name and raw arguments before the real implementation
//! (wasmtime-wasi's p1 on cap-std) runs, and its result after. It traces calls at
//! `SPDLOG_LEVEL=trace`, keeps the descriptor mirror that checkpoints record
//! ([`super::mirror`]), and hands the call to the store's call monitor, if it has one
//! ([`super::monitor`]; multi-variant execution is one).

use super::monitor::{Before, CallMonitor, Halt, Halted};
use super::{WasiHost, WasiParts, MODULE};
use wasmtime::{AsContextMut, Caller, Extern, Linker};
use wasmtime_wasi::p1::wasi_snapshot_preview1::{self as raw, WasiSnapshotPreview1};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::runtime::in_tokio;
use wiggle::GuestMemory;

/// One WASI call as the dispatch point sees it.
#[derive(Debug, Clone, Copy)]
pub struct WasiCall<'a> {
    /// The function name, e.g. `fd_write`.
    pub name: &'static str,
    /// The raw arguments, widened to i64.
    pub args: &'a [i64],
}

/// What a WASI function returns to the guest.
trait WasiResult: Sized {
    /// The errno it carries (`None` for `proc_exit`, which returns nothing).
    fn errno(&self) -> Option<i32>;
    /// The result that carries `errno`, for a call a monitor answered.
    fn answered(errno: i32) -> Option<Self>;
}

impl WasiResult for i32 {
    fn errno(&self) -> Option<i32> {
        Some(*self)
    }
    fn answered(errno: i32) -> Option<i32> {
        Some(errno)
    }
}

impl WasiResult for () {
    fn errno(&self) -> Option<i32> {
        None
    }
    fn answered(_: i32) -> Option<()> {
        None
    }
}

/// The dispatch point: every WASI call passes through here. A call monitor, if the store has
/// one, sees the call first and may answer it or halt the variant ([`super::monitor`]). After a
/// call that succeeded, the descriptor mirror ([`DescriptorMirror`](super::DescriptorMirror))
/// records its effect and a monotonic clock reading is shifted by the restore offset; then the
/// monitor sees the result, as the guest will.
fn dispatch<T: WasiHost, R: std::fmt::Debug + WasiResult>(
    caller: &mut Caller<'_, T>,
    call: WasiCall<'_>,
    real: impl FnOnce(&mut WasiP1Ctx, &mut GuestMemory<'_>) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    spdlog::trace!("wasi {}{:?}", call.name, call.args);
    let fuel = caller.as_context_mut().hostcall_fuel();
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        wasmtime::bail!(
            "the module calls WASI function {} but exports no memory named \"memory\"",
            call.name
        );
    };
    let (data, host) = memory.data_and_store_mut(&mut *caller);
    let WasiParts {
        ctx,
        descriptors,
        monitor,
        sockets,
    } = host.wasi_parts();
    let result = match monitored(monitor, call, data, |data| {
        if let Some(errno) = sockets.handle(call.name, call.args, data) {
            if let Some(answer) = R::answered(errno) {
                return Ok(answer);
            }
        }
        ctx.set_hostcall_fuel(fuel);
        let result = real(ctx, &mut GuestMemory::Unshared(&mut *data));
        if result.as_ref().is_ok_and(|r| r.errno() == Some(0)) {
            descriptors.observe(call.name, call.args, data);
            descriptors.adjust_clock(call.name, call.args, data);
        }
        result
    }) {
        Ok(result) => result,
        Err(Halt) => {
            let stack = wasmtime::WasmBacktrace::capture(&*caller);
            if let Some(monitor) = caller.data_mut().wasi_parts().monitor {
                monitor.halted(&stack);
            }
            Err(Halted.into())
        }
    };
    spdlog::trace!(
        "wasi {} -> {:?}",
        call.name,
        result.as_ref().map_err(|e| e.to_string())
    );
    result
}

/// Runs `execute` for `call` as `monitor` (if any) decides, and shows the monitor its result.
fn monitored<R: WasiResult>(
    monitor: Option<&mut dyn CallMonitor>,
    call: WasiCall<'_>,
    data: &mut [u8],
    execute: impl FnOnce(&mut [u8]) -> wasmtime::Result<R>,
) -> Result<wasmtime::Result<R>, Halt> {
    let Some(monitor) = monitor else {
        return Ok(execute(data));
    };
    if let Before::Answered(errno) = monitor.before(call, data)? {
        if let Some(answer) = R::answered(errno) {
            return Ok(Ok(answer));
        }
    }
    let result = execute(data);
    if let Some(errno) = result.as_ref().ok().and_then(WasiResult::errno) {
        monitor.after(call, data, errno)?;
    }
    Ok(result)
}

macro_rules! wasi_functions {
    ($( $how:ident $name:ident ( $($arg:ident : $ty:ty),* ) -> $ret:ty ; )*) => {
        /// Every WASI preview1 function mvvm provides.
        pub const FUNCTIONS: &[&str] = &[$(stringify!($name)),*];

        /// The number of raw arguments of the function named `name`, if mvvm provides it.
        pub fn arity(name: &str) -> Option<usize> {
            match name {
                $( stringify!($name) => Some(<[&str]>::len(&[$(stringify!($arg)),*])), )*
                _ => None,
            }
        }

        /// Defines every WASI preview1 function in `linker`, each routed through the dispatch point.
        pub fn add_to_linker<T: WasiHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
            $(
                linker.func_wrap(
                    MODULE,
                    stringify!($name),
                    |mut caller: Caller<'_, T>, $($arg: $ty),*| -> wasmtime::Result<$ret> {
                        let args = [$(i64::from($arg)),*];
                        let call = WasiCall { name: stringify!($name), args: &args };
                        dispatch(&mut caller, call, |ctx, mem| {
                            wasi_functions!(@call $how $name ctx mem $($arg),*).map(<$ret>::from)
                        })
                    },
                )?;
            )*
            Ok(())
        }
    };
    (@call sync $name:ident $ctx:ident $mem:ident $($arg:ident),*) => {
        raw::$name($ctx, $mem $(, $arg)*)
    };
    (@call async $name:ident $ctx:ident $mem:ident $($arg:ident),*) => {
        in_tokio(raw::$name($ctx, $mem $(, $arg)*))
    };
}

wasi_functions! {
    sync args_get(a: i32, b: i32) -> i32;
    sync args_sizes_get(a: i32, b: i32) -> i32;
    sync environ_get(a: i32, b: i32) -> i32;
    sync environ_sizes_get(a: i32, b: i32) -> i32;
    sync clock_res_get(a: i32, b: i32) -> i32;
    sync clock_time_get(a: i32, b: i64, c: i32) -> i32;
    async fd_advise(a: i32, b: i64, c: i64, d: i32) -> i32;
    sync fd_allocate(a: i32, b: i64, c: i64) -> i32;
    async fd_close(a: i32) -> i32;
    async fd_datasync(a: i32) -> i32;
    async fd_fdstat_get(a: i32, b: i32) -> i32;
    sync fd_fdstat_set_flags(a: i32, b: i32) -> i32;
    sync fd_fdstat_set_rights(a: i32, b: i64, c: i64) -> i32;
    async fd_filestat_get(a: i32, b: i32) -> i32;
    async fd_filestat_set_size(a: i32, b: i64) -> i32;
    async fd_filestat_set_times(a: i32, b: i64, c: i64, d: i32) -> i32;
    async fd_pread(a: i32, b: i32, c: i32, d: i64, e: i32) -> i32;
    sync fd_prestat_get(a: i32, b: i32) -> i32;
    sync fd_prestat_dir_name(a: i32, b: i32, c: i32) -> i32;
    async fd_pwrite(a: i32, b: i32, c: i32, d: i64, e: i32) -> i32;
    async fd_read(a: i32, b: i32, c: i32, d: i32) -> i32;
    async fd_readdir(a: i32, b: i32, c: i32, d: i64, e: i32) -> i32;
    async fd_renumber(a: i32, b: i32) -> i32;
    async fd_seek(a: i32, b: i64, c: i32, d: i32) -> i32;
    async fd_sync(a: i32) -> i32;
    sync fd_tell(a: i32, b: i32) -> i32;
    async fd_write(a: i32, b: i32, c: i32, d: i32) -> i32;
    async path_create_directory(a: i32, b: i32, c: i32) -> i32;
    async path_filestat_get(a: i32, b: i32, c: i32, d: i32, e: i32) -> i32;
    async path_filestat_set_times(a: i32, b: i32, c: i32, d: i32, e: i64, f: i64, g: i32) -> i32;
    async path_link(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32, g: i32) -> i32;
    async path_open(a: i32, b: i32, c: i32, d: i32, e: i32, f: i64, g: i64, h: i32, i: i32) -> i32;
    async path_readlink(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32) -> i32;
    async path_remove_directory(a: i32, b: i32, c: i32) -> i32;
    async path_rename(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32) -> i32;
    async path_symlink(a: i32, b: i32, c: i32, d: i32, e: i32) -> i32;
    async path_unlink_file(a: i32, b: i32, c: i32) -> i32;
    async poll_oneoff(a: i32, b: i32, c: i32, d: i32) -> i32;
    sync proc_exit(a: i32) -> ();
    sync proc_raise(a: i32) -> i32;
    sync sched_yield() -> i32;
    sync random_get(a: i32, b: i32) -> i32;
    sync sock_accept(a: i32, b: i32, c: i32) -> i32;
    sync sock_recv(a: i32, b: i32, c: i32, d: i32, e: i32, f: i32) -> i32;
    sync sock_send(a: i32, b: i32, c: i32, d: i32, e: i32) -> i32;
    sync sock_shutdown(a: i32, b: i32) -> i32;
}

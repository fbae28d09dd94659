//! The contract between instrumented modules and the mvvm runtime.
//!
//! The transform ([`crate::transform`]) adds imports from the module [`IMPORT_MODULE`] and exports
//! under the reserved prefix [`RESERVED_PREFIX`]; the runtime provides those imports and reads those
//! exports. Everything both sides must agree on lives here, so that neither side spells a name twice.
//! The protocol itself is described in `aot/FORMAT.md` ("Runtime ABI").

/// Module name of every import the transform adds.
pub const IMPORT_MODULE: &str = "mvvm";

/// Prefix of every export the transform adds. Modules that already export such names are refused.
pub const RESERVED_PREFIX: &str = "mvvm:";

/// Export name of the i32 global holding the [`State`].
pub const EXPORT_STATE: &str = "mvvm:state";
/// Export name of the i32 countdown global: sites poll the host when it is `<= 0`.
pub const EXPORT_COUNTDOWN: &str = "mvvm:countdown";
/// Export name of the module's start function, which the transform removes from the start section so
/// that a restore never runs it twice.
pub const EXPORT_START: &str = "mvvm:start";

/// Export name of mutable global `index` (index in the original module's global index space).
pub fn export_global(index: u32) -> String {
    format!("mvvm:global:{index}")
}
/// Export name of memory `index`.
pub fn export_memory(index: u32) -> String {
    format!("mvvm:memory:{index}")
}
/// Export name of table `index`.
pub fn export_table(index: u32) -> String {
    format!("mvvm:table:{index}")
}
/// Export name of address-taken function `index` (original function index space), used to map
/// `funcref` values to indices and back.
pub fn export_func(index: u32) -> String {
    format!("mvvm:func:{index}")
}

/// The unwind/rewind state machine, held in the guest's `mvvm:state` global.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum State {
    /// Running normally.
    Normal = 0,
    /// Every instrumented frame saves itself and returns, innermost first.
    Unwinding = 1,
    /// Every instrumented frame reloads itself and jumps to its saved site, outermost first.
    Rewinding = 2,
}

impl State {
    /// Decodes the raw global value.
    pub fn from_i32(v: i32) -> Option<State> {
        match v {
            0 => Some(State::Normal),
            1 => Some(State::Unwinding),
            2 => Some(State::Rewinding),
            _ => None,
        }
    }
}

/// The value types a frame slot can hold, as the host sees them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SlotType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`, carried as its bit pattern so NaN payloads survive.
    F32,
    /// `f64`, carried as its bit pattern.
    F64,
    /// `v128`
    V128,
    /// `funcref` (nullable)
    FuncRef,
    /// `externref` (nullable)
    ExternRef,
}

/// The host functions an instrumented module imports, in import order.
///
/// The transform appends them after the module's own function imports, so the index of
/// `HostFunc::X` is `original_imported_funcs + X as u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum HostFunc {
    /// `poll(site: i32)`: a site found the countdown expired.
    Poll = 0,
    /// `save_frame(func: i32, site_plus_one: i32)`: begins a frame during unwinding.
    SaveFrame,
    /// `save_i32(i32)`
    SaveI32,
    /// `save_i64(i64)`
    SaveI64,
    /// `save_f32(bits: i32)`
    SaveF32,
    /// `save_f64(bits: i64)`
    SaveF64,
    /// `save_v128(v128)`
    SaveV128,
    /// `save_funcref(funcref)`
    SaveFuncRef,
    /// `save_externref(externref)`
    SaveExternRef,
    /// `restore_frame(func: i32) -> i32`: begins reloading the outermost remaining frame. Returns 0
    /// when that frame is `func`'s own; otherwise `func`'s frame was replaced by a tail call, and the
    /// result is `site + 1` of the tail-call site `func` must re-issue to reach the frame.
    RestoreFrame,
    /// `restore_i32() -> i32`
    RestoreI32,
    /// `restore_i64() -> i64`
    RestoreI64,
    /// `restore_f32() -> i32` (bits)
    RestoreF32,
    /// `restore_f64() -> i64` (bits)
    RestoreF64,
    /// `restore_v128() -> v128`
    RestoreV128,
    /// `restore_funcref() -> funcref`
    RestoreFuncRef,
    /// `restore_externref() -> externref`
    RestoreExternRef,
    /// `rewind_index(site: i32, saved: i32) -> i32`: while rewinding through an indirect call site
    /// (`saved` is the index the call used, or -1 for a tail call, whose frame was not saved), the
    /// table index that leads to the frame being restored. The table may have changed since the
    /// call; the host may patch a slot for the duration of the rewind.
    RewindIndex,
}

impl HostFunc {
    /// Every host function, in import order.
    pub const ALL: [HostFunc; 18] = [
        HostFunc::Poll,
        HostFunc::SaveFrame,
        HostFunc::SaveI32,
        HostFunc::SaveI64,
        HostFunc::SaveF32,
        HostFunc::SaveF64,
        HostFunc::SaveV128,
        HostFunc::SaveFuncRef,
        HostFunc::SaveExternRef,
        HostFunc::RestoreFrame,
        HostFunc::RestoreI32,
        HostFunc::RestoreI64,
        HostFunc::RestoreF32,
        HostFunc::RestoreF64,
        HostFunc::RestoreV128,
        HostFunc::RestoreFuncRef,
        HostFunc::RestoreExternRef,
        HostFunc::RewindIndex,
    ];

    /// The import field name.
    pub fn name(self) -> &'static str {
        match self {
            HostFunc::Poll => "poll",
            HostFunc::SaveFrame => "save_frame",
            HostFunc::SaveI32 => "save_i32",
            HostFunc::SaveI64 => "save_i64",
            HostFunc::SaveF32 => "save_f32",
            HostFunc::SaveF64 => "save_f64",
            HostFunc::SaveV128 => "save_v128",
            HostFunc::SaveFuncRef => "save_funcref",
            HostFunc::SaveExternRef => "save_externref",
            HostFunc::RestoreFrame => "restore_frame",
            HostFunc::RestoreI32 => "restore_i32",
            HostFunc::RestoreI64 => "restore_i64",
            HostFunc::RestoreF32 => "restore_f32",
            HostFunc::RestoreF64 => "restore_f64",
            HostFunc::RestoreV128 => "restore_v128",
            HostFunc::RestoreFuncRef => "restore_funcref",
            HostFunc::RestoreExternRef => "restore_externref",
            HostFunc::RewindIndex => "rewind_index",
        }
    }

    /// The save function for a slot type.
    pub fn save(ty: SlotType) -> HostFunc {
        match ty {
            SlotType::I32 => HostFunc::SaveI32,
            SlotType::I64 => HostFunc::SaveI64,
            SlotType::F32 => HostFunc::SaveF32,
            SlotType::F64 => HostFunc::SaveF64,
            SlotType::V128 => HostFunc::SaveV128,
            SlotType::FuncRef => HostFunc::SaveFuncRef,
            SlotType::ExternRef => HostFunc::SaveExternRef,
        }
    }

    /// The restore function for a slot type.
    pub fn restore(ty: SlotType) -> HostFunc {
        match ty {
            SlotType::I32 => HostFunc::RestoreI32,
            SlotType::I64 => HostFunc::RestoreI64,
            SlotType::F32 => HostFunc::RestoreF32,
            SlotType::F64 => HostFunc::RestoreF64,
            SlotType::V128 => HostFunc::RestoreV128,
            SlotType::FuncRef => HostFunc::RestoreFuncRef,
            SlotType::ExternRef => HostFunc::RestoreExternRef,
        }
    }
}

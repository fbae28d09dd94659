//! The contract between instrumented modules and the mvvm runtime.
//!
//! The transform (`mvvm_aot::transform`) adds imports from the module [`IMPORT_MODULE`] and exports
//! under the reserved prefix [`RESERVED_PREFIX`]; the runtime provides those imports and reads those
//! exports. Everything both sides must agree on lives here, so that neither side spells a name twice.
//! The protocol itself is described in `contract/FORMAT.md` ("Runtime ABI").

/// Module name of every import the transform adds.
pub const IMPORT_MODULE: &str = "mvvm";

/// Prefix of every export the transform adds. Modules that already export such names are refused.
pub const RESERVED_PREFIX: &str = "mvvm:";

/// Export name of the i32 global holding the [`State`].
pub const EXPORT_STATE: &str = "mvvm:state";
/// Export name of the countdown: sites poll the host when it is `<= 0`.
///
/// In a checkpointable module (`Mode::Checkpoint` of `mvvm_aot::transform`) it is a
/// memory of exactly one page, holding the countdown as a little-endian `i32` at
/// [`COUNTDOWN_OFFSET`]. The guest only loads it; the host stores it, from any thread: a doorbell
/// rung while the guest runs zeroes it there, and the next site polls. (A global cannot be written
/// from outside the thread running the guest.) In a `Mode::PollsOnly`
/// module, which is only ever benchmarked, it is a mutable `i32` global, which Binaryen 108's
/// Asyncify can read (it knows a single memory).
pub const EXPORT_COUNTDOWN: &str = "mvvm:countdown";
/// Byte offset of the countdown in the `mvvm:countdown` memory.
pub const COUNTDOWN_OFFSET: u64 = 0;
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

/// Export name of the i32 global that names the site a frame is rewinding to (`site + 1`, or 0).
pub const EXPORT_RSITE: &str = "mvvm:rsite";

/// Export name of frame slot global `n`: frames travel between the guest and the host through
/// these globals ([`HostFunc::SaveFrame`], [`HostFunc::RestoreFrame`]).
pub fn export_slot(n: u32) -> String {
    format!("mvvm:slot:{n}")
}

/// The host functions an instrumented module imports, in import order.
///
/// The transform appends them after the module's own function imports, so the index of
/// `HostFunc::X` is `original_imported_funcs + X as u32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum HostFunc {
    /// `poll(site_plus_countdown: i32)`: a site found the countdown expired. The argument is the
    /// site's id plus the value of [`EXPORT_COUNTDOWN`] at the call (zero whenever a site polls);
    /// the host subtracts the countdown's value. The addition keeps Cranelift from hoisting the site id,
    /// a constant, out of the loops around the site.
    Poll = 0,
    /// `save_frame(func: i32, site_plus_one: i32)`: while unwinding, records a frame of `func`
    /// stopped at the site, whose slots the guest has just written into the slot globals.
    SaveFrame,
    /// `restore_frame(func: i32) -> i32`: while rewinding, `site + 1` of the site `func` must go
    /// to. Either the outermost remaining frame is `func`'s own (its slots are now in the slot
    /// globals, for the site's landing to read), or `func` must re-issue a tail call to reach it.
    RestoreFrame,
    /// `rewind_index(site: i32, saved: i32) -> i32`: while rewinding through an indirect call site
    /// (`saved` is the index the call used, or -1 for a tail call, whose frame was not saved), the
    /// table index that leads to the frame being restored. The table may have changed since the
    /// call; the host may patch a slot for the duration of the rewind.
    RewindIndex,
}

impl HostFunc {
    /// Every host function, in import order.
    pub const ALL: [HostFunc; 4] = [
        HostFunc::Poll,
        HostFunc::SaveFrame,
        HostFunc::RestoreFrame,
        HostFunc::RewindIndex,
    ];

    /// The import field name.
    pub fn name(self) -> &'static str {
        match self {
            HostFunc::Poll => "poll",
            HostFunc::SaveFrame => "save_frame",
            HostFunc::RestoreFrame => "restore_frame",
            HostFunc::RewindIndex => "rewind_index",
        }
    }
}

//! What an instrumented module tells the runtime: the policy it was built with, its functions and
//! its checkpoint sites. The transform writes a [`ModuleInfo`] into every `.aot` file; the runtime
//! reads it to find sites, decode frames and name functions.

use crate::abi::SlotType;
use serde::{Deserialize, Serialize};

/// Where checkpoint sites go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// A site at every function entry (`--enable-checkpoint`): serves `-f FUNC -x N`.
    pub function_entry: bool,
    /// A site at every loop header, checked on every iteration (`--enable-loop-checkpoint`).
    pub loop_header: bool,
    /// Loop headers decrement a countdown and poll the host when it runs out
    /// (`--enable-counter-loop-checkpoint`).
    pub counter_loop: bool,
    /// The countdown restarts at `2^threshold_bits` (`--threshold-bits K`).
    pub threshold_bits: u8,
    /// Whether anything is instrumented at all; `false` only for [`Policy::plain`].
    pub instrument: bool,
}

impl Policy {
    /// The default policy: counter-loop sites with K = 16 (plus import-call sites, always present).
    pub fn default_counter() -> Policy {
        Policy {
            function_entry: false,
            loop_header: false,
            counter_loop: true,
            threshold_bits: 16,
            instrument: true,
        }
    }

    /// No instrumentation: the uninstrumented baseline with the same exports.
    pub fn plain() -> Policy {
        Policy {
            function_entry: false,
            loop_header: false,
            counter_loop: false,
            threshold_bits: 0,
            instrument: false,
        }
    }

    /// The countdown's restart value, `2^K`.
    pub fn countdown_reset(&self) -> i32 {
        1i32.checked_shl(u32::from(self.threshold_bits))
            .filter(|v| *v > 0)
            .unwrap_or(i32::MAX)
    }

    /// A short human-readable description, e.g. `entry+counter-loop(K=16)+imports`.
    pub fn describe(&self) -> String {
        if !self.instrument {
            return "none (plain)".into();
        }
        let mut parts = Vec::new();
        if self.function_entry {
            parts.push("entry".to_string());
        }
        if self.counter_loop {
            parts.push(format!("counter-loop(K={})", self.threshold_bits));
        } else if self.loop_header {
            parts.push("loop".to_string());
        }
        parts.push("imports".to_string());
        parts.join("+")
    }
}

/// What a checkpoint site is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SiteKind {
    /// The entry of its function.
    Entry,
    /// A loop header; `counted` loops decrement the countdown.
    LoopHeader {
        /// Whether the site decrements the countdown.
        counted: bool,
    },
    /// Right before a call to imported function `func`.
    Import {
        /// The imported function's index.
        func: u32,
    },
    /// A call to a function that may unwind.
    Call {
        /// The callee's index (original function index space).
        callee: u32,
    },
    /// An indirect call whose callee may unwind.
    CallIndirect {
        /// Canonical type id of the call's type (see [`FunctionInfo::type_id`]).
        type_id: u32,
        /// The table called through.
        table: u32,
    },
    /// A `return_call` whose callee may unwind.
    TailCall {
        /// The callee.
        callee: u32,
    },
    /// A `return_call_indirect` whose callee may unwind.
    TailCallIndirect {
        /// Canonical type id of the call's type (see [`FunctionInfo::type_id`]).
        type_id: u32,
        /// The table called through.
        table: u32,
    },
}

/// One checkpoint site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteInfo {
    /// The function containing the site (original function index space, imports first).
    pub func: u32,
    /// What the site is.
    pub kind: SiteKind,
    /// The slot globals (N of `mvvm:slot:N`) of the slots a frame stopped at this site holds, in
    /// order (the live locals, by ascending index); empty for tail-call sites, where no frame stops.
    pub frame: Vec<u32>,
}

/// One function of the original module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionInfo {
    /// Its name from the name section, or `module.field` for an import.
    pub name: Option<String>,
    /// Whether it is imported.
    pub imported: bool,
    /// Whether the transform instrumented it.
    pub instrumented: bool,
    /// Canonical type id: the first type index with a structurally equal function type.
    pub type_id: u32,
}

/// Everything the runtime needs to know about an instrumented module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModuleInfo {
    /// The policy the module was built with.
    pub policy: Policy,
    /// Number of imported functions in the original module.
    pub imported_funcs: u32,
    /// Every function, in the original function index space.
    pub functions: Vec<FunctionInfo>,
    /// Every site; a site's id is its index here.
    pub sites: Vec<SiteInfo>,
    /// Whether the original module had a start function (now exported as `mvvm:start`).
    pub has_start: bool,
    /// The type of each frame slot global `mvvm:slot:N`, by N. A frame's k-th slot of type T
    /// travels in the k-th global of type T.
    pub slots: Vec<SlotType>,
}

/// What a function of the instrumented module is, in the original module's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FunctionOrigin {
    /// Function `n` of the original module (imports first).
    Original(u32),
    /// The rewind clone of original function `n`: the copy a resumed frame runs in.
    RewindClone(u32),
    /// One of the host functions the transform imports, or its poll stub.
    Runtime,
}

impl ModuleInfo {
    /// Maps a function index of the instrumented module back to the original module. The
    /// transform inserts its host imports after the original imports and appends one rewind
    /// clone per instrumented function (in index order), then the poll stub (contract/FORMAT.md).
    pub fn function_origin(&self, instrumented: u32) -> FunctionOrigin {
        let imports = self.imported_funcs;
        let added = if self.policy.instrument {
            crate::abi::HostFunc::ALL.len() as u32
        } else {
            0
        };
        let total = self.functions.len() as u32;
        if instrumented < imports {
            return FunctionOrigin::Original(instrumented);
        }
        let Some(past_host) = instrumented.checked_sub(imports + added) else {
            return FunctionOrigin::Runtime;
        };
        let original = imports + past_host;
        if original < total {
            return FunctionOrigin::Original(original);
        }
        let clone = (original - total) as usize;
        self.functions
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.imported && f.instrumented)
            .nth(clone)
            .map_or(FunctionOrigin::Runtime, |(i, _)| {
                FunctionOrigin::RewindClone(i as u32)
            })
    }

    /// Finds a function by index (`"193"`) or by name.
    pub fn resolve_function(&self, spec: &str) -> Option<u32> {
        if let Ok(i) = spec.parse::<u32>() {
            return ((i as usize) < self.functions.len()).then_some(i);
        }
        self.functions
            .iter()
            .position(|f| f.name.as_deref() == Some(spec))
            .map(|i| i as u32)
    }
}

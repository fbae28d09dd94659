//! Phase 3 of the transform: where everything the transform adds goes in the module's index
//! spaces (host imports, rewind clones, the poll stub, the countdown, the synthetic globals and
//! the types), and the module-level facts every body rewrite reads.

use super::analyze::Facts;
use super::reach::Reach;
use super::Mode;
use mvvm_contract::abi::{self, HostFunc, SlotType};
use mvvm_contract::Policy;
use std::collections::HashMap;
use wasm_encoder::reencode::Reencode;
use wasmparser::FuncType;

/// Re-encodes with the function index space shifted by the host imports.
#[derive(Clone, Copy)]
pub(crate) struct Shift {
    imported_funcs: u32,
    added: u32,
}

impl Reencode for Shift {
    type Error = std::convert::Infallible;
    fn function_index(&mut self, func: u32) -> Result<u32, wasm_encoder::reencode::Error> {
        Ok(if func < self.imported_funcs {
            func
        } else {
            func + self.added
        })
    }
}

/// Module-level facts the body rewriter needs.
pub(crate) struct ModuleContext {
    /// The function a poll site calls: the module's poll stub, or the `poll` import.
    pub(super) poll_target: u32,
    pub(super) policy: Policy,
    pub(super) imported_funcs: u32,
    pub(super) types: Vec<Option<FuncType>>,
    pub(super) func_types: Vec<u32>,
    pub(super) may_unwind: Vec<bool>,
    pub(super) type_unwind: Vec<bool>,
    pub(super) canonical: Vec<u32>,
    pub(super) state_global: u32,
    pub(super) countdown: Countdown,
    pub(super) rsite_global: u32,
    shift: Shift,
}

/// Where an instrumented module keeps its countdown (see [`abi::EXPORT_COUNTDOWN`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Countdown {
    /// A one-page memory of that index, which the host may write from any thread.
    Memory(u32),
    /// A mutable global of that index ([`Mode::PollsOnly`]).
    Global(u32),
}

impl Countdown {
    /// The instructions that push the countdown's current value.
    fn get(self) -> Vec<wasm_encoder::Instruction<'static>> {
        use wasm_encoder::Instruction as I;
        match self {
            Countdown::Memory(m) => vec![
                I::I32Const(0),
                I::I32Load(wasm_encoder::MemArg {
                    offset: abi::COUNTDOWN_OFFSET,
                    align: 2,
                    memory_index: m,
                }),
            ],
            Countdown::Global(g) => vec![I::GlobalGet(g)],
        }
    }

    /// Whether `ins` is the last instruction of [`Countdown::get`] (the original code cannot
    /// name the countdown, so this recognises the transform's own reads).
    pub(super) fn read_by(self, ins: &wasm_encoder::Instruction<'_>) -> bool {
        use wasm_encoder::Instruction as I;
        match (self, ins) {
            (Countdown::Memory(m), I::I32Load(a)) => a.memory_index == m,
            (Countdown::Global(g), I::GlobalGet(h)) => *h == g,
            _ => false,
        }
    }
}

impl ModuleContext {
    /// The index of a host import.
    pub(super) fn host(&self, f: HostFunc) -> u32 {
        self.imported_funcs + f as u32
    }
    /// Index of frame slot global 0 (`mvvm:slot:0`).
    pub(super) fn slot_base(&self) -> u32 {
        self.rsite_global + 1
    }
    /// The instructions that push the countdown's current value.
    pub(super) fn countdown_get(&self) -> Vec<wasm_encoder::Instruction<'static>> {
        self.countdown.get()
    }
    /// A re-encoder that maps the input's function indices to the output's.
    pub(super) fn reencoder(&self) -> Shift {
        self.shift
    }
    /// The function type at type index `idx`.
    pub(super) fn type_at(&self, idx: u32) -> &FuncType {
        self.types[idx as usize]
            .as_ref()
            .expect("validated: call types are function types")
    }
    /// The type of function `f` (input index space).
    pub(super) fn func_type(&self, f: u32) -> &FuncType {
        self.type_at(self.func_types[f as usize])
    }
    /// Whether an indirect call through type index `idx` may enter a function that unwinds.
    pub(super) fn type_may_unwind(&self, idx: u32) -> bool {
        self.type_unwind.get(idx as usize).copied().unwrap_or(false)
    }
}

/// The frame slot globals, appended after `mvvm:rsite` as the bodies ask for them.
pub(crate) struct SlotPool {
    pub(super) base: u32,
    pub(super) types: Vec<SlotType>,
    by_type: HashMap<SlotType, Vec<u32>>,
}

impl SlotPool {
    /// The global index of the `k`-th slot global of type `t`.
    pub(super) fn global(&mut self, t: SlotType, k: usize) -> u32 {
        let list = self.by_type.entry(t).or_default();
        while list.len() <= k {
            list.push(self.types.len() as u32);
            self.types.push(t);
        }
        self.base + list[k]
    }
}

/// Function types appended to the type section (block types and host imports), deduplicated.
pub(crate) struct BlockTypes {
    base: u32,
    pub(super) list: Vec<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>)>,
    index: HashMap<(Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>), u32>,
}

impl BlockTypes {
    /// The type index of the function type `params -> results`, appended if it is new.
    pub(super) fn intern(
        &mut self,
        params: Vec<wasm_encoder::ValType>,
        results: Vec<wasm_encoder::ValType>,
    ) -> u32 {
        let key = (params, results);
        if let Some(i) = self.index.get(&key) {
            return *i;
        }
        let i = self.base + self.list.len() as u32;
        self.list.push(key.clone());
        self.index.insert(key, i);
        i
    }
}

fn host_signature(f: HostFunc) -> (Vec<wasm_encoder::ValType>, Vec<wasm_encoder::ValType>) {
    use wasm_encoder::ValType as V;
    match f {
        HostFunc::Poll => (vec![V::I32], vec![]),
        HostFunc::SaveFrame => (vec![V::I32, V::I32], vec![]),
        HostFunc::RestoreFrame => (vec![V::I32], vec![V::I32]),
        HostFunc::RewindIndex => (vec![V::I32, V::I32], vec![V::I32]),
    }
}

/// Where the transform's additions go, and what the bodies add to them while they are rewritten.
pub(super) struct Plan {
    /// What every body rewrite reads.
    pub(super) context: ModuleContext,
    /// Types appended to the type section.
    pub(super) block_types: BlockTypes,
    /// The type index of each host import, in [`HostFunc::ALL`] order.
    pub(super) host_types: Vec<u32>,
    /// The frame slot globals.
    pub(super) slots: SlotPool,
    /// Number of host imports added (zero under the plain policy).
    pub(super) added_imports: u32,
    /// Number of rewind clones, appended after the defined functions.
    pub(super) n_clones: u32,
}

impl Plan {
    /// The final index of the `k`-th rewind clone.
    pub(super) fn clone_index(&self, k: u32, n_defined: u32) -> u32 {
        self.context.imported_funcs + self.added_imports + n_defined + k
    }
}

/// Plans the additions for a module read into `facts`, whose reachable functions are `reach`.
pub(super) fn plan(policy: &Policy, mode: Mode, facts: &Facts<'_>, reach: Reach) -> Plan {
    let Reach {
        may_unwind,
        type_unwind,
    } = reach;
    let imported_funcs = facts.imported_funcs;
    let (n_globals, n_memories) = (facts.n_globals, facts.n_memories);
    let added = if policy.instrument {
        HostFunc::ALL.len() as u32
    } else {
        0
    };
    // Poll sites call a stub defined after the clones rather than the import (contract/FORMAT.md §3,
    // "Poll stub"): Cranelift hoists an import's code pointer and context out of the loops around
    // the call; a call to a function of the same module needs neither.
    let n_defined_funcs = (facts.func_types.len() as u32).saturating_sub(imported_funcs);
    let n_clones = match mode {
        Mode::Checkpoint => may_unwind[imported_funcs as usize..]
            .iter()
            .filter(|m| **m)
            .count() as u32,
        Mode::PollsOnly => 0,
    };
    let context = ModuleContext {
        poll_target: if n_clones > 0 {
            imported_funcs + added + n_defined_funcs + n_clones
        } else {
            imported_funcs + HostFunc::Poll as u32
        },
        policy: policy.clone(),
        imported_funcs,
        types: facts.types.clone(),
        func_types: facts.func_types.clone(),
        may_unwind,
        type_unwind,
        canonical: facts.canonical.clone(),
        state_global: n_globals,
        // Checkpointable modules keep the countdown in a memory of their own, appended after
        // the module's memories, so that a doorbell can zero it from another thread.
        countdown: match mode {
            Mode::Checkpoint => Countdown::Memory(n_memories),
            Mode::PollsOnly => Countdown::Global(n_globals + 1),
        },
        rsite_global: n_globals + 1 + u32::from(mode == Mode::PollsOnly),
        shift: Shift {
            imported_funcs,
            added,
        },
    };
    let mut block_types = BlockTypes {
        base: facts.types.len() as u32,
        list: Vec::new(),
        index: HashMap::new(),
    };
    let host_types = HostFunc::ALL
        .iter()
        .map(|h| {
            let (p, r) = host_signature(*h);
            block_types.intern(p, r)
        })
        .collect();
    let slots = SlotPool {
        base: context.slot_base(),
        types: Vec::new(),
        by_type: HashMap::new(),
    };
    Plan {
        context,
        block_types,
        host_types,
        slots,
        added_imports: added,
        n_clones,
    }
}

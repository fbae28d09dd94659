//! Phase 2 of the transform: which functions can reach a site, and so must be able to unwind.
//!
//! A function with a site of its own can unwind (function entry, a polled loop, an import call).
//! So can one that calls such a function, directly or through a table whose type some
//! address-taken function that can unwind has. Iterated to a fixpoint.

use super::analyze::{Facts, Scan};
use mvvm_contract::Policy;

/// Which functions and which call types can unwind.
pub(super) struct Reach {
    /// By function index, imports first (imports never unwind).
    pub(super) may_unwind: Vec<bool>,
    /// By type index: an indirect call of this type may enter a function that unwinds.
    pub(super) type_unwind: Vec<bool>,
}

/// Computes [`Reach`] for a module and its scanned bodies.
pub(super) fn reach(policy: &Policy, facts: &Facts<'_>, scans: &[Scan]) -> Reach {
    let imported = facts.imported_funcs as usize;
    let mut may_unwind = vec![false; facts.func_types.len()];
    if policy.instrument {
        for (i, s) in scans.iter().enumerate() {
            may_unwind[imported + i] =
                policy.function_entry || s.calls_import || s.loops.iter().any(|l| l.is_site());
        }
    }
    let types = &facts.types;
    let same_type = |a: u32, b: u32| {
        a == b || (types[a as usize].is_some() && types[a as usize] == types[b as usize])
    };
    let mut type_unwind = vec![false; types.len()];
    loop {
        let mut changed = false;
        for (t, tu) in type_unwind.iter_mut().enumerate() {
            let v = facts.address_taken.iter().any(|f| {
                may_unwind[*f as usize] && same_type(facts.func_types[*f as usize], t as u32)
            });
            if v && !*tu {
                *tu = true;
                changed = true;
            }
        }
        for (i, s) in scans.iter().enumerate() {
            let f = imported + i;
            if may_unwind[f] || !policy.instrument {
                continue;
            }
            if s.callees.iter().any(|c| may_unwind[*c as usize])
                || s.indirect_types.iter().any(|t| type_unwind[*t as usize])
            {
                may_unwind[f] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    Reach {
        may_unwind,
        type_unwind,
    }
}

//! The module's tail-call graph, built once per instance, which rewinding walks to find how a
//! function reaches a frame it does not own.
//!
//! A direct tail call leads to its callee. An indirect one may lead to any address-taken
//! function of its type: which one it took is not recorded (no frame stops at a tail call), and
//! any of them is a correct path for a rewind, because the functions on a tail-call path only
//! re-issue their tail call while rewinding. Both rewind queries ([`TailGraph::first_hop`],
//! [`TailGraph::reaching`]) follow the same edges.
//!
//! Built once because a rewind asks these questions for every table slot of every indirect
//! frame; walking the site table per question made large modules (SQLite, Lua) rewind for
//! minutes.

use mvvm_contract::{ModuleInfo, SiteKind};
use std::collections::{HashMap, VecDeque};

/// Tail-call edges of a module, forwards and backwards, indexed by function.
#[derive(Debug)]
pub struct TailGraph {
    /// `out[f]`: the (site, callee) pairs of `f`'s tail calls.
    out: Vec<Vec<(u32, u32)>>,
    /// `callers[g]`: the functions with a tail-call edge to `g`.
    callers: Vec<Vec<u32>>,
}

impl TailGraph {
    /// The graph of `info`'s tail calls; `address_taken(f)` says whether function `f` can be
    /// reached through a table.
    pub fn new(info: &ModuleInfo, address_taken: impl Fn(u32) -> bool) -> TailGraph {
        let count = info.functions.len();
        let mut by_type: HashMap<u32, Vec<u32>> = HashMap::new();
        for (g, f) in info.functions.iter().enumerate() {
            if !f.imported && address_taken(g as u32) {
                by_type.entry(f.type_id).or_default().push(g as u32);
            }
        }
        let mut out = vec![Vec::new(); count];
        let mut callers = vec![Vec::new(); count];
        for (site, s) in info.sites.iter().enumerate() {
            let callees: &[u32] = match &s.kind {
                SiteKind::TailCall { callee } => std::slice::from_ref(callee),
                SiteKind::TailCallIndirect { type_id, .. } => {
                    by_type.get(type_id).map_or(&[], Vec::as_slice)
                }
                _ => continue,
            };
            let from = s.func as usize;
            for &callee in callees {
                if from >= count || callee as usize >= count {
                    continue;
                }
                out[from].push((site as u32, callee));
                callers[callee as usize].push(s.func);
            }
        }
        TailGraph { out, callers }
    }

    /// The first hop (site, callee) of a shortest tail-call path from `from` to `to`.
    pub fn first_hop(&self, from: u32, to: u32) -> Option<(u32, u32)> {
        let mut first: HashMap<u32, (u32, u32)> = HashMap::new();
        let mut queue = VecDeque::new();
        for &(site, callee) in self.edges(from) {
            if callee == to {
                return Some((site, callee));
            }
            if first.insert(callee, (site, callee)).is_none() {
                queue.push_back(callee);
            }
        }
        while let Some(f) = queue.pop_front() {
            let hop = first[&f];
            for &(_, callee) in self.edges(f) {
                if callee == to {
                    return Some(hop);
                }
                first.entry(callee).or_insert_with(|| {
                    queue.push_back(callee);
                    hop
                });
            }
        }
        None
    }

    /// For every function, whether it is `goal` or tail-calls its way to `goal`.
    pub fn reaching(&self, goal: u32) -> Vec<bool> {
        let mut reaches = vec![false; self.callers.len()];
        let Some(seen) = reaches.get_mut(goal as usize) else {
            return reaches;
        };
        *seen = true;
        let mut queue = VecDeque::from([goal]);
        while let Some(g) = queue.pop_front() {
            for &f in &self.callers[g as usize] {
                if !reaches[f as usize] {
                    reaches[f as usize] = true;
                    queue.push_back(f);
                }
            }
        }
        reaches
    }

    fn edges(&self, func: u32) -> &[(u32, u32)] {
        self.out.get(func as usize).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mvvm_contract::{FunctionInfo, Policy, SiteInfo};

    fn function(type_id: u32) -> FunctionInfo {
        FunctionInfo {
            name: None,
            imported: false,
            instrumented: true,
            type_id,
        }
    }

    fn site(func: u32, kind: SiteKind) -> SiteInfo {
        SiteInfo {
            func,
            kind,
            frame: Vec::new(),
        }
    }

    /// 0 tail-calls 1 directly; 1 tail-calls through a table of type 7, which holds 2 and 3
    /// (4 has type 7 too but is not address-taken); 3 reaches nothing.
    fn graph() -> TailGraph {
        let info = ModuleInfo {
            policy: Policy::default_counter(),
            imported_funcs: 0,
            functions: vec![
                function(0),
                function(7),
                function(7),
                function(7),
                function(7),
            ],
            sites: vec![
                site(0, SiteKind::TailCall { callee: 1 }),
                site(
                    1,
                    SiteKind::TailCallIndirect {
                        type_id: 7,
                        table: 0,
                    },
                ),
                site(2, SiteKind::Entry),
            ],
            has_start: false,
            slots: Vec::new(),
        };
        TailGraph::new(&info, |f| f == 2 || f == 3)
    }

    #[test]
    fn first_hop_follows_direct_then_indirect_edges() {
        let g = graph();
        assert_eq!(g.first_hop(0, 1), Some((0, 1)));
        assert_eq!(g.first_hop(0, 3), Some((0, 1)));
        assert_eq!(g.first_hop(1, 2), Some((1, 2)));
        assert_eq!(g.first_hop(1, 4), None, "4 is not address-taken");
        assert_eq!(g.first_hop(3, 0), None);
        assert_eq!(g.first_hop(99, 0), None, "an unknown function has no edges");
    }

    #[test]
    fn reaching_walks_the_edges_backwards() {
        let g = graph();
        assert_eq!(g.reaching(3), vec![true, true, false, true, false]);
        assert_eq!(g.reaching(0), vec![true, false, false, false, false]);
        assert_eq!(g.reaching(99), vec![false; 5]);
    }
}

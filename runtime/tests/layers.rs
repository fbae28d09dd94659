//! The runtime's modules form layers: no module reaches, directly or through others, a module
//! that reaches it back. Read from the source, so that a `use crate::...` that closes a cycle
//! fails here, with the cycle named, before it becomes a tangle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level module a file of `src/` belongs to (`wasi/mirror.rs` -> `wasi`), or `None` for
/// `lib.rs` and the binary, which may use everything.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "bin" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Every top-level module named after `crate::` in `text`.
fn uses(text: &str) -> BTreeSet<String> {
    text.split("crate::")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module graph: module -> the other modules it uses.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let Some(module) = module_of(rel) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("read a source file");
        let used = graph.entry(module.clone()).or_default();
        used.extend(uses(&text).into_iter().filter(|m| *m != module));
    }
    graph
}

/// A cycle through `node`, if the depth-first search from it finds one.
fn find_cycle(
    graph: &BTreeMap<String, BTreeSet<String>>,
    node: &str,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|n| n == node) {
        let mut cycle = path[at..].to_vec();
        cycle.push(node.to_string());
        return Some(cycle);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in graph.get(node).into_iter().flatten() {
        if let Some(c) = find_cycle(graph, next, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn the_runtime_modules_have_no_cycle() {
    let graph = graph();
    for module in [
        "checkpoint",
        "config",
        "session",
        "program",
        "store",
        "wasi",
    ] {
        assert!(graph.contains_key(module), "no module {module}: {graph:?}");
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = find_cycle(&graph, node, &mut Vec::new(), &mut done) {
            panic!("the runtime's modules form a cycle: {}", cycle.join(" -> "));
        }
    }
    // The leaves stay leaves, and the WASI layer and the checkpoint imports never name the store.
    for leaf in ["error", "doorbell"] {
        assert_eq!(
            graph[leaf],
            BTreeSet::new(),
            "{leaf} uses {:?}",
            graph[leaf]
        );
    }
    for generic in ["checkpoint", "wasi"] {
        assert!(
            !graph[generic].contains("store"),
            "{generic} uses the store"
        );
    }
}

#[test]
fn the_cycle_finder_finds_a_cycle() {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), ["b".to_string()].into());
    graph.insert("b".into(), ["c".to_string()].into());
    graph.insert("c".into(), ["a".to_string()].into());
    let cycle = find_cycle(&graph, "a", &mut Vec::new(), &mut BTreeSet::new());
    assert_eq!(
        cycle,
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        uses("use crate::wasi::X; crate::config::RunConfig"),
        ["config".to_string(), "wasi".to_string()].into()
    );
}

//! Transform-level properties that do not need a runtime.

use mvvm_aot::container::{AotFile, ContainerError};
use mvvm_aot::transform::{instrument, Policy, SiteKind, TransformError};
use mvvm_aot::{EngineOptions, Target};

const MODULE: &str = r#"
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (global $g (mut i32) (i32.const 0))
  (func $leaf (param i32) (result i32) local.get 0 i32.const 1 i32.add)
  (func $looper (param i32) (result i32)
    (local i32)
    (loop $l
      local.get 1 call $leaf local.set 1
      local.get 1 local.get 0 i32.lt_s br_if $l)
    local.get 1)
  (func $main (export "_start") i32.const 10 call $looper global.set $g i32.const 0 call $exit)
  (start $leaf_start)
  (func $leaf_start))
"#;

fn wasm() -> Vec<u8> {
    wat::parse_str(MODULE).expect("wat")
}

#[test]
fn only_functions_that_reach_a_site_are_instrumented() {
    let out = instrument(&wasm(), &Policy::default_counter()).expect("instrument");
    let f = |name: &str| {
        out.info
            .functions
            .iter()
            .find(|f| f.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("{name}"))
    };
    assert!(
        !f("leaf").instrumented,
        "a leaf without loops or calls cannot reach a site"
    );
    assert!(!f("leaf_start").instrumented);
    assert!(
        f("looper").instrumented,
        "a loop is a site under the counter policy"
    );
    assert!(
        f("main").instrumented,
        "calls an import and a function that may unwind"
    );
    let kinds: Vec<&SiteKind> = out.info.sites.iter().map(|s| &s.kind).collect();
    assert!(kinds.contains(&&SiteKind::LoopHeader { counted: true }));
    assert!(kinds
        .iter()
        .any(|k| matches!(k, SiteKind::Import { func: 0 })));
    assert!(kinds.iter().any(|k| matches!(k, SiteKind::Call { .. })));
    assert!(
        !kinds.contains(&&SiteKind::Entry),
        "no entry sites without --enable-checkpoint"
    );
    wasmparser::Validator::new_with_features(mvvm_aot::transform::supported_features())
        .validate_all(&out.wasm)
        .expect("instrumented module validates");
}

#[test]
fn entry_policy_instruments_everything_and_exports_state() {
    let p = Policy {
        function_entry: true,
        ..Policy::default_counter()
    };
    let out = instrument(&wasm(), &p).expect("instrument");
    assert!(out
        .info
        .functions
        .iter()
        .filter(|f| !f.imported)
        .all(|f| f.instrumented));
    assert!(out.info.has_start);
    let mut exports = Vec::new();
    let mut start_section = false;
    for payload in wasmparser::Parser::new(0).parse_all(&out.wasm) {
        match payload.expect("parse") {
            wasmparser::Payload::ExportSection(r) => {
                exports.extend(r.into_iter().map(|e| e.expect("export").name.to_string()))
            }
            wasmparser::Payload::StartSection { .. } => start_section = true,
            _ => {}
        }
    }
    assert!(
        !start_section,
        "the start section is removed so a restore never runs it twice"
    );
    for name in [
        "mvvm:state",
        "mvvm:countdown",
        "mvvm:start",
        "mvvm:global:0",
        "mvvm:memory:0",
    ] {
        assert!(
            exports.iter().any(|e| e == name),
            "missing export {name}: {exports:?}"
        );
    }
}

#[test]
fn functions_run_without_rewind_dispatches_and_rewind_in_their_clones() {
    let out = instrument(&wasm(), &Policy::default_counter()).expect("instrument");
    let mut rsite = None;
    let mut n_funcs = 0;
    let mut bodies: Vec<Vec<wasmparser::Operator<'_>>> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(&out.wasm) {
        match payload.expect("parse") {
            wasmparser::Payload::ExportSection(r) => {
                for e in r {
                    let e = e.expect("export");
                    if e.name == "mvvm:rsite" {
                        rsite = Some(e.index);
                    }
                }
            }
            wasmparser::Payload::FunctionSection(r) => n_funcs = r.count(),
            wasmparser::Payload::CodeSectionEntry(b) => bodies.push(
                b.get_operators_reader()
                    .expect("operators")
                    .into_iter()
                    .collect::<Result<_, _>>()
                    .expect("operator"),
            ),
            _ => {}
        }
    }
    let rsite = rsite.expect("mvvm:rsite is exported");
    // A dispatch is `global.get $rsite; if` (the handler also reads $rsite, for save_frame).
    let tests_rsite = |ops: &[wasmparser::Operator<'_>]| {
        ops.windows(2).any(|w| {
            matches!(w[0], wasmparser::Operator::GlobalGet { global_index } if global_index == rsite)
                && matches!(w[1], wasmparser::Operator::If { .. })
        })
    };
    // leaf, looper, main, leaf_start, then the clones of looper and main.
    assert_eq!(n_funcs, 6, "two instrumented functions, two clones");
    assert_eq!(bodies.len(), 6);
    // 1 import + 4 host imports: the clones are functions 9 and 10.
    for (body, clone) in [(1usize, 9u32), (2, 10)] {
        assert!(
            !tests_rsite(&bodies[body]),
            "function {body} must not contain the rewind dispatches"
        );
        assert!(
            bodies[body].iter().any(
                |o| matches!(o, wasmparser::Operator::ReturnCall { function_index } if *function_index == clone)
            ),
            "function {body} hands a rewind over to its clone {clone}"
        );
        assert!(
            tests_rsite(&bodies[clone as usize - 5]),
            "clone {clone} dispatches"
        );
    }
    // $looper's loop header keeps both of its locals alive: two i32 slots, in globals of their own;
    // nothing is alive after $main's call.
    let site = |f: fn(&SiteKind) -> bool| {
        out.info
            .sites
            .iter()
            .find(|s| f(&s.kind))
            .expect("site")
            .frame
            .clone()
    };
    let header = site(|k| matches!(k, SiteKind::LoopHeader { .. }));
    assert_eq!(header.len(), 2, "{header:?}");
    assert_ne!(header[0], header[1]);
    for n in &header {
        assert_eq!(out.info.slots[*n as usize], mvvm_aot::abi::SlotType::I32);
    }
    assert!(site(|k| matches!(k, SiteKind::Call { .. })).is_empty());
    wasmparser::Validator::new_with_features(mvvm_aot::transform::supported_features())
        .validate_all(&out.wasm)
        .expect("instrumented module validates");
}

#[test]
fn plain_policy_changes_no_code() {
    let out = instrument(&wasm(), &Policy::plain()).expect("plain");
    assert!(out.info.sites.is_empty());
    assert!(out.info.functions.iter().all(|f| !f.instrumented));
}

#[test]
fn reserved_names_are_refused() {
    let w = wat::parse_str(r#"(module (func (export "mvvm:state")))"#).expect("wat");
    assert!(matches!(
        instrument(&w, &Policy::default_counter()),
        Err(TransformError::Reserved(_))
    ));
    let w = wat::parse_str(r#"(module (import "mvvm" "poll" (func (param i32))))"#).expect("wat");
    assert!(matches!(
        instrument(&w, &Policy::default_counter()),
        Err(TransformError::Reserved(_))
    ));
}

#[test]
fn container_round_trips_and_rejects_damage() {
    let aot = mvvm_aot::build::build(
        &wasm(),
        &Policy::default_counter(),
        &[Target::Pulley64],
        &EngineOptions::default(),
    )
    .expect("build");
    let bytes = aot.encode();
    let back = AotFile::decode("x.aot", &bytes).expect("decode");
    assert_eq!(back.module_hash, aot.module_hash);
    assert_eq!(back.info, aot.info);
    assert_eq!(back.artifacts.len(), 1);
    assert!(matches!(
        AotFile::decode("x", &bytes[..30]),
        Err(ContainerError::Truncated(..))
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert!(
        matches!(AotFile::decode("x", &long), Err(ContainerError::Decode(..))),
        "trailing bytes are refused"
    );
    let mut bad = bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        AotFile::decode("x", &bad),
        Err(ContainerError::Checksum(_))
    ));
}

#[test]
fn atomic_write_keeps_the_old_file_until_the_new_one_is_complete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = dir.path().join("f");
    mvvm_aot::fsutil::atomic_write(&p, b"old").expect("write");
    mvvm_aot::fsutil::atomic_write(&p, b"new").expect("write");
    assert_eq!(std::fs::read(&p).expect("read"), b"new");
    let leftovers = std::fs::read_dir(dir.path()).expect("ls").count();
    assert_eq!(leftovers, 1, "no temporary files left behind");
}

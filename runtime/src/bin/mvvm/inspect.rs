//! `mvvm inspect`: what an `.aot` file or an image holds, printed for a person.

use crate::cli::InspectArgs;
use anyhow::{bail, Context, Result};
use mvvm_checkpoint::image::{is_image, PAGE};
use mvvm_checkpoint::{FdEntry, Image};
use mvvm_contract::container::AotFile;
use mvvm_contract::SiteKind;
use mvvm_runtime::{Isa, Program};
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};

fn site_kind(k: &SiteKind) -> &'static str {
    match k {
        SiteKind::Entry => "function entry",
        SiteKind::LoopHeader { .. } => "loop header",
        SiteKind::Import { .. } => "import call",
        SiteKind::Call { .. } => "call",
        SiteKind::CallIndirect { .. } => "indirect call",
        SiteKind::TailCall { .. } => "tail call",
        SiteKind::TailCallIndirect { .. } => "indirect tail call",
    }
}

/// `mvvm inspect`: prints what `a.file` holds, as text or JSON. A closed stdout (`| head`) ends
/// the output quietly.
pub(crate) fn inspect(a: &InspectArgs) -> Result<()> {
    let file = a.file.as_path();
    let target = a.target.as_deref();
    let mut out = String::new();
    if is_image_file(file)? {
        if a.functions {
            bail!("--functions lists an .aot file's functions; give it the .aot, not an image");
        }
        if a.json {
            out = json_image(file, target)?;
        } else {
            inspect_image(&mut out, file, target)?;
        }
    } else if a.json {
        out = json_aot(file, a.functions)?;
    } else {
        inspect_aot(&mut out, file, a.functions)?;
    }
    crate::write_stdout(out.as_bytes())
}

/// Whether `file` starts like an image (otherwise it is taken for an `.aot` file).
fn is_image_file(file: &Path) -> Result<bool> {
    let mut head = [0u8; 8];
    let mut f =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let n = f.read(&mut head).unwrap_or(0);
    Ok(n == head.len() && is_image(&head))
}

/// An image and, if found, the `.aot` it names (`target`, or the one beside the image).
fn load_image(
    file: &Path,
    target: Option<&Path>,
) -> Result<(Image, Option<(PathBuf, AotFile<'static>)>)> {
    let image = Image::read(file)?;
    let beside = file.with_extension("aot");
    let aot_path = target
        .map(Path::to_path_buf)
        .or_else(|| beside.exists().then_some(beside));
    let aot = match aot_path {
        Some(p) => {
            let aot = AotFile::read(&p)?;
            Some((p, aot))
        }
        None => None,
    };
    Ok((image, aot))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Pages of a memory image, and how many hold a non-zero byte.
fn memory_pages(m: &mvvm_checkpoint::MemoryImage) -> (usize, usize) {
    let pages = m.bytes.len() / PAGE;
    let touched = m
        .bytes
        .chunks(PAGE)
        .filter(|p| p.iter().any(|b| *b != 0))
        .count();
    (pages, touched)
}

/// Elements of a table that are set (not null).
fn table_set(t: &mvvm_checkpoint::TableImage) -> usize {
    t.elements
        .iter()
        .filter(|e| {
            !matches!(
                e,
                mvvm_checkpoint::Value::FuncRef(None) | mvvm_checkpoint::Value::NullExternRef
            )
        })
        .count()
}

/// The `--json` form of an image (docs/INSPECT.md).
fn json_image(file: &Path, target: Option<&Path>) -> Result<String> {
    let (image, aot) = load_image(file, target)?;
    let s = &image.snapshot;
    let info = aot
        .as_ref()
        .filter(|(_, a)| a.module_hash == s.module_hash)
        .map(|(_, a)| &a.info);
    let frames: Vec<Value> = s
        .frames
        .iter()
        .map(|f| {
            json!({
                "func": f.func,
                "name": info.and_then(|i| i.functions.get(f.func as usize)).and_then(|f| f.name.clone()),
                "site": f.site,
                "site_kind": info.and_then(|i| i.sites.get(f.site as usize)).map(|s| site_kind(&s.kind)),
                "slots": f.slots.len(),
            })
        })
        .collect();
    let memories: Vec<Value> = s
        .memories
        .iter()
        .map(|m| {
            let (pages, touched) = memory_pages(m);
            json!({"index": m.index, "pages": pages, "nonzero_pages": touched})
        })
        .collect();
    let tables: Vec<Value> = s
        .tables
        .iter()
        .map(|t| json!({"index": t.index, "elements": t.elements.len(), "set": table_set(t)}))
        .collect();
    let globals: Vec<Value> = s
        .globals
        .iter()
        .map(|(i, v)| json!({"index": i, "value": format!("{v:?}")}))
        .collect();
    let value = json!({
        "kind": "image",
        "file": file.display().to_string(),
        "producer": image.producer,
        "taken_on": image.taken_on,
        "module_hash": hex(&s.module_hash),
        "program": aot.as_ref().map(|(p, a)| json!({
            "path": p.display().to_string(),
            "matches": a.module_hash == s.module_hash,
        })),
        "entry": s.entry,
        "counters": {"polls": s.counters.polls, "entries": s.counters.entries},
        "frames": frames,
        "memories": memories,
        "globals": globals,
        "tables": tables,
        "wasi": s.wasi.as_ref().map(json_wasi),
    });
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

/// The WASI part of an image's `--json` form.
fn json_wasi(w: &mvvm_checkpoint::WasiState) -> Value {
    let preopen = |i: u32| w.preopens.get(i as usize).map(|p| p.guest.clone());
    let fds: Vec<Value> = w
        .fds
        .iter()
        .map(|(fd, e)| match e {
            FdEntry::Stdio(k) => json!({"fd": fd, "kind": "stdio", "stream": k}),
            FdEntry::Preopen(i) => json!({"fd": fd, "kind": "preopen", "guest": preopen(*i)}),
            FdEntry::File(f) => json!({
                "fd": fd, "kind": "file", "preopen": preopen(f.preopen), "path": f.path,
                "offset": f.offset, "oflags": f.oflags, "fdflags": f.fdflags,
            }),
        })
        .collect();
    let preopens: Vec<Value> = w
        .preopens
        .iter()
        .enumerate()
        .map(|(i, p)| json!({"fd": 3 + i, "guest": p.guest, "host": p.host}))
        .collect();
    json!({
        "argv": w.argv,
        "env_count": w.env.len(),
        "preopens": preopens,
        "fds": fds,
        "free_fds": w.free_fds,
        "monotonic_ns": w.monotonic_ns,
    })
}

/// The `--json` form of an `.aot` file (docs/INSPECT.md).
fn json_aot(file: &Path, list: bool) -> Result<String> {
    let aot = AotFile::read(file)?;
    let info = &aot.info;
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for s in &info.sites {
        *kinds.entry(site_kind(&s.kind)).or_default() += 1;
    }
    let targets: Vec<Value> = aot
        .artifacts
        .iter()
        .map(|a| json!({"triple": a.target.triple(), "bytes": a.bytes.len()}))
        .collect();
    let p = &info.policy;
    let mut value = json!({
        "kind": "aot",
        "file": file.display().to_string(),
        "producer": aot.producer,
        "module_hash": aot.hash_hex(),
        "wasm_bytes": aot.wasm.len(),
        "policy": {
            "description": p.describe(),
            "function_entry": p.function_entry,
            "loop_header": p.loop_header,
            "counter_loop": p.counter_loop,
            "threshold_bits": p.threshold_bits,
            "instrument": p.instrument,
        },
        "opt_level": aot.engine.opt_level,
        "targets": targets,
        "functions": {
            "total": info.functions.len(),
            "imported": info.imported_funcs,
            "instrumented": info.functions.iter().filter(|f| f.instrumented).count(),
        },
        "sites": {"total": info.sites.len(), "by_kind": kinds},
    });
    if let Some(v) = mvvm_aot::variant::read(&aot.wasm) {
        value["variant"] = json!({"shift_stack": v.shift_stack, "shift_data": v.shift_data, "diversify": v.diversify});
    }
    if list {
        value["functions"]["list"] = serde_json::to_value(function_list(info))?;
    }
    Ok(serde_json::to_string_pretty(&value)? + "\n")
}

fn inspect_image(out: &mut String, file: &Path, target: Option<&Path>) -> Result<()> {
    let (image, aot) = load_image(file, target)?;
    let s = &image.snapshot;
    writeln!(out, "image:        {}", file.display())?;
    writeln!(out, "producer:     {}", image.producer)?;
    writeln!(out, "taken on:     {}", image.taken_on)?;
    writeln!(out, "module hash:  {}", hex(&s.module_hash))?;
    match &aot {
        Some((p, a)) if a.module_hash == s.module_hash => {
            writeln!(out, "program:      {} (matches)", p.display())?
        }
        Some((p, _)) => writeln!(
            out,
            "program:      {} (DOES NOT MATCH: taken from another build)",
            p.display()
        )?,
        _ => writeln!(
            out,
            "program:      unknown (pass -t APP.aot for function names and site kinds)"
        )?,
    }
    writeln!(
        out,
        "parent:       none (images are complete, not incremental)"
    )?;
    writeln!(out, "entry:        {}", s.entry)?;
    writeln!(
        out,
        "polls:        {} (function entries counted: {})",
        s.counters.polls, s.counters.entries
    )?;
    let info = aot
        .as_ref()
        .filter(|(_, a)| a.module_hash == s.module_hash)
        .map(|(_, a)| &a.info);
    writeln!(
        out,
        "call stack:   {} frames, innermost first",
        s.frames.len()
    )?;
    for (i, f) in s.frames.iter().enumerate() {
        let name = info
            .and_then(|i| i.functions.get(f.func as usize))
            .and_then(|f| f.name.clone())
            .unwrap_or_else(|| "?".into());
        let kind = info
            .and_then(|i| i.sites.get(f.site as usize))
            .map(|s| site_kind(&s.kind))
            .unwrap_or("?");
        writeln!(
            out,
            "  #{i:<3} func {:<6} {name:<24} site {:<6} {kind:<18} {} slots",
            f.func,
            f.site,
            f.slots.len()
        )?;
    }
    for m in &s.memories {
        let (pages, touched) = memory_pages(m);
        writeln!(
            out,
            "memory {}:     {pages} pages, {touched} non-zero ({} KiB stored)",
            m.index,
            touched * 64
        )?;
    }
    writeln!(out, "globals:      {}", s.globals.len())?;
    for (i, v) in &s.globals {
        writeln!(out, "  global {i:<5} {v:?}")?;
    }
    for t in &s.tables {
        let set = table_set(t);
        writeln!(
            out,
            "table {}:      {} elements, {set} set",
            t.index,
            t.elements.len()
        )?;
    }
    let Some(w) = &s.wasi else {
        writeln!(out, "wasi:         none (a bare instance)")?;
        return Ok(());
    };
    writeln!(out, "argv:         {:?}", w.argv)?;
    writeln!(out, "environment:  {} variables", w.env.len())?;
    writeln!(out, "preopens:")?;
    for (i, p) in w.preopens.iter().enumerate() {
        writeln!(
            out,
            "  fd {:<4} {} (host {} at checkpoint)",
            3 + i,
            p.guest,
            p.host
        )?;
    }
    writeln!(out, "open fds:")?;
    for (fd, e) in &w.fds {
        match e {
            FdEntry::Stdio(k) => writeln!(
                out,
                "  fd {fd:<4} {}",
                ["stdin", "stdout", "stderr"]
                    .get(*k as usize)
                    .copied()
                    .unwrap_or("stdio")
            )?,
            FdEntry::Preopen(i) => writeln!(
                out,
                "  fd {fd:<4} preopen {}",
                w.preopens
                    .get(*i as usize)
                    .map(|p| p.guest.as_str())
                    .unwrap_or("?")
            )?,
            FdEntry::File(f) => writeln!(
                out,
                "  fd {fd:<4} {}/{} offset {} oflags {:#x} fdflags {:#x}",
                w.preopens
                    .get(f.preopen as usize)
                    .map(|p| p.guest.as_str())
                    .unwrap_or("?"),
                f.path,
                f.offset,
                f.oflags,
                f.fdflags
            )?,
        }
    }
    if !w.free_fds.is_empty() {
        writeln!(out, "free fds:     {:?}", w.free_fds)?;
    }
    writeln!(out, "monotonic:    {} ns at checkpoint", w.monotonic_ns)?;
    Ok(())
}

fn inspect_aot(out: &mut String, file: &Path, list: bool) -> Result<()> {
    let aot = AotFile::read(file)?;
    let info = &aot.info;
    let instrumented = info.functions.iter().filter(|f| f.instrumented).count();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for s in &info.sites {
        let k = site_kind(&s.kind);
        *kinds.entry(k).or_default() += 1;
    }
    writeln!(out, "file:         {}", file.display())?;
    writeln!(out, "producer:     {}", aot.producer)?;
    writeln!(out, "module hash:  {}", aot.hash_hex())?;
    writeln!(out, "wasm size:    {} bytes (instrumented)", aot.wasm.len())?;
    writeln!(out, "policy:       {}", info.policy.describe())?;
    writeln!(out, "threshold K:  {}", info.policy.threshold_bits)?;
    writeln!(out, "opt level:    {}", aot.engine.opt_level)?;
    if let Some(v) = mvvm_aot::variant::read(&aot.wasm) {
        writeln!(out, "variant:      {}", v.describe())?;
    }
    writeln!(out, "targets:")?;
    for a in &aot.artifacts {
        writeln!(out, "  {:<28} {} bytes", a.target.triple(), a.bytes.len())?;
    }
    // What the code of each artifact this host can load is for (the others cannot be mapped here).
    for isa in [Isa::Native, Isa::Pulley64] {
        let Ok(target) = isa.target() else { continue };
        if aot.artifact(target).is_none() {
            continue;
        }
        let p = match Program::from_aot_artifact(&aot, isa) {
            Ok(p) => p,
            Err(e) => {
                writeln!(
                    out,
                    "code:         {}: not loadable here: {e}",
                    target.triple()
                )?;
                continue;
            }
        };
        if let Some(c) = p.code_parts() {
            writeln!(
                out,
                "code:         {}: {} bytes: functions {}, rewind clones {} ({}), other {}",
                target.triple(),
                p.code_size(),
                c.functions_bytes,
                c.clones_bytes,
                c.clones,
                c.other_bytes
            )?;
        }
    }
    writeln!(
        out,
        "functions:    {} ({} imported, {} instrumented)",
        info.functions.len(),
        info.imported_funcs,
        instrumented
    )?;
    if list {
        for f in function_list(info) {
            let name = f.name.unwrap_or("-");
            let entry = if f.entry_site { ", entry site" } else { "" };
            writeln!(out, "  {:>6}  {name}  ({}{entry})", f.index, f.what)?;
        }
    }
    writeln!(out, "sites:        {}", info.sites.len())?;
    for (k, n) in kinds {
        writeln!(out, "  {k:<28} {n}")?;
    }
    Ok(())
}

/// One line of `--functions`.
#[derive(serde::Serialize)]
struct ListedFunction<'a> {
    index: usize,
    name: Option<&'a str>,
    /// "imported", "instrumented" or "not instrumented"
    what: &'static str,
    /// Whether `-f` can stop at its entry.
    entry_site: bool,
}

fn function_list(info: &mvvm_contract::ModuleInfo) -> Vec<ListedFunction<'_>> {
    let entries: std::collections::BTreeSet<u32> = info
        .sites
        .iter()
        .filter(|s| s.kind == SiteKind::Entry)
        .map(|s| s.func)
        .collect();
    info.functions
        .iter()
        .enumerate()
        .map(|(index, f)| ListedFunction {
            index,
            name: f.name.as_deref(),
            what: match (f.imported, f.instrumented) {
                (true, _) => "imported",
                (false, true) => "instrumented",
                (false, false) => "not instrumented",
            },
            entry_site: entries.contains(&(index as u32)),
        })
        .collect()
}

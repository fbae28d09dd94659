//! `mvvm inspect`: what an `.aot` file or an image holds, printed for a person.

use anyhow::{Context, Result};
use mvvm_checkpoint::image::{is_image, PAGE};
use mvvm_checkpoint::{FdEntry, Image};
use mvvm_contract::container::AotFile;
use mvvm_contract::SiteKind;
use mvvm_runtime::{Isa, Program};
use std::path::Path;

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

pub(crate) fn inspect(file: &Path, target: Option<&Path>) -> Result<()> {
    let mut head = [0u8; 8];
    {
        use std::io::Read;
        let mut f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let n = f.read(&mut head).unwrap_or(0);
        if n == head.len() && is_image(&head) {
            return inspect_image(file, target);
        }
    }
    inspect_aot(file)
}

fn inspect_image(file: &Path, target: Option<&Path>) -> Result<()> {
    let image = Image::read(file)?;
    let s = &image.snapshot;
    let beside = file.with_extension("aot");
    let aot_path = target
        .map(Path::to_path_buf)
        .or_else(|| beside.exists().then_some(beside));
    let aot = match &aot_path {
        Some(p) => Some(AotFile::read(p)?),
        None => None,
    };
    println!("image:        {}", file.display());
    println!("producer:     {}", image.producer);
    println!("taken on:     {}", image.taken_on);
    println!(
        "module hash:  {}",
        s.module_hash
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    match (&aot, &aot_path) {
        (Some(a), Some(p)) if a.module_hash == s.module_hash => {
            println!("program:      {} (matches)", p.display())
        }
        (Some(_), Some(p)) => println!(
            "program:      {} (DOES NOT MATCH: taken from another build)",
            p.display()
        ),
        _ => println!("program:      unknown (pass -t APP.aot for function names and site kinds)"),
    }
    println!("parent:       none (images are complete, not incremental)");
    println!("entry:        {}", s.entry);
    println!(
        "polls:        {} (function entries counted: {})",
        s.counters.polls, s.counters.entries
    );
    let info = aot
        .as_ref()
        .filter(|a| a.module_hash == s.module_hash)
        .map(|a| &a.info);
    println!("call stack:   {} frames, innermost first", s.frames.len());
    for (i, f) in s.frames.iter().enumerate() {
        let name = info
            .and_then(|i| i.functions.get(f.func as usize))
            .and_then(|f| f.name.clone())
            .unwrap_or_else(|| "?".into());
        let kind = info
            .and_then(|i| i.sites.get(f.site as usize))
            .map(|s| site_kind(&s.kind))
            .unwrap_or("?");
        println!(
            "  #{i:<3} func {:<6} {name:<24} site {:<6} {kind:<18} {} slots",
            f.func,
            f.site,
            f.slots.len()
        );
    }
    for m in &s.memories {
        let pages = m.bytes.len() / PAGE;
        let touched = m
            .bytes
            .chunks(PAGE)
            .filter(|p| p.iter().any(|b| *b != 0))
            .count();
        println!(
            "memory {}:     {pages} pages, {touched} non-zero ({} KiB stored)",
            m.index,
            touched * 64
        );
    }
    println!("globals:      {}", s.globals.len());
    for (i, v) in &s.globals {
        println!("  global {i:<5} {v:?}");
    }
    for t in &s.tables {
        let set = t
            .elements
            .iter()
            .filter(|e| {
                !matches!(
                    e,
                    mvvm_checkpoint::Value::FuncRef(None) | mvvm_checkpoint::Value::NullExternRef
                )
            })
            .count();
        println!(
            "table {}:      {} elements, {set} set",
            t.index,
            t.elements.len()
        );
    }
    let Some(w) = &s.wasi else {
        println!("wasi:         none (a bare instance)");
        return Ok(());
    };
    println!("argv:         {:?}", w.argv);
    println!("environment:  {} variables", w.env.len());
    println!("preopens:");
    for (i, p) in w.preopens.iter().enumerate() {
        println!(
            "  fd {:<4} {} (host {} at checkpoint)",
            3 + i,
            p.guest,
            p.host
        );
    }
    println!("open fds:");
    for (fd, e) in &w.fds {
        match e {
            FdEntry::Stdio(k) => println!(
                "  fd {fd:<4} {}",
                ["stdin", "stdout", "stderr"]
                    .get(*k as usize)
                    .copied()
                    .unwrap_or("stdio")
            ),
            FdEntry::Preopen(i) => println!(
                "  fd {fd:<4} preopen {}",
                w.preopens
                    .get(*i as usize)
                    .map(|p| p.guest.as_str())
                    .unwrap_or("?")
            ),
            FdEntry::File(f) => println!(
                "  fd {fd:<4} {}/{} offset {} oflags {:#x} fdflags {:#x}",
                w.preopens
                    .get(f.preopen as usize)
                    .map(|p| p.guest.as_str())
                    .unwrap_or("?"),
                f.path,
                f.offset,
                f.oflags,
                f.fdflags
            ),
        }
    }
    if !w.free_fds.is_empty() {
        println!("free fds:     {:?}", w.free_fds);
    }
    println!("monotonic:    {} ns at checkpoint", w.monotonic_ns);
    Ok(())
}

fn inspect_aot(file: &Path) -> Result<()> {
    let aot = AotFile::read(file)?;
    let info = &aot.info;
    let instrumented = info.functions.iter().filter(|f| f.instrumented).count();
    let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
    for s in &info.sites {
        let k = site_kind(&s.kind);
        *kinds.entry(k).or_default() += 1;
    }
    println!("file:         {}", file.display());
    println!("producer:     {}", aot.producer);
    println!("module hash:  {}", aot.hash_hex());
    println!("wasm size:    {} bytes (instrumented)", aot.wasm.len());
    println!("policy:       {}", info.policy.describe());
    println!("threshold K:  {}", info.policy.threshold_bits);
    println!("opt level:    {}", aot.engine.opt_level);
    println!("targets:");
    for a in &aot.artifacts {
        println!("  {:<28} {} bytes", a.target.triple(), a.bytes.len());
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
                println!("code:         {}: not loadable here: {e}", target.triple());
                continue;
            }
        };
        if let Some(c) = p.code_parts() {
            println!(
                "code:         {}: {} bytes: functions {}, rewind clones {} ({}), other {}",
                target.triple(),
                p.code_size(),
                c.functions_bytes,
                c.clones_bytes,
                c.clones,
                c.other_bytes
            );
        }
    }
    println!(
        "functions:    {} ({} imported, {} instrumented)",
        info.functions.len(),
        info.imported_funcs,
        instrumented
    );
    println!("sites:        {}", info.sites.len());
    for (k, n) in kinds {
        println!("  {k:<28} {n}");
    }
    Ok(())
}

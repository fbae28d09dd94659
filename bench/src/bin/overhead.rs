//! What instrumentation costs while a program runs, side by side with Binaryen's Asyncify.
//!
//! Usage: `overhead [--pairs N] [--csv FILE] [--only NAME,...] [--variants LABEL,...] [--scale-div D]`
//! (`artifact/overhead.sh` runs it with the defaults and a CSV file).
//!
//! For every benchmark workload (`test/guests/bench`, at its bench SCALE) and every variant, the
//! uninstrumented module and the variant are run alternately, `--pairs` times (default 5), through
//! the same wasmtime configuration (`mvvm_contract::engine_config`, native ISA) and the same WASI layer;
//! the time ratio is the median of the per-pair ratios. Every run's output must equal the
//! uninstrumented run's, or the tool stops.
//!
//! Variants: the transform with function-entry sites, loop-header sites, and counter-loop sites at
//! K = 8, 12, 16, 20 (import-call sites are always present); and Asyncify: the same counter-loop
//! K=16 poll sites without any unwinding code (`Mode::PollsOnly`), made unwindable by
//! `wasm-opt --asyncify` on the `mvvm.poll` import, then optimised (`-O2`), as Asyncify is meant
//! to be used. Its baseline is the uninstrumented module after the same `wasm-opt -O2`, so the
//! ratio shows only what Asyncify adds.
//!
//! Code size: wasm bytes, and bytes of native code wasmtime compiled, variant over baseline; and
//! for counter-loop K=16 that native code split into the module's own functions, the rewind
//! clones and the rest (`Program::code_parts`), each over the baseline's native code.
//! The last line printed is `geomean R`: the geometric mean over all workloads of the
//! counter-loop K=16 time ratio.

use mvvm_aot::transform::instrument;
use mvvm_bench::median;
use mvvm_contract::{EngineOptions, Policy};
use mvvm_runtime::{CodeParts, Isa, Outcome, Program, Trigger};
use mvvm_tests::{bench_workloads, Workload};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One way of building the measured module.
#[derive(Clone)]
enum Variant {
    Transform(Policy),
    Asyncify,
}

fn variants() -> Vec<(String, Variant)> {
    let base = Policy {
        function_entry: false,
        loop_header: false,
        counter_loop: false,
        threshold_bits: 16,
        instrument: true,
    };
    let mut v = vec![
        (
            "function".to_string(),
            Variant::Transform(Policy {
                function_entry: true,
                ..base.clone()
            }),
        ),
        (
            "loop".to_string(),
            Variant::Transform(Policy {
                loop_header: true,
                ..base.clone()
            }),
        ),
    ];
    for k in [8u8, 12, 16, 20] {
        v.push((
            format!("counter K={k}"),
            Variant::Transform(Policy {
                counter_loop: true,
                threshold_bits: k,
                ..base.clone()
            }),
        ));
    }
    v.push(("asyncify".to_string(), Variant::Asyncify));
    v
}

/// A compiled module and its sizes.
struct Built {
    program: Program,
    wasm_size: usize,
}

fn build(wasm: &[u8], policy: &Policy) -> Built {
    let out = instrument(wasm, policy).expect("instrument");
    let wasm_size = out.wasm.len();
    let program =
        Program::from_instrumented(&out.wasm, out.info, Isa::Native, &EngineOptions::default())
            .expect("compile");
    Built { program, wasm_size }
}

/// The Asyncify variant and its baseline (see [`mvvm_bench::asyncify`]).
fn build_asyncify(wasm: &[u8], dir: &Path) -> (Built, Built) {
    let a = mvvm_bench::asyncify(wasm, dir).unwrap_or_else(|e| panic!("{e}"));
    let compile = |wasm: &[u8], info| {
        Program::from_instrumented(wasm, info, Isa::Native, &EngineOptions::default())
            .expect("compile")
    };
    let baseline = Built {
        program: compile(&a.baseline.wasm, a.baseline.info),
        wasm_size: a.baseline.wasm.len(),
    };
    let measured = Built {
        program: compile(&a.asyncified.wasm, a.asyncified.info),
        wasm_size: a.asyncified.wasm.len(),
    };
    (baseline, measured)
}

/// Runs `w` once; returns the seconds it took (instantiation included) and its stdout.
fn run(b: &Built, w: &Workload, scale: u32) -> (f64, Vec<u8>) {
    let (cfg, out, _err) = w.config(scale);
    let t = Instant::now();
    let r = b.program.run(&cfg, Trigger::None).expect("run");
    let dt = t.elapsed().as_secs_f64();
    assert!(
        matches!(r.outcome, Outcome::Exited(0)),
        "{} ended with {:?}",
        w.name,
        r.outcome
    );
    (dt, out.contents().to_vec())
}

/// One measured cell.
struct Cell {
    workload: &'static str,
    variant: String,
    ratio: f64,
    base_ms: f64,
    variant_ms: f64,
    wasm: (usize, usize),
    code: (usize, usize),
    /// The variant's native code by part, when it is laid out as the transform lays it out.
    parts: Option<CodeParts>,
}

struct Args {
    pairs: usize,
    csv: Option<PathBuf>,
    only: Option<Vec<String>>,
    variants: Option<Vec<String>>,
    scale_div: u32,
}

const USAGE: &str =
    "overhead [--pairs N] [--csv FILE] [--only NAME,...] [--variants LABEL,...] [--scale-div D]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        pairs: 5,
        csv: None,
        only: None,
        variants: None,
        scale_div: 1,
    };
    let mut it = std::env::args().skip(1);
    let count = |name: &str, v: Option<String>| -> Result<u32, String> {
        v.as_deref()
            .and_then(|v| v.parse::<u32>().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| format!("{name} needs a whole number of at least 1"))
    };
    let list = |name: &str, v: Option<String>| -> Result<Vec<String>, String> {
        v.map(|v| v.split(',').map(str::to_string).collect())
            .ok_or_else(|| format!("{name} needs a comma-separated list"))
    };
    while let Some(x) = it.next() {
        match x.as_str() {
            "--pairs" => a.pairs = count("--pairs", it.next())? as usize,
            "--scale-div" => a.scale_div = count("--scale-div", it.next())?,
            "--csv" => a.csv = Some(PathBuf::from(it.next().ok_or("--csv needs a file")?)),
            "--only" => a.only = Some(list("--only", it.next())?),
            "--variants" => a.variants = Some(list("--variants", it.next())?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// Ends the tool on a bad command line: one line and the usage, exit status 2.
fn bad_usage(problem: &str) -> ! {
    eprintln!("overhead: {problem}\nusage: {USAGE}");
    std::process::exit(2)
}

fn main() {
    let args = parse_args().unwrap_or_else(|e| bad_usage(&e));
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut cells: Vec<Cell> = Vec::new();
    let workloads: Vec<Workload> = bench_workloads()
        .into_iter()
        .filter(|w| {
            args.only
                .as_ref()
                .is_none_or(|o| o.iter().any(|n| n == w.name))
        })
        .collect();
    if workloads.is_empty() {
        let names: Vec<&str> = bench_workloads().iter().map(|w| w.name).collect();
        bad_usage(&format!(
            "--only matched no workload (workloads: {})",
            names.join(", ")
        ));
    }
    let chosen: Vec<(String, Variant)> = variants()
        .into_iter()
        .filter(|(l, _)| args.variants.as_ref().is_none_or(|v| v.contains(l)))
        .collect();
    if chosen.is_empty() {
        let labels: Vec<String> = variants().into_iter().map(|(l, _)| l).collect();
        bad_usage(&format!(
            "--variants matched no variant (variants: {})",
            labels.join(", ")
        ));
    }
    for w in &workloads {
        let scale = (w.bench_scale / args.scale_div).max(1);
        let wasm = w.wasm();
        let plain = build(&wasm, &Policy::plain());
        let (_, reference) = run(&plain, w, scale);
        for (label, variant) in chosen.iter().cloned() {
            let (base, measured) = match &variant {
                Variant::Transform(p) => (None, build(&wasm, p)),
                Variant::Asyncify => {
                    let (b, m) = build_asyncify(&wasm, tmp.path());
                    (Some(b), m)
                }
            };
            let base = base.as_ref().unwrap_or(&plain);
            let (mut ratios, mut tb, mut tv) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..args.pairs {
                let (b, out_b) = run(base, w, scale);
                let (v, out_v) = run(&measured, w, scale);
                assert!(
                    out_b == reference && out_v == reference,
                    "{} ({label}) printed something else than the uninstrumented run",
                    w.name
                );
                ratios.push(v / b);
                tb.push(b);
                tv.push(v);
            }
            let cell = Cell {
                workload: w.name,
                variant: label,
                ratio: median(&mut ratios),
                base_ms: median(&mut tb) * 1e3,
                variant_ms: median(&mut tv) * 1e3,
                wasm: (base.wasm_size, measured.wasm_size),
                code: (base.program.code_size(), measured.program.code_size()),
                parts: measured.program.code_parts(),
            };
            eprintln!(
                "{:<13} {:<12} {:>9.2} ms -> {:>9.2} ms  x{:.3}",
                cell.workload, cell.variant, cell.base_ms, cell.variant_ms, cell.ratio
            );
            cells.push(cell);
        }
    }
    if let Some(path) = &args.csv {
        write_csv(path, &cells, args.pairs).expect("write the CSV file");
    }
    let labels: Vec<String> = chosen.into_iter().map(|(l, _)| l).collect();
    print_tables(&cells, &workloads, &labels, args.pairs);
}

fn write_csv(path: &Path, cells: &[Cell], pairs: usize) -> std::io::Result<()> {
    let mut s = String::from(
        "workload,variant,pairs,baseline_ms,variant_ms,time_ratio,wasm_baseline,wasm_variant,code_baseline,code_variant,code_variant_functions,code_variant_clones,code_variant_other\n",
    );
    for c in cells {
        // The split of the variant's code, empty where it has none (Asyncify).
        let parts = c.parts.map_or(",,".into(), |p| {
            format!("{},{},{}", p.functions_bytes, p.clones_bytes, p.other_bytes)
        });
        s.push_str(&format!(
            "{},{},{pairs},{:.3},{:.3},{:.4},{},{},{},{},{parts}\n",
            c.workload,
            c.variant,
            c.base_ms,
            c.variant_ms,
            c.ratio,
            c.wasm.0,
            c.wasm.1,
            c.code.0,
            c.code.1
        ));
    }
    mvvm_contract::file::atomic_write_as(path, s.as_bytes(), mvvm_contract::file::Access::Shared)
}

/// Where the native code of variant `label` goes: its own functions, the rewind clones and the
/// rest, each over the uninstrumented module's native code (the three add up to the variant's
/// native-code ratio in the code-size table).
fn print_code_parts(o: &mut impl Write, cells: &[Cell], workloads: &[Workload], label: &str) {
    let rows: Vec<(&str, usize, [f64; 4])> = workloads
        .iter()
        .filter_map(|w| {
            let c = cells
                .iter()
                .find(|c| c.workload == w.name && c.variant == label)?;
            let p = c.parts?;
            let base = c.code.0 as f64;
            let r = |b: usize| b as f64 / base;
            Some((
                w.name,
                c.code.0,
                [
                    r(p.functions_bytes),
                    r(p.clones_bytes),
                    r(p.other_bytes),
                    r(c.code.1),
                ],
            ))
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\nNative code of {label} by part, over the uninstrumented module's native code:\n"
    );
    let _ = writeln!(
        o,
        "| workload | plain code | functions | rewind clones | other | total |"
    );
    let _ = writeln!(o, "|---|---:|---:|---:|---:|---:|");
    for (name, plain, r) in &rows {
        let _ = writeln!(
            o,
            "| {name} | {plain} | {:.2} | {:.2} | {:.2} | {:.2} |",
            r[0], r[1], r[2], r[3]
        );
    }
    let g: Vec<String> = (0..4)
        .map(|i| format!("{:.2}", geomean(rows.iter().map(|r| r.2[i]))))
        .collect();
    let _ = writeln!(o, "| **geomean** | | {} |", g.join(" | "));
}

fn geomean(v: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for x in v {
        sum += x.ln();
        n += 1;
    }
    (sum / n.max(1) as f64).exp()
}

fn print_tables(cells: &[Cell], workloads: &[Workload], labels: &[String], pairs: usize) {
    let cell = |w: &str, l: &str| cells.iter().find(|c| c.workload == w && c.variant == l);
    let mut o = std::io::stdout().lock();
    let _ = writeln!(
        o,
        "Run time, variant over uninstrumented (median of {pairs} alternating pairs; asyncify over wasm-opt -O2):\n"
    );
    let _ = writeln!(o, "| workload | plain (ms) | {} |", labels.join(" | "));
    let _ = writeln!(o, "|---|---:|{}", "---:|".repeat(labels.len()));
    for w in workloads {
        let plain_ms = cell(w.name, "counter K=16").map_or(0.0, |c| c.base_ms);
        let row: Vec<String> = labels
            .iter()
            .map(|l| cell(w.name, l).map_or("-".into(), |c| format!("{:.3}", c.ratio)))
            .collect();
        let _ = writeln!(o, "| {} | {plain_ms:.1} | {} |", w.name, row.join(" | "));
    }
    let geo: Vec<String> = labels
        .iter()
        .map(|l| {
            format!(
                "{:.3}",
                geomean(cells.iter().filter(|c| &c.variant == l).map(|c| c.ratio))
            )
        })
        .collect();
    let _ = writeln!(o, "| **geomean** | | {} |", geo.join(" | "));

    let _ = writeln!(
        o,
        "\nCode size, variant over uninstrumented: wasm bytes / native code bytes:\n"
    );
    let _ = writeln!(
        o,
        "| workload | plain wasm | plain code | {} |",
        labels.join(" | ")
    );
    let _ = writeln!(o, "|---|---:|---:|{}", "---:|".repeat(labels.len()));
    for w in workloads {
        let (pw, pc) = cell(w.name, "counter K=16").map_or((0, 0), |c| (c.wasm.0, c.code.0));
        let row: Vec<String> = labels
            .iter()
            .map(|l| {
                cell(w.name, l).map_or("-".into(), |c| {
                    format!(
                        "{:.2} / {:.2}",
                        c.wasm.1 as f64 / c.wasm.0 as f64,
                        c.code.1 as f64 / c.code.0 as f64
                    )
                })
            })
            .collect();
        let _ = writeln!(o, "| {} | {pw} | {pc} | {} |", w.name, row.join(" | "));
    }
    let sizes: Vec<String> = labels
        .iter()
        .map(|l| {
            let f = |i: usize| {
                geomean(cells.iter().filter(|c| &c.variant == l).map(|c| {
                    if i == 0 {
                        c.wasm.1 as f64 / c.wasm.0 as f64
                    } else {
                        c.code.1 as f64 / c.code.0 as f64
                    }
                }))
            };
            format!("{:.2} / {:.2}", f(0), f(1))
        })
        .collect();
    let _ = writeln!(o, "| **geomean** | | | {} |", sizes.join(" | "));
    print_code_parts(&mut o, cells, workloads, "counter K=16");
    let r = geomean(
        cells
            .iter()
            .filter(|c| c.variant == "counter K=16")
            .map(|c| c.ratio),
    );
    let _ = writeln!(o, "\ngeomean {r:.3}");
}

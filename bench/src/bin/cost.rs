//! First look at what instrumentation costs: for every C guest, code size and native run time of
//! the instrumented module over the plain one (same engine configuration), measured side by side,
//! alternating, median of `PAIRS` pairs. Usage: `cost [PAIRS]`.

use mvvm_aot::{EngineOptions, Policy};
use mvvm_bench::median;
use mvvm_runtime::{Isa, Output, Program, Trigger};
use mvvm_tests::all_guests;
use std::time::Instant;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

fn time_run(p: &Program, guest: &mvvm_tests::Guest, dir: &std::path::Path) -> f64 {
    let (mut cfg, _, _) = guest.config(Some(dir));
    cfg.stdout = Output::Capture(MemoryOutputPipe::new(1 << 24));
    let t = Instant::now();
    let r = p.run(&cfg, Trigger::None).expect("run");
    let dt = t.elapsed().as_secs_f64();
    assert!(matches!(r.outcome, mvvm_runtime::Outcome::Exited(_)));
    dt
}

fn main() {
    let pairs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(11);
    let policies = [
        ("counter-loop K=16", Policy::default_counter()),
        (
            "entry+counter-loop K=16",
            Policy {
                function_entry: true,
                ..Policy::default_counter()
            },
        ),
        // Import-call sites only: separates the cost of call-path checks from loop countdowns.
        (
            "imports only",
            Policy {
                counter_loop: false,
                ..Policy::default_counter()
            },
        ),
    ];
    println!("| program | policy | wasm size plain | instrumented | size ratio | run time plain (ms) | instrumented (ms) | time ratio |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    let mut logs = Vec::new();
    for guest in all_guests().into_iter().filter(|g| g.lang == "c") {
        let wasm = guest.wasm();
        let plain_out = mvvm_aot::instrument(&wasm, &Policy::plain()).expect("plain");
        let plain = Program::from_wasm(
            &wasm,
            &Policy::plain(),
            Isa::Native,
            &EngineOptions::default(),
        )
        .expect("plain");
        for (label, policy) in &policies {
            let out = mvvm_aot::instrument(&wasm, policy).expect("instrument");
            let inst = Program::from_wasm(&wasm, policy, Isa::Native, &EngineOptions::default())
                .expect("inst");
            let dir = std::env::temp_dir().join(format!("mvvm-cost-{}", std::process::id()));
            let (mut tp, mut ti) = (Vec::new(), Vec::new());
            for _ in 0..pairs {
                for (p, v) in [(&plain, &mut tp), (&inst, &mut ti)] {
                    let _ = std::fs::remove_dir_all(&dir);
                    std::fs::create_dir_all(&dir).expect("dir");
                    v.push(time_run(p, &guest, &dir));
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
            let (mp, mi) = (median(&mut tp), median(&mut ti));
            let (sp, si) = (plain_out.wasm.len(), out.wasm.len());
            println!(
                "| {} | {label} | {sp} | {si} | {:.2} | {:.2} | {:.2} | {:.3} |",
                guest.name,
                si as f64 / sp as f64,
                mp * 1e3,
                mi * 1e3,
                mi / mp
            );
            if *label == "counter-loop K=16" {
                logs.push((mi / mp).ln());
            }
        }
    }
    let geo = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
    println!("\ngeomean time ratio (counter-loop K=16): {geo:.3} over {} programs, {pairs} alternating pairs each", logs.len());
}

//! The long referee run: `cargo run --release -p mvvm-tests --bin referee -- [COUNT] [FIRST_SEED]`.
//! Prints the tally; exits 1 on any mismatch.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let count: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let start = std::time::Instant::now();
    let t = mvvm_tests::referee::run(first, count);
    for (seed, m) in &t.mismatches {
        println!("MISMATCH seed {seed}: {m}");
    }
    println!(
        "referee: {count} modules (seeds {first}..{}): {} agree ({} also through a checkpoint), {} inconclusive (plain run out of fuel or stack), {} mismatches, {:.0?}",
        first + count,
        t.agree,
        t.checkpointed,
        t.inconclusive,
        t.mismatches.len(),
        start.elapsed()
    );
    if t.mismatches.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

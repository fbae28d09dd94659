//! The long decoder fuzz run: `cargo run --release -p mvvm-tests --bin decode-fuzz -- [COUNT]
//! [FIRST_SEED]`. Prints the tally; exits 1 if any case panicked.

fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let count: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let first: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let start = std::time::Instant::now();
    let seeds = mvvm_tests::decode_fuzz::seeds();
    let t = mvvm_tests::decode_fuzz::run(&seeds, first, count);
    for (seed, message) in &t.panics {
        println!("PANIC seed {seed}: {message}");
    }
    println!(
        "decode-fuzz: {} cases (seeds {first}..{}): {} accepted, {} refused, {} panics, {:.0?}",
        t.cases,
        first + count,
        t.accepted,
        t.refused,
        t.panics.len(),
        start.elapsed()
    );
    if t.panics.is_empty() {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

//! mvvm's benchmarks. `cargo run --release -p mvvm-bench --bin cost` prints the first-look cost
//! table (code size and run time, instrumented over plain); `cargo bench -p mvvm-bench` runs the
//! criterion benches of the transform.

/// Median of a non-empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#!/usr/bin/env bash
# What instrumentation costs while a program runs, side by side with Binaryen's Asyncify.
#
#   artifact/overhead.sh [--pairs N] [--only NAME,...]
#
# Builds mvvm (release) and the benchmark workloads (test/guests/bench: our C kernels, SQLite, Lua
# and zlib from crates.io sources), then, for every workload and policy, runs the uninstrumented
# module and the instrumented one alternately through the same wasmtime configuration (at least 5
# pairs) and prints the tables: median run-time ratio per workload and policy (function, loop,
# counter-loop at K = 8, 12, 16, 20, Asyncify), and code-size ratios. The last line is
# `geomean R`: counter-loop K=16 over uninstrumented, all workloads. The CSV goes to
# target/artifact/overhead.csv (artifact/plots.sh draws it). bench/src/bin/overhead.rs says how
# each number is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench
out=target/artifact
mkdir -p "$out"
cargo build --release -p mvvm-bench --bin overhead
exec target/release/overhead --csv "$out/overhead.csv" "$@"

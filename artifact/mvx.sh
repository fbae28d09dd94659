#!/usr/bin/env bash
# What a follower costs: a multi-variant pair (native master, native follower, output-lockstep)
# against a single run, side by side in one run (bench/src/bin/mvx.rs).
#
#   artifact/mvx.sh [PAIRS]        (default 5 alternating single/pair runs per row)
#
# Prints the wall-time and CPU-time ratios of compute-bound workloads and the cost of one
# compared and one replicated event, and writes target/artifact/mvx.csv
# (columns: workload,single_ms,pair_wall_ratio,pair_cpu_ratio). This machine has 2 cores: the
# pair's two threads get one each, so wall time shows what the design costs and CPU time what the
# second variant costs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=target/artifact
mkdir -p "$out"
cargo build --release -p mvvm-bench --bin mvx
target/release/mvx --pairs "${1:-5}" --csv "$out/mvx.csv"

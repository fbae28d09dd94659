#!/usr/bin/env bash
# Draws the figures the README shows from the CSV files of artifact/overhead.sh and
# artifact/ckpt.sh (run those first): artifact/figures/overhead.svg and artifact/figures/ckpt.svg.
#
#   artifact/plots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/artifact
for f in overhead.csv ckpt.csv; do
  [ -f "$out/$f" ] || { echo "plots.sh: $out/$f is missing; run artifact/overhead.sh and artifact/ckpt.sh first" >&2; exit 2; }
done
cargo build --release -p mvvm-bench --bin plot
target/release/plot "$out/overhead.csv" "$out/ckpt.csv" artifact/figures

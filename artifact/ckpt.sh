#!/usr/bin/env bash
# Checkpoint and restore latency and image size against touched memory, mvvm beside CRIU.
#
#   artifact/ckpt.sh [MIB ...]        (default: 1 4 16 64 256 1024)
#
# mvvm: guests/bench/fill.c compiled to wasm fills MIB MiB and is checkpointed at `stop`, then
# restored (bench/src/bin/latency.rs, median of 5). CRIU: the same C program built natively with
# gcc, dumped and restored by Debian's criu (artifact/criu.sh; where criu cannot run, its rows carry
# criu's error instead of numbers). Prints both tables and writes target/artifact/ckpt.csv
# (columns: tool,mib,checkpoint_ms,restore_ms,image_bytes,status), which artifact/plots.sh draws.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
out=target/artifact
mkdir -p "$out"
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 4 16 64 256 1024)
cargo build --release -p mvvm-bench --bin latency
target/release/latency --csv "$out/ckpt-mvvm.csv" "${sizes[@]}"
echo
echo "CRIU (same program, gcc -O2):"
bash artifact/criu.sh "${sizes[@]}" > "$out/ckpt-criu.csv"
cat "$out/ckpt-criu.csv"
{ cat "$out/ckpt-mvvm.csv"; tail -n +2 "$out/ckpt-criu.csv"; } > "$out/ckpt.csv.tmp"
mv "$out/ckpt.csv.tmp" "$out/ckpt.csv"

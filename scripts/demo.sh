#!/usr/bin/env bash
# Builds mvvm and runs the demo: instrument a WAT program, show the .aot it becomes, and run it on
# the host ISA and on the pulley64 interpreter next to the uninstrumented module.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release -p mvvm-aot -p mvvm-runtime
bin=target/release
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
src=test/guests/wat/p.wat
echo "== mvvm-aot --enable-checkpoint --enable-counter-loop-checkpoint --threshold-bits 4 -o p.aot $src"
$bin/mvvm-aot --enable-checkpoint --enable-counter-loop-checkpoint --threshold-bits 4 -o "$out/p.aot" "$src"
echo "== mvvm inspect p.aot"
$bin/mvvm inspect "$out/p.aot"
echo "== uninstrumented (mvvm run -t $src)"
$bin/mvvm run -t "$src" | tee "$out/plain.txt"
for isa in native pulley64; do
  echo "== mvvm run -t p.aot --isa $isa"
  $bin/mvvm run -t "$out/p.aot" --isa "$isa" > "$out/$isa.txt"
  if cmp -s "$out/plain.txt" "$out/$isa.txt"; then
    echo "identical to the uninstrumented module ($(wc -c < "$out/$isa.txt") bytes)"
  else
    echo "DIFFERENT from the uninstrumented module:"; diff "$out/plain.txt" "$out/$isa.txt"; exit 1
  fi
done

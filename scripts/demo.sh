#!/usr/bin/env bash
# Builds mvvm and runs the demo: instrument a WAT program, show the .aot it becomes, run it on the
# host ISA and on the pulley64 interpreter next to the uninstrumented module, then stop it at the 7th
# entry of $mix, show the image, and resume it on the other ISA: the two halves of the output add up
# to the uninterrupted run, byte for byte. (`bash scripts/test.sh` does the same on aarch64 too.)
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
echo "== mvvm checkpoint -t p.aot -f mix -x 7    (native; writes p.ckpt beside p.aot)"
$bin/mvvm checkpoint -t "$out/p.aot" -f mix -x 7 > "$out/before.txt"
echo "stopped after $(wc -l < "$out/before.txt") of $(wc -l < "$out/plain.txt") lines"
echo "== mvvm inspect p.ckpt"
$bin/mvvm inspect "$out/p.ckpt"
echo "== mvvm restore -t p.aot --isa pulley64"
$bin/mvvm restore -t "$out/p.aot" --isa pulley64 > "$out/after.txt"
if cat "$out/before.txt" "$out/after.txt" | cmp -s "$out/plain.txt" -; then
  echo "checkpoint on $(uname -m) + restore on pulley64: identical to the uninterrupted run"
else
  echo "DIFFERENT from the uninterrupted run:"
  cat "$out/before.txt" "$out/after.txt" | diff "$out/plain.txt" -; exit 1
fi

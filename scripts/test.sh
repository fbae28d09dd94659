#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, clippy with warnings as errors, and every test
# (unit, guest programs on both ISAs, checkpoint/resume round trips, images restored on x86_64,
# pulley64 and aarch64 under qemu, the 500-module referee, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --aarch64 --bench
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
# The image tests restore on aarch64 (and checkpoint there) with this build, under qemu-aarch64.
bash scripts/build-aarch64.sh
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --release --workspace 2>&1 | tee "$log" || status=$?
# cargo's last result line belongs to the doc-tests (0 tests); close with the suite's total.
passed=$(grep -oE '^test result: [a-zA-Z]+\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
failed=$(grep -oE '; [0-9]+ failed' "$log" | awk '{s += $2} END {print s + 0}')
echo "mvvm: $passed passed, $failed failed"
exit "$status"

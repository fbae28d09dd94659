#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, clippy with warnings as errors, and every test
# (unit, guest programs on both ISAs, checkpoint/resume round trips, the 500-module referee, CLI).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --release --workspace --all-targets -- -D warnings
# The CLI tests run target/release/mvvm and mvvm-aot: build every binary first (cargo test only
# builds the binaries of packages that have integration tests of their own).
cargo build --release --workspace --bins
cargo test --release --workspace

#!/usr/bin/env bash
# Cross-compiles mvvm for aarch64 to target/aarch64-unknown-linux-gnu/release/mvvm,
# which the tests run under qemu-aarch64. rustup cannot fetch other targets here, so the compiler
# is Debian's rustc-web with its arm64 standard library, linked by gcc-aarch64-linux-gnu;
# scripts/setup.sh installs them. Cargo keeps these artifacts apart from the host build (another
# compiler), so both builds stay incremental in one target directory.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTC=/usr/bin/rustc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
export AR_aarch64_unknown_linux_gnu=aarch64-linux-gnu-ar
cargo build --release -p mvvm-runtime --bin mvvm --target aarch64-unknown-linux-gnu "$@"

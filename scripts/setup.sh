#!/usr/bin/env bash
# Installs what building and testing mvvm needs, idempotently: Debian packages for compiling the C
# guest programs to wasm32-wasi (clang, lld, wasi-libc, the wasm32 compiler runtime). Rust comes
# from rustup (the machine's toolchain, 1.95). Sourced or run by demo.sh and test.sh.
#
# `--aarch64` also installs what the cross-ISA tests need: the arm64 dpkg architecture (added once,
# for Debian's arm64 Rust standard library), Debian's rustc-web with libstd-rust-web-dev:arm64 (rustup
# cannot fetch other targets here), the aarch64 gcc and libc to link, and qemu-user to run the
# aarch64 build of mvvm as the "other machine".
# `--bench` also installs Binaryen (wasm-opt, for the Asyncify baseline) and wrk (HTTP load, for
# artifact/mvx.sh's server rows); artifact/criu.sh installs criu.
# It says what it installs and why before it does; a machine that has everything hears nothing.
set -euo pipefail
packages=(clang lld wasi-libc libclang-rt-dev-wasm32)
cross=""
bench=""
for flag in "$@"; do
  case "$flag" in
    --aarch64)
      cross=1
      packages+=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
        libc6-dev-arm64-cross qemu-user)
      ;;
    --bench) bench=1; packages+=(binaryen wrk) ;;
    *) echo "setup: unknown flag $flag (known: --aarch64 --bench)" >&2; exit 2 ;;
  esac
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ -n "$cross" ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: adding the arm64 dpkg architecture (dpkg --add-architecture arm64), for Debian's arm64 Rust standard library" >&2
  $sudo dpkg --add-architecture arm64
  force_update=1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})) || [ -n "${force_update:-}" ]; then
  if ((${#missing[@]})); then
    echo "setup: installing Debian packages ${missing[*]} (C guests to wasm32-wasi${cross:+, the aarch64 cross build and qemu}${bench:+, Binaryen for the Asyncify baseline and wrk for HTTP load})" >&2
  fi
  $sudo apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust 1.95 with rustup" >&2; exit 1; }

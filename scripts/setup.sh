#!/usr/bin/env bash
# Installs what building and testing mvvm needs, idempotently: Debian packages for compiling the C
# guest programs to wasm32-wasi (clang, lld, wasi-libc, the wasm32 compiler runtime). Rust comes
# from rustup (the machine's toolchain, 1.95). Sourced or run by demo.sh and test.sh.
set -euo pipefail
packages=(clang lld wasi-libc libclang-rt-dev-wasm32)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust 1.95 with rustup" >&2; exit 1; }

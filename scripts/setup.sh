#!/usr/bin/env bash
# Installs what building and testing mvvm needs, idempotently: Debian packages for compiling the C
# guest programs to wasm32-wasi (clang, lld, wasi-libc, the wasm32 compiler runtime). Rust comes
# from rustup (the machine's toolchain, 1.95). Sourced or run by demo.sh and test.sh.
#
# `--aarch64` also installs the aarch64 cross toolchain and qemu (DESIGN §10): Debian's rustc-web
# with its arm64 standard library, the aarch64 gcc and libc, and qemu-user.
# `--bench` also installs Binaryen (wasm-opt, for the Asyncify baseline; artifact/criu.sh installs criu).
set -euo pipefail
packages=(clang lld wasi-libc libclang-rt-dev-wasm32)
cross=0
for flag in "$@"; do
  case "$flag" in
    --aarch64)
      cross=1
      packages+=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
        libc6-dev-arm64-cross qemu-user)
      ;;
    --bench) packages+=(binaryen) ;;
    *) echo "setup: unknown flag $flag (known: --aarch64 --bench)" >&2; exit 2 ;;
  esac
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if ((cross)) && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "setup: enabling the arm64 architecture for libstd-rust-web-dev:arm64" >&2
  $sudo dpkg --add-architecture arm64
  force_update=1
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})) || [ -n "${force_update:-}" ]; then
  if ((${#missing[@]})); then
    echo "setup: installing ${missing[*]}" >&2
  fi
  $sudo apt-get update -qq
  if ((${#missing[@]})); then
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi
command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust 1.95 with rustup" >&2; exit 1; }

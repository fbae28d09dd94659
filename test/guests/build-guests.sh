#!/usr/bin/env bash
# Builds every guest program by hand, with exactly the flags test/build.rs uses.
#
#   test/guests/build-guests.sh [--check] [OUTDIR]
#
# OUTDIR defaults to test/guests/out (git-ignored).
# --check also runs each guest under Node's WASI (run-wasi.mjs) and diffs
# its stdout and exit status against the *.expected files.
#
# The benchmark workloads bench/*.c are built into OUTDIR/bench/ with the same
# recipe; --check runs each at SCALE=1 against bench/<name>.expected.
# Which library a C program is linked with follows its name (c/ and bench/):
#   sqlite_*  the SQLite amalgamation    lua_*   Lua 5.4
#   zlib_*    zlib                       simd*   compiled with -msimd128
#
# Environment (same names as build.rs):
#   MVVM_WASM_CC         C compiler (default: clang)
#   MVVM_WASI_SYSROOT    a WASI sysroot; default: a symlink sysroot made in
#                        OUTDIR/wasi-sysroot from Debian's wasi-libc
#   MVVM_SQLITE_SRC_DIR  dir holding sqlite3.c/sqlite3.h  (default: the
#                        libsqlite3-sys crate in the cargo registry, version
#                        from Cargo.lock)
#   MVVM_LUA_SRC_DIR     dir holding the Lua 5.4 sources (default: the
#                        lua-src crate's lua-5.4.* dir, same lookup)
#   MVVM_ZLIB_SRC_DIR    dir holding the zlib sources (default: the
#                        libz-sys crate's src/zlib dir, same lookup)
#   WAT2WASM             for the .wat guests (default: wat2wasm, optional)
# Debian 12 packages: clang lld wasi-libc libclang-rt-dev-wasm32 (wabt for wat2wasm)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CHECK=0
if [[ "${1:-}" == "--check" ]]; then CHECK=1; shift; fi
OUT="${1:-$HERE/out}"
mkdir -p "$OUT/obj" "$OUT/bench"
OUT="$(cd "$OUT" && pwd)"

CC="${MVVM_WASM_CC:-clang}"
command -v "$CC" >/dev/null || {
  echo "error: C compiler '$CC' not found; on Debian 12: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32" >&2
  exit 1
}

# ---- sysroot: include/ and lib/wasm32-wasi/ only, so no host header leaks in
if [[ -n "${MVVM_WASI_SYSROOT:-}" ]]; then
  SYSROOT="$MVVM_WASI_SYSROOT"
else
  if [[ ! -f /usr/include/wasm32-wasi/stdio.h || ! -f /usr/lib/wasm32-wasi/libc.a ]]; then
    echo "error: wasi-libc not found (/usr/include/wasm32-wasi, /usr/lib/wasm32-wasi);" \
         "on Debian 12: apt-get install clang lld wasi-libc libclang-rt-dev-wasm32" >&2
    exit 1
  fi
  SYSROOT="$OUT/wasi-sysroot"
  mkdir -p "$SYSROOT/lib"
  ln -sfn /usr/include/wasm32-wasi "$SYSROOT/include"
  ln -sfn /usr/lib/wasm32-wasi "$SYSROOT/lib/wasm32-wasi"
fi

# ---- the recipe (keep in sync with test/build.rs)
TARGET_FLAGS=(--target=wasm32-wasi "--sysroot=$SYSROOT")
OPT_FLAGS=(-O2)
OWN_WARN=(-Wall -Wextra)
THIRD_PARTY_WARN=(-w)
LDFLAGS=(-Wl,-z,stack-size=1048576)
SIMD_FLAGS=(-msimd128)
SQLITE_DEFS=(-DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_OMIT_SHARED_CACHE
  -DSQLITE_OMIT_WAL -DSQLITE_TEMP_STORE=3 -DSQLITE_DEFAULT_MEMSTATUS=0 -DLONGDOUBLE_TYPE=double
  -D_WASI_EMULATED_MMAN -D_WASI_EMULATED_GETPID -D_WASI_EMULATED_SIGNAL
  -D_WASI_EMULATED_PROCESS_CLOCKS)
SQLITE_LIBS=(-lwasi-emulated-mman -lwasi-emulated-getpid -lwasi-emulated-signal
  -lwasi-emulated-process-clocks)
LUA_WASI="$HERE/c/lua-wasi"
LUA_DEFS=(-I"$LUA_WASI" -include "$LUA_WASI/lua_wasi.h" -D_WASI_EMULATED_SIGNAL -D_WASI_EMULATED_PROCESS_CLOCKS)
LUA_LIBS=(-lwasi-emulated-signal -lwasi-emulated-process-clocks)
ZLIB_DEFS=(-DHAVE_UNISTD_H -DHAVE_STDARG_H)

# ---- locate a registry crate: name -> its source dir (version from Cargo.lock)
find_crate() {
  local name="$1" lock="" dir="$HERE"
  while [[ "$dir" != "/" ]]; do
    if [[ -f "$dir/Cargo.lock" ]]; then lock="$dir/Cargo.lock"; break; fi
    dir="$(dirname "$dir")"
  done
  local versions=""
  if [[ -n "$lock" ]]; then
    versions="$(awk -v n="$name" '
      /^\[\[package\]\]/ { inpkg = 1; nm = ""; next }
      inpkg && /^name = / { gsub(/"/, "", $3); nm = $3 }
      inpkg && /^version = / && nm == n { gsub(/"/, "", $3); print $3 }' "$lock" | sort -rV)"
  fi
  local home="${CARGO_HOME:-$HOME/.cargo}" v d
  for v in $versions; do
    for d in "$home"/registry/src/*/"$name-$v"; do
      [[ -d "$d" ]] && { echo "$d"; return 0; }
    done
  done
  # not in Cargo.lock yet: newest extracted copy
  for d in $(ls -d "$home"/registry/src/*/"$name"-[0-9]* 2>/dev/null | sort -rV); do
    echo "$d"; return 0
  done
  return 1
}

SQLITE_SRC="${MVVM_SQLITE_SRC_DIR:-}"
if [[ -z "$SQLITE_SRC" ]]; then
  c="$(find_crate libsqlite3-sys)" || { echo "error: libsqlite3-sys sources not found (run cargo fetch, or set MVVM_SQLITE_SRC_DIR)" >&2; exit 1; }
  SQLITE_SRC="$c/sqlite3"
fi
LUA_SRC="${MVVM_LUA_SRC_DIR:-}"
if [[ -z "$LUA_SRC" ]]; then
  c="$(find_crate lua-src)" || { echo "error: lua-src sources not found (run cargo fetch, or set MVVM_LUA_SRC_DIR)" >&2; exit 1; }
  LUA_SRC="$(ls -d "$c"/lua-5.4.* | sort -rV | head -n1)"
fi
ZLIB_SRC="${MVVM_ZLIB_SRC_DIR:-}"
if [[ -z "$ZLIB_SRC" ]]; then
  c="$(find_crate libz-sys)" || { echo "error: libz-sys sources not found (run cargo fetch, or set MVVM_ZLIB_SRC_DIR)" >&2; exit 1; }
  ZLIB_SRC="$c/src/zlib"
fi
echo "cc: $("$CC" --version | head -n1)"
echo "sysroot: $SYSROOT"
echo "sqlite: $SQLITE_SRC"
echo "lua: $LUA_SRC"
echo "zlib: $ZLIB_SRC"

run() { echo "+ $*" | sed "s|$HOME|~|g" >&2; "$@"; }

# ---- third-party objects (sqlite3.c is the slow one: run it in the background)
run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${THIRD_PARTY_WARN[@]}" "${SQLITE_DEFS[@]}" \
  -c "$SQLITE_SRC/sqlite3.c" -o "$OUT/obj/sqlite3.o" &
SQLITE_PID=$!
trap 'kill "$SQLITE_PID" 2>/dev/null || true' EXIT
LUA_OBJS=()
for f in "$LUA_SRC"/*.c; do
  b="$(basename "$f" .c)"
  [[ "$b" == lua || "$b" == luac ]] && continue
  run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${THIRD_PARTY_WARN[@]}" "${LUA_DEFS[@]}" -I"$LUA_SRC" \
    -c "$f" -o "$OUT/obj/lua_$b.o"
  LUA_OBJS+=("$OUT/obj/lua_$b.o")
done
ZLIB_OBJS=()
for f in "$ZLIB_SRC"/*.c; do
  b="$(basename "$f" .c)"
  [[ "$b" == example || "$b" == minigzip ]] && continue # test programs in some zlib trees
  run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${THIRD_PARTY_WARN[@]}" "${ZLIB_DEFS[@]}" \
    -c "$f" -o "$OUT/obj/zlib_$b.o"
  ZLIB_OBJS+=("$OUT/obj/zlib_$b.o")
done

# ---- our C guests and benchmark workloads
# every c/*.c is one guest, every bench/*.c one workload; sqlite_* are linked
# last, once sqlite3.o is done
SQLITE_GUESTS=()
# A program is compiled with -O2 and linked without it: on an optimizing link clang runs
# wasm-opt when binaryen is installed, and wasm-opt drops the name section.
build_c() { # source.c output.wasm
  local f="$1" out="$2" n obj
  n="$(basename "$f" .c)"
  obj="$OUT/obj/program-$(basename "$(dirname "$out")")-$n.o"
  case "$n" in
    sqlite_*) SQLITE_GUESTS+=("$f" "$out"); return ;;
    lua_*) run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${OWN_WARN[@]}" "${LUA_DEFS[@]}" -I"$LUA_SRC" -c "$f" -o "$obj"
      run "$CC" "${TARGET_FLAGS[@]}" "${LDFLAGS[@]}" "$obj" "${LUA_OBJS[@]}" "${LUA_LIBS[@]}" -o "$out" ;;
    zlib_*) run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${OWN_WARN[@]}" "${ZLIB_DEFS[@]}" -I"$ZLIB_SRC" -c "$f" -o "$obj"
      run "$CC" "${TARGET_FLAGS[@]}" "${LDFLAGS[@]}" "$obj" "${ZLIB_OBJS[@]}" -o "$out" ;;
    simd*) run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${OWN_WARN[@]}" "${SIMD_FLAGS[@]}" -c "$f" -o "$obj"
      run "$CC" "${TARGET_FLAGS[@]}" "${LDFLAGS[@]}" "$obj" -o "$out" ;;
    *) run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${OWN_WARN[@]}" -c "$f" -o "$obj"
      run "$CC" "${TARGET_FLAGS[@]}" "${LDFLAGS[@]}" "$obj" -o "$out" ;;
  esac
}
for f in "$HERE"/c/*.c; do build_c "$f" "$OUT/$(basename "$f" .c).wasm"; done
for f in "$HERE"/bench/*.c; do build_c "$f" "$OUT/bench/$(basename "$f" .c).wasm"; done
wait "$SQLITE_PID"
for ((i = 0; i < ${#SQLITE_GUESTS[@]}; i += 2)); do
  f="${SQLITE_GUESTS[i]}" out="${SQLITE_GUESTS[i + 1]}"
  obj="$OUT/obj/program-$(basename "$(dirname "$out")")-$(basename "$f" .c).o"
  run "$CC" "${TARGET_FLAGS[@]}" "${OPT_FLAGS[@]}" "${OWN_WARN[@]}" "${SQLITE_DEFS[@]}" -I"$SQLITE_SRC" -c "$f" -o "$obj"
  run "$CC" "${TARGET_FLAGS[@]}" "${LDFLAGS[@]}" "$obj" "$OUT/obj/sqlite3.o" "${SQLITE_LIBS[@]}" -o "$out"
done

# ---- WAT guests (build.rs uses the `wat` crate instead)
WAT2WASM="${WAT2WASM:-wat2wasm}"
if command -v "$WAT2WASM" >/dev/null; then
  for f in "$HERE"/wat/*.wat; do
    run "$WAT2WASM" --enable-tail-call --debug-names "$f" -o "$OUT/$(basename "$f" .wat).wasm"
  done
else
  echo "note: $WAT2WASM not found, .wat guests not built" >&2
fi

[[ $CHECK == 1 ]] || exit 0

# ---- --check: run under Node's WASI and compare with the .expected files
R=(node --no-warnings "$HERE/run-wasi.mjs")
fails=0
passes=0
check() { # name expected-file expected-status runner-args...
  local name="$1" exp="$2" status="$3"; shift 3
  local got rc=0
  got="$("${R[@]}" "$@" 2>/dev/null)" || rc=$?
  if [[ "$got" == "$(cat "$exp")" && "$rc" == "$status" ]]; then
    echo "ok   $name"; passes=$((passes + 1))
  else
    echo "FAIL $name (status $rc, expected $status)"; fails=$((fails + 1))
  fi
}
for f in "$HERE"/wat/*.wat; do
  n="$(basename "$f" .wat)"
  [[ -f "$OUT/$n.wasm" ]] && check "$n" "$HERE/wat/$n.expected" 0 "$OUT/$n.wasm"
done
[[ -f "$OUT/loops.wasm" ]] && check "loops long" "$HERE/wat/loops.long.expected" 0 "$OUT/loops.wasm" long
for n in compute fnptr simd128 lua_main sqlite_main; do
  check "$n" "$HERE/c/$n.expected" 0 "$OUT/$n.wasm"
done
check "argsenv" "$HERE/c/argsenv.expected" 3 --env MVVM_B=bee --env MVVM_A=ay --env OTHER=x \
  "$OUT/argsenv.wasm" one "two words"
data="$(mktemp -d)"
check "fileio" "$HERE/c/fileio.expected" 0 --dir "$data::/data" "$OUT/fileio.wasm"
if [[ "$(cat "$data/out.txt")" == "$(cat "$HERE/c/fileio.out.txt.expected")" ]]; then echo "ok   fileio out.txt"; passes=$((passes + 1)); else echo "FAIL fileio out.txt"; fails=$((fails + 1)); fi
rm -rf "$data"
data="$(mktemp -d)"
check "sqlite_main file" "$HERE/c/sqlite_main.expected" 0 --dir "$data::/data" "$OUT/sqlite_main.wasm" file
rm -rf "$data"
for f in "$HERE"/bench/*.c; do
  n="$(basename "$f" .c)"
  check "bench/$n" "$HERE/bench/$n.expected" 0 "$OUT/bench/$n.wasm" 1
done
echo "$passes passed, $fails failed"
[[ $fails == 0 ]]

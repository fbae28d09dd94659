#!/usr/bin/env bash
# What a follower costs: a multi-variant pair (native master, native follower, output-lockstep)
# against a single run, side by side in one run.
#
#   artifact/mvx.sh [PAIRS] [SECONDS]   (default 5 alternating single/pair runs per row; 5 s of load)
#
# 1. Compute-bound workloads and per-event costs (bench/src/bin/mvx.rs): wall-time and CPU-time
#    ratios, and the cost of one compared and one replicated event; target/artifact/mvx.csv
#    (columns: workload,single_ms,pair_wall_ratio,pair_cpu_ratio).
# 2. A server: test/guests/c/http_server.c under `mvvm run --tcplisten`, `mvvm mvx` with a native
#    follower and with a pulley64 one, loaded by wrk on loopback (one connection, keep-alive);
#    requests per second and CPU-seconds per request of the mvvm process, in
#    target/artifact/mvx-server.csv (columns: mode,requests_per_s,ratio,cpu_us_per_request).
#
# This machine has 2 cores: the pair's two threads get one each, and wrk shares them too, so CPU
# per request shows what the second variant costs apart from what the core count costs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --bench
out=target/artifact
mkdir -p "$out"
cargo build --release -p mvvm-bench --bin mvx -p mvvm-runtime -p mvvm-aot
target/release/mvx --pairs "${1:-5}" --csv "$out/mvx.csv"

seconds="${2:-5}"
clang --target=wasm32-wasi -O2 -o "$out/http_server.wasm" test/guests/c/http_server.c
target/release/mvvm-aot -q --target x86_64 --target pulley64 -o "$out/http_server.aot" "$out/http_server.wasm"
ticks=$(getconf CLK_TCK)

# Serves under `mvvm ARGS`, loads it with wrk; prints "requests_per_s cpu_us_per_request".
serve_and_load() {
  local port pid report cpu
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  target/release/mvvm "$@" --tcplisten "127.0.0.1:$port" "$out/http_server.aot" >/dev/null &
  pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  report=$(wrk -t1 -c1 -d"${seconds}s" -s artifact/wrk-report.lua "http://127.0.0.1:$port/" | grep '^wrk-report')
  # utime + stime of the mvvm process (fields 14 and 15 of /proc/PID/stat), in clock ticks.
  cpu=$(awk '{print $14 + $15}' "/proc/$pid/stat")
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  read -r _ requests duration errors <<<"$report"
  [ "$errors" -eq 0 ] || { echo "mvx.sh: wrk saw $errors errors" >&2; exit 1; }
  awk -v r="$requests" -v d="$duration" -v c="$cpu" -v t="$ticks" \
    'BEGIN { printf "%.0f %.1f\n", r / d, c / t / r * 1e6 }'
}

echo "mode,requests_per_s,ratio,cpu_us_per_request" >"$out/mvx-server.csv"
single=""
printf '\n| server (%s s of wrk -c1) | requests/s | vs single | CPU µs/request |\n|---|---:|---:|---:|\n' "$seconds"
for mode in single pair pair-pulley64; do
  case "$mode" in
    single) set -- run ;;
    pair) set -- mvx --follower "$out/http_server.aot" ;;
    pair-pulley64) set -- mvx --follower "$out/http_server.aot@pulley64" ;;
  esac
  read -r rps cpu < <(serve_and_load "$@")
  single=${single:-$rps}
  ratio=$(awk -v a="$rps" -v b="$single" 'BEGIN { printf "%.3f", a / b }')
  echo "$mode,$rps,$ratio,$cpu" >>"$out/mvx-server.csv"
  printf '| %s | %s | %s | %s |\n' "$mode" "$rps" "$ratio" "$cpu"
done

#!/usr/bin/env bash
# CRIU's side of the checkpoint/restore latency comparison (mvvm's side: bench/src/bin/latency.rs).
#
#   artifact/criu.sh [MIB ...]        (default: 1 64 256 1024)
#
# test/guests/bench/fill.c, built natively with gcc -O2, fills MIB MiB with the same xorshift64 data as
# latency.rs's program and stops; Debian's criu dumps it and restores it. CSV on stdout:
#
#   tool,mib,checkpoint_ms,restore_ms,image_bytes,status
#
# * checkpoint_ms: `criu dump` (which stops, dumps and kills the process) plus an fsync of every
#   image file (coreutils `sync FILE...`), so that, as for mvvm, it ends with the image synced on
#   disk.
# * restore_ms: `criu restore -d` from reading the image until it returns with the process running
#   again. The script then sends SIGUSR1; the restored program checks a sample of its memory and
#   must print the same sum as before the dump, or the row's status says so.
# * image_bytes: `du -sb` of the image directory (the logs are kept elsewhere).
# * status: `ok`, or why there are no numbers: the first error line of criu's log (the lines for
#   criu's optional iptables/ip6tables probes, "exited, status=N", are skipped), prefixed with
#   `dump:` or `restore:`. The script exits 0 in that case too, so the artifact can quote it.
#
# One run per size (no median). criu runs as root (through sudo when not root); criu is installed
# from Debian if missing. Progress and criu's version go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"

if ! dpkg-query -W -f='${Status}' criu 2>/dev/null | grep -q "install ok installed"; then
  echo "criu.sh: installing criu" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq criu >/dev/null
fi
command -v gcc >/dev/null || { echo "criu.sh: gcc not found (apt-get install gcc)" >&2; exit 1; }
criu_bin="$(command -v criu || $sudo sh -c 'command -v criu')"

sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1 64 256 1024)
for m in "${sizes[@]}"; do
  [[ "$m" =~ ^[1-9][0-9]*$ ]] && [ "$m" -le 4095 ] || { echo "criu.sh: bad size '$m' (MiB, 1..4095)" >&2; exit 2; }
done

work="$(mktemp -d)"
# Kills every process running our fill binary (started, or restored by criu): its path is unique
# to this run.
kill_fills() {
  local p args
  while read -r p args; do
    case "$args" in
      "$work/fill "* | "setsid $work/fill "*) kill -KILL "$p" 2>/dev/null || $sudo kill -KILL "$p" 2>/dev/null || true ;;
    esac
  done < <(ps -e -o pid=,args=)
}
cleanup() {
  kill_fills
  $sudo rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

gcc -O2 -Wall -Wextra -o "$work/fill" test/guests/bench/fill.c

echo "criu.sh: $("$criu_bin" --version | head -n1), kernel $(uname -r)" >&2

now_ns() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }
# Waits until the command succeeds, polling every 0.05 s, for at most $1 seconds.
wait_for() {
  local limit=$1 end
  shift
  end=$(($(date +%s) + limit))
  until "$@"; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.05
  done
}
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
gone() { ! alive "$1"; }
# The first error line of a criu log, without its timestamp, quoted for CSV.
first_error() {
  local line=""
  if $sudo test -f "$1"; then
    line="$($sudo grep 'Error (' "$1" | grep -v 'exited, status=' | head -n1 || true)"
    [ -n "$line" ] || line="$($sudo grep -m1 'Error (' "$1" || true)"
  fi
  line="${line#\(*\) }"
  echo "${line:-no error line in $(basename "$1")}"
}
csv() { local s="$1"; printf '"%s"' "${s//\"/\"\"}"; }
row() { echo "criu,$1,$2,$3,$4,$(csv "$5")"; }

echo "tool,mib,checkpoint_ms,restore_ms,image_bytes,status"
for mib in "${sizes[@]}"; do
  dir="$work/$mib"
  img="$dir/img"
  mkdir -p "$img"
  echo "criu.sh: $mib MiB" >&2

  # In its own session, without a terminal, stdout to a file. The subshell reaps it once criu has
  # killed it (freeing its pid for the restore) and keeps bash's "Killed" notice off stderr.
  (setsid "$work/fill" "$mib" "$dir/ready" </dev/null >"$dir/out" 2>"$dir/err" || exit $?) 2>/dev/null &
  spawn=$!
  if ! wait_for 120 test -s "$dir/ready"; then
    row "$mib" "" "" "" "fill did not get ready: $(head -c 200 "$dir/err")"
    kill_fills
    { wait "$spawn"; } 2>/dev/null || true
    continue
  fi
  pid="$(cat "$dir/ready")"
  before="$(sed -n 's/^ready //p' "$dir/out")"

  t0=$(now_ns)
  if $sudo timeout 600 "$criu_bin" dump -t "$pid" -D "$img" -o "$dir/dump.log" -v4 --shell-job \
    >"$dir/dump.out" 2>&1 && $sudo sync "$img"/*; then
    t1=$(now_ns)
  else
    row "$mib" "" "" "" "dump: $(first_error "$dir/dump.log")"
    kill -KILL "$pid" 2>/dev/null || true
    { wait "$spawn"; } 2>/dev/null || true
    wait_for 10 gone "$pid" || true
    continue
  fi
  ckpt_ms=$(ms "$t0" "$t1")
  image_bytes=$($sudo du -sb "$img" | cut -f1)
  # criu killed it; wait until its pid is free for the restore.
  { wait "$spawn"; } 2>/dev/null || true
  if ! wait_for 10 gone "$pid"; then
    row "$mib" "$ckpt_ms" "" "$image_bytes" "process $pid still there after the dump"
    kill -KILL "$pid" 2>/dev/null || true
    continue
  fi

  t0=$(now_ns)
  if $sudo timeout 600 "$criu_bin" restore -D "$img" -o "$dir/restore.log" -v4 --shell-job -d \
    --pidfile "$dir/restored.pid" >"$dir/restore.out" 2>&1; then
    t1=$(now_ns)
  else
    row "$mib" "$ckpt_ms" "" "$image_bytes" "restore: $(first_error "$dir/restore.log")"
    kill_fills
    continue
  fi
  restore_ms=$(ms "$t0" "$t1")
  rp="$($sudo cat "$dir/restored.pid")"

  # Let it run on: it checks its memory, prints the sum and exits.
  kill -USR1 "$rp" 2>/dev/null || $sudo kill -USR1 "$rp" 2>/dev/null || true
  if wait_for 60 grep -q '^resumed ' "$dir/out"; then
    after="$(sed -n 's/^resumed //p' "$dir/out")"
    if [ "$after" = "$before" ]; then
      status=ok
    else
      status="restored sample differs: $before before, $after after"
    fi
  else
    status="restored process did not finish: $(head -c 200 "$dir/err")"
  fi
  wait_for 10 gone "$rp" || kill -KILL "$rp" 2>/dev/null || $sudo kill -KILL "$rp" 2>/dev/null || true
  row "$mib" "$ckpt_ms" "$restore_ms" "$image_bytes" "$status"
  $sudo rm -rf "$img"
done

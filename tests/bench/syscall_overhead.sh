#!/usr/bin/env bash
# Cost per syscall (issue 16): `dd bs=1` from /dev/zero to /dev/null (two syscalls per byte,
# pinned to one CPU) with nothing attached (A), with the whole mendd --trace and the fs
# sensor's syscall-exit probe in "auto" mode, on standby because no filesystem is at risk (B),
# and with that probe always attached (--fs-enospc-probe always, the default, C).
# Pairs alternate A/B/C to spread the machine's noise; the result is the median of the
# per-pair throughput ratios. Needs root; leaves nothing behind.
#
#   tests/bench/syscall_overhead.sh BUILD_DIR [PAIRS] [BYTES]
set -euo pipefail

build=${1:?usage: syscall_overhead.sh BUILD_DIR [PAIRS] [BYTES]}
pairs=${2:-5}
bytes=${3:-3000000}
mendd="$build/mendd"
work=$(mktemp -d)
mendd_pid=""
cleanup() {
  [ -n "$mendd_pid" ] && kill "$mendd_pid" 2>/dev/null && wait "$mendd_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

rate() { # bytes per second of one dd bs=1 run
  python3 - "$bytes" <<'PY'
import subprocess, sys, time
n = int(sys.argv[1])
t = time.monotonic()
subprocess.run(["taskset", "-c", "0", "dd", "if=/dev/zero", "of=/dev/null", "bs=1",
                f"count={n}", "status=none"], check=True)
print(n / (time.monotonic() - t))
PY
}
start_mendd() { # extra mendd arguments
  "$mendd" --trace --config /dev/null "$@" >/dev/null 2>"$work/mendd.err" &
  mendd_pid=$!
  until grep -q "mendd: tracing" "$work/mendd.err" 2>/dev/null; do sleep 0.05; done
  sleep 0.5 # a few samples: armed or not by now
}
stop_mendd() { kill "$mendd_pid"; wait "$mendd_pid" 2>/dev/null || true; mendd_pid=""; }
median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.3f}")' "$@"; }

base=() rb=() rc=()
for _ in $(seq "$pairs"); do
  a=$(rate)
  start_mendd --fs-enospc-probe auto; b=$(rate); mode=$(grep -o "probe armed.*" "$work/mendd.err" | head -1 || true); stop_mendd
  start_mendd --fs-enospc-probe always; c=$(rate); stop_mendd
  base+=("$a")
  rb+=("$(python3 -c "print($b/$a)")")
  rc+=("$(python3 -c "print($c/$a)")")
done
echo "| dd bs=1 /dev/zero -> /dev/null, 1 CPU | baseline MB/s (median) | mendd, probe auto / baseline | mendd, probe always / baseline |"
echo "|---|---|---|---|"
echo "| $pairs pairs of $bytes bytes | $(python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:])/1e6:.2f}")' "${base[@]}") | $(median "${rb[@]}") | $(median "${rc[@]}") |"
echo "auto-mode pairs: ${rb[*]}"
echo "always pairs: ${rc[*]}"
[ -n "$mode" ] && echo "note: in auto mode the probe was armed ($mode): some filesystem is at risk"
exit 0

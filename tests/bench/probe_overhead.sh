#!/usr/bin/env bash
# Probe cost: fio 4k random reads, and a 70/30 read/write mix, on a RAM-backed loop device,
# with nothing attached (A), with mendd --trace and all its probes attached (B), and with
# libbpf-tools' biolatency attached instead (C). Pairs alternate A/B/C to spread the machine's
# noise; the result is the median of the per-pair IOPS ratios. Also mendd's RSS and CPU, idle
# and under the load. Needs root; removes everything it creates.
#
#   tests/bench/probe_overhead.sh BUILD_DIR [PAIRS] [SECONDS]
#   MEND_BENCH_SENSORS=io ...        attach only some sensors (default: all)
#   MEND_BENCH_WORKLOADS=randread    only some workloads (default: randread randrw)
set -euo pipefail

build=${1:?usage: probe_overhead.sh BUILD_DIR [PAIRS] [SECONDS]}
pairs=${2:-5}
secs=${3:-5}
mendd="$build/mendd"
biolatency=$(command -v biolatency || echo /usr/sbin/biolatency)

work=$(mktemp -d /dev/shm/mend-bench-XXXXXX)
loop=""
mendd_pid=""
peer_pid=""
cleanup() {
  [ -n "$mendd_pid" ] && kill "$mendd_pid" 2>/dev/null && wait "$mendd_pid" 2>/dev/null || true
  [ -n "$peer_pid" ] && kill "$peer_pid" 2>/dev/null && wait "$peer_pid" 2>/dev/null || true
  [ -n "$loop" ] && losetup -d "$loop" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

truncate -s 1G "$work/disk.img"
loop=$(losetup -f --show --direct-io=on "$work/disk.img")
# Lay the data down once so reads hit allocated blocks.
dd if=/dev/zero of="$loop" bs=1M count=1024 oflag=direct status=none

fio_iops() { # rw
  fio --name=bench --filename="$loop" --rw="$1" --rwmixread=70 --bs=4k --direct=1 \
    --ioengine=libaio --iodepth=16 --runtime="$secs" --time_based --cpus_allowed=1 \
    --output-format=json |
    python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]; print(j["read"]["iops"]+j["write"]["iops"])'
}

start_mendd() {
  "$mendd" --trace --config /dev/null --sensors "${MEND_BENCH_SENSORS:-oom,io,fs,psi,units}" \
    >/dev/null 2>"$work/mendd.err" &
  mendd_pid=$!
  until grep -q "mendd: tracing" "$work/mendd.err" 2>/dev/null; do sleep 0.05; done
}
stop_mendd() { kill "$mendd_pid"; wait "$mendd_pid" 2>/dev/null || true; mendd_pid=""; }
start_peer() {
  "$biolatency" 3600 >/dev/null 2>&1 &
  peer_pid=$!
  sleep 1.5 # attach time
}
stop_peer() { kill -INT "$peer_pid"; wait "$peer_pid" 2>/dev/null || true; peer_pid=""; }

rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.4f}")' "$@"; }

echo "| workload | baseline IOPS (median) | mend attached / baseline | biolatency attached / baseline |"
echo "|---|---|---|---|"
for rw in ${MEND_BENCH_WORKLOADS:-randread randrw}; do
  base=() rb=() rc=()
  for _ in $(seq "$pairs"); do
    a=$(fio_iops "$rw")
    start_mendd; b=$(fio_iops "$rw"); stop_mendd
    start_peer; c=$(fio_iops "$rw"); stop_peer
    base+=("$a")
    rb+=("$(python3 -c "print($b/$a)")")
    rc+=("$(python3 -c "print($c/$a)")")
  done
  echo "| 4k $rw, QD16 | $(median "${base[@]}") | $(median "${rb[@]}") | $(median "${rc[@]}") |"
done

# mendd's own footprint.
start_mendd
sleep 3
t0=$(cpu_ticks "$mendd_pid"); sleep 5; t1=$(cpu_ticks "$mendd_pid")
idle_rss=$(rss_kb "$mendd_pid")
hz=$(getconf CLK_TCK)
idle_cpu=$(python3 -c "print(f'{100*($t1-$t0)/$hz/5:.2f}')")
t0=$(cpu_ticks "$mendd_pid")
fio_iops randrw >/dev/null
t1=$(cpu_ticks "$mendd_pid")
load_rss=$(rss_kb "$mendd_pid")
load_cpu=$(python3 -c "print(f'{100*($t1-$t0)/$hz/$secs:.2f}')")
stop_mendd
echo
echo "| mendd --trace | RSS | CPU (% of one core) |"
echo "|---|---|---|"
echo "| idle | $((idle_rss / 1024)).$(((idle_rss % 1024) * 10 / 1024)) MiB | $idle_cpu |"
echo "| under 4k randrw fio | $((load_rss / 1024)).$(((load_rss % 1024) * 10 / 1024)) MiB | $load_cpu |"

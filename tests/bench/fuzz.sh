#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for a while and prints, per target, the inputs
# executed, the coverage reached (edges, features), the corpus size and the crashes found.
#
#   tests/bench/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]   default 600 s each, every target
#
# Builds build-fuzz/ with clang-14 (libFuzzer, ASan, UBSan) if needed. Inputs it finds go to
# build-fuzz/fuzz-run/<target>/ (not the seed corpus); crashes to build-fuzz/fuzz-run/crash-*.
set -euo pipefail
case "${1:-}" in
-h | --help)
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
  ;;
esac
secs=${1:-600}
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: SECONDS must be a whole number" >&2; exit 2; }
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(event_json control_request agent_config policy intent_journal bpf_records)
root=$(cd "$(dirname "$0")/../.." && pwd)
for t in "${targets[@]}"; do
  [ -f "$root/tests/fuzz/fuzz_$t.cpp" ] || { echo "fuzz.sh: no target $t" >&2; exit 2; }
done
build=$root/build-fuzz
if [ ! -x "$build/tests/fuzz/fuzz_event_json" ]; then
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DMEND_FUZZ=ON >/dev/null
  cmake --build "$build" -j "$(nproc)"
fi
run=$build/fuzz-run
mkdir -p "$run"
printf '%-16s %12s %8s %8s %8s %8s\n' target executions edges features corpus crashes
for t in "${targets[@]}"; do
  mkdir -p "$run/$t"
  log=$run/$t.log
  "$build/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=8192 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$run/crash-$t-" "$run/$t" \
    "$root/tests/fuzz/corpus/$t" >"$log" 2>&1 || true
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  crashes=$(find "$run" -maxdepth 1 -name "crash-$t-*" | wc -l)
  printf '%-16s %12s %8s %8s %8s %8s\n' "$t" "${execs:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" \
    "$crashes"
done

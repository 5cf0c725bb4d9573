#!/usr/bin/env bash
# Configures a fresh build, builds, and runs the whole suite with ctest (tiers labelled unit,
# privileged, e2e), the libFuzzer targets for a bounded number of inputs each (a clang build),
# then the unit and privileged tiers again under ASan/UBSan.
#
#   scripts/test.sh                 everything (privileged tiers skip unless root)
#   MEND_REQUIRE_PRIVILEGED=1 ...   a privileged test that would skip fails instead (CI)
#   MEND_TEST_LABEL=unit ...        one tier only
#   MEND_SKIP_SANITIZE=1 ...        skip the sanitizer pass
#   MEND_SKIP_FUZZ=1 ...            skip the fuzz targets (clang-14 build, bounded runs)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)
label=${MEND_TEST_LABEL:-}

build_and_test() {
  local dir=$1
  shift
  rm -rf "$dir"
  # -g1 (line tables: file:line in backtraces and sanitizer reports) instead of full debug
  # information builds the suite about a third faster.
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG" \
    "$@" >"$dir.configure.log" 2>&1 ||
    { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j "$jobs"
  local args=(--test-dir "$dir" --output-on-failure --parallel "$jobs")
  [ -n "$label" ] && args+=(-L "$label")
  ctest "${args[@]}"
}

echo "== build and test ($root/build-test)"
build_and_test "$root/build-test"

if [ "${MEND_SKIP_FUZZ:-0}" != 1 ] && { [ -z "$label" ] || [ "$label" = fuzz ]; }; then
  echo "== fuzz targets, a bounded number of inputs each ($root/build-fuzz)"
  # libFuzzer comes with clang-14, so these have a clang build of their own (ASan, UBSan).
  rm -rf "$root/build-fuzz"
  CC=clang-14 CXX=clang++-14 cmake -S "$root" -B "$root/build-fuzz" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DMEND_FUZZ=ON >"$root/build-fuzz.configure.log" 2>&1 ||
    { cat "$root/build-fuzz.configure.log"; exit 1; }
  cmake --build "$root/build-fuzz" -j "$jobs"
  ctest --test-dir "$root/build-fuzz" --output-on-failure --parallel "$jobs" -L fuzz
fi

if [ "${MEND_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan/UBSan build and test ($root/build-asan)"
  # Benchmarks are not run here; leaks from libbpf's one-time feature probes are not ours.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    build_and_test "$root/build-asan" -DMEND_SANITIZE=ON -DMEND_BUILD_BENCH=OFF
fi

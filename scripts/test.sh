#!/usr/bin/env bash
# Configures a fresh build, builds, and runs the whole suite with ctest (tiers labelled unit,
# privileged, e2e), then the unit and privileged tiers again under ASan/UBSan.
#
#   scripts/test.sh                 everything (privileged tiers skip unless root)
#   MEND_REQUIRE_PRIVILEGED=1 ...   a privileged test that would skip fails instead (CI)
#   MEND_TEST_LABEL=unit ...        one tier only
#   MEND_SKIP_SANITIZE=1 ...        skip the sanitizer pass
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

if [ "${MEND_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== ASan/UBSan build and test ($root/build-asan)"
  # Benchmarks are not run here; leaks from libbpf's one-time feature probes are not ours.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    build_and_test "$root/build-asan" -DMEND_SANITIZE=ON -DMEND_BUILD_BENCH=OFF
fi

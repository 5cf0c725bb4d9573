#!/bin/bash
# The whole loop in under a minute (as root): builds mend, starts a real systemd user manager
# and journald, runs mendd against a unit that OOM-loops, and shows the incident, the
# explanation, the fix and the journald records. Leaves the machine as it was.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $EUID -ne 0 ]]; then
  echo "demo: run as root (it loads eBPF programs and drives a real systemd): sudo $0" >&2
  exit 1
fi
build=build-demo
if [[ ! -x $build/tests/mend_demo ]]; then
  echo "== building (once; scripts/setup.sh installs what it needs)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMEND_BUILD_TESTS=ON >/dev/null
  cmake --build "$build" -j"$(nproc)" --target mend_demo >/dev/null
fi
exec "$build/tests/mend_demo"

#!/usr/bin/env bash
# Builds the core's C++ unit tests under ThreadSanitizer and runs the concurrent ones (packet
# threads on a ShardedDataplane while the control path changes it). Any report fails the run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/build/tsan"
mkdir -p "$build"
{ cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSVCPLANE_TSAN=ON &&
  cmake --build "$build" --target svcplane_tests -j"$(nproc)"; } >"$build/build.log" 2>&1 ||
  { tail -40 "$build/build.log"; echo "0 passed, 1 failed"; exit 1; }
TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:second_deadlock_stack=1 "$build/svcplane_tests" "${1:-sharded:}"

#!/usr/bin/env bash
# Builds and runs the core's C++ unit tests under AddressSanitizer and UndefinedBehaviorSanitizer.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/build/sanitize"
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DSVCPLANE_SANITIZE=ON >/dev/null
cmake --build "$build" -j"$(nproc)" >/dev/null
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$build/svcplane_tests" "$@"

#!/usr/bin/env bash
# Builds the core's C++ unit tests and the C ABI tests under ThreadSanitizer and runs the
# concurrent ones: packet threads on a ShardedDataplane (C++) and on a sharded C ABI handle
# while the control path changes it, and the PacketPool the Node addon fans processPackets
# out on (test_packet_pool.cc: its cases are named "sharded: packet pool ..." so the default
# filter takes them). A race report aborts the run (non-zero exit).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/build/tsan"
mkdir -p "$build"
{ cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSVCPLANE_TSAN=ON &&
  cmake --build "$build" --target svcplane_tests svcplane_capi_tests -j"$(nproc)"; } >"$build/build.log" 2>&1 ||
  { tail -40 "$build/build.log"; echo "0 passed, 1 failed"; exit 1; }
export TSAN_OPTIONS=halt_on_error=1:abort_on_error=1:second_deadlock_stack=1
"$build/svcplane_tests" "${1:-sharded:}" | tee "$build/cpp.out"
"$build/svcplane_capi_tests" | tee "$build/capi.out"
# One summary line for CI: the C++ cases plus the C ABI program as one more case.
read -r p f < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' "$build/cpp.out" | tail -1)
if grep -qE '^[0-9]+ passed, 0 failed$' "$build/capi.out"; then p=$((p + 1)); else f=$((f + 1)); fi
echo "$p passed, $f failed"
[ "$f" = 0 ]

#!/usr/bin/env bash
# Builds the packet-path fuzzer with clang (libFuzzer + ASan + UBSan) and runs it for SECONDS
# (default 60) from the seed corpus. A crash leaves its input in native/build/fuzz/.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
build="$here/build/fuzz"
command -v clang++ >/dev/null || { echo "clang++ is not installed (apt-get install clang)"; exit 2; }
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ -DSVCPLANE_FUZZ=ON -DSVCPLANE_TESTS=OFF >/dev/null
cmake --build "$build" --target fuzz_packet -j"$(nproc)" >/dev/null
work="$build/corpus"
mkdir -p "$work"
cd "$build"
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$build/fuzz_packet" -max_total_time="$seconds" -max_len=2048 \
  -print_final_stats=1 "$work" "$here/fuzz/corpus"

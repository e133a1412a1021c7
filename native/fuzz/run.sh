#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang (libFuzzer + ASan + UBSan) and runs each for
# SECONDS (default 60) from its seed corpus:
#   bash native/fuzz/run.sh [SECONDS] [HARNESS...]     HARNESS: packet, batch, capi, handoff (default: all)
# Harnesses run one after another; the exit status is non-zero if any of them found a crash,
# a leak, a sanitizer report or a broken invariant. A finding leaves its input in
# native/build/fuzz/artifacts/ (reproduce: native/build/fuzz/fuzz_<harness> <file>).
# New coverage goes to native/build/fuzz/corpus-<harness>/ (not committed; the seeds are).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-60}
shift || true
harnesses=("$@")
[ ${#harnesses[@]} -eq 0 ] && harnesses=(packet batch capi handoff)
build="$here/build/fuzz"
command -v clang++ >/dev/null || { echo "clang++ is not installed (apt-get install clang libclang-rt-14-dev)"; exit 2; }

targets=()
for h in "${harnesses[@]}"; do
  case "$h" in
    packet|batch|capi|handoff) targets+=("fuzz_$h") ;;
    *) echo "unknown harness '$h' (packet, batch, capi, handoff)"; exit 2 ;;
  esac
done
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ \
  -DSVCPLANE_FUZZ=ON -DSVCPLANE_TESTS=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}" -j"$(nproc)" >/dev/null

# Seed corpora (committed): fuzz_packet's frames in corpus/, the others in corpus-<harness>/.
seeds() {
  case "$1" in
    packet) echo "$here/fuzz/corpus" ;;
    *) echo "$here/fuzz/corpus-$1" ;;
  esac
}
# Largest input per harness: a frame; a program of operations; a C ABI call sequence; a blob
# or edits of one.
maxlen() {
  case "$1" in
    packet) echo 2048 ;;
    batch) echo 4096 ;;
    capi) echo 4096 ;;
    handoff) echo 2048 ;;
  esac
}

status=0
mkdir -p "$build/artifacts"
for h in "${harnesses[@]}"; do
  work="$build/corpus-$h"
  [ "$h" = packet ] && [ -d "$build/corpus" ] && [ ! -e "$work" ] && mv "$build/corpus" "$work"
  mkdir -p "$work"
  echo "=== fuzz_$h: ${seconds}s"
  if ! (cd "$build" && ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$build/fuzz_$h" -max_total_time="$seconds" -max_len="$(maxlen "$h")" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/$h-" "$work" "$(seeds "$h")"); then
    echo "fuzz_$h: FINDING (input in $build/artifacts/)"
    status=1
  fi
done
exit $status

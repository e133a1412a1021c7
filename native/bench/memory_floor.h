// The memory floor of this machine: the cost of one random cache-line read in a table too big
// for any cache, when reads are independent of each other (as a batched lookup's are), so the
// CPU keeps as many in flight as it can. No lookup structure that needs at least one miss per
// operation can beat it; the benchmark reports the hot paths as multiples of it.
#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "core/table_memory.h"

namespace svcplane::bench {

struct alignas(64) Line {
  uint64_t w[8];
};

class MemoryFloor {
 public:
  // A table of `bytes` (rounded up to whole lines), every line written once so it is resident.
  explicit MemoryFloor(size_t bytes) : lines_(bytes / 64 ? bytes / 64 : 1), table_(lines_) {
    for (size_t i = 0; i < lines_; ++i) table_[i].w[0] = i;
  }

  size_t bytes() const { return lines_ * 64; }

  // ns per read over `reads` reads at addresses from an in-register generator (xorshift64*),
  // so no index array competes for bandwidth and no read waits for another.
  double measure(uint64_t reads, uint64_t seed) {
    uint64_t x = seed | 1, sum = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < reads; ++i) {
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
      // Multiply-shift range reduction: a division here would cost as much as the read.
      sum += table_[size_t((__uint128_t)(x * 0x2545f4914f6cdd1dull) * lines_ >> 64)].w[0];
    }
    auto t1 = std::chrono::steady_clock::now();
    sink_ += sum;
    return double(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) / double(reads);
  }

  uint64_t sink() const { return sink_; }

 private:
  size_t lines_;
  TableArray<Line> table_;
  uint64_t sink_ = 0;
};

}  // namespace svcplane::bench

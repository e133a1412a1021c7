// A duration or timestamp in 32 bits, for fields a conntrack hit never reads: 30 bits of count
// and 2 of unit (ns, µs, ms, s), in the finest unit that holds the value. Exact for anything
// under a second and for whole milliseconds up to 12 days (every default timeout); coarser
// values keep their leading 30 bits (relative error under 1e-6), and beyond 34 years it
// saturates.
#pragma once
#include <cstdint>

namespace svcplane {

constexpr uint64_t kPackedUnitNs[4] = {1, 1000, 1000000, 1000000000};
constexpr uint32_t kPackedCountBits = 30;
constexpr uint64_t kPackedCountLimit = uint64_t(1) << kPackedCountBits;

inline uint32_t packDuration(uint64_t ns) {
  for (uint32_t u = 0; u < 4; ++u) {
    const uint64_t count = ns / kPackedUnitNs[u];
    if (count < kPackedCountLimit) return u << kPackedCountBits | uint32_t(count);
  }
  return 3u << kPackedCountBits | uint32_t(kPackedCountLimit - 1);
}

inline uint64_t unpackDuration(uint32_t v) {
  return uint64_t(v & uint32_t(kPackedCountLimit - 1)) * kPackedUnitNs[v >> kPackedCountBits];
}

}  // namespace svcplane

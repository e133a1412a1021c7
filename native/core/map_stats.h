// Counters every map keeps, like the per-map statistics bpftool and Cilium's metrics show.
#pragma once
#include <cstdint>

namespace svcplane {

enum class FullPolicy : uint8_t { EvictOldest = 0, Refuse = 1 };

struct MapStats {
  uint64_t hits = 0;
  uint64_t misses = 0;
  uint64_t inserts = 0;
  uint64_t updates = 0;
  uint64_t deletes = 0;
  uint64_t evictions = 0;
  uint64_t refusals = 0;
  uint64_t expirations = 0;
};

}  // namespace svcplane

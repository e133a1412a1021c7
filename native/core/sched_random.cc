// random: what iptables' `statistic --mode random` chain does, generalised to weights. Each
// backend is chosen with probability weight / sum(weights), using the caller's random bits.
#include <algorithm>

#include "sched_impl.h"

namespace svcplane::sched {
namespace {

// Maps 64 uniform bits onto [0, n) by the high half of a 128-bit product (Lemire): no
// division, and the bias is at most n / 2^64.
inline uint64_t scale(uint64_t random, uint64_t n) { return uint64_t((__uint128_t)random * n >> 64); }

class RandomScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    cumulative_.clear();
    cumulative_.reserve(backends.size());
    uint64_t sum = 0;
    uniform_ = true;
    for (const SchedBackend& b : backends) {
      sum += b.weight;
      cumulative_.push_back(sum);
      uniform_ = uniform_ && b.weight == backends[0].weight;
    }
  }

  int32_t pick(const PickInput& in) override { return predict(in); }
  uint8_t inputs() const override { return kPickRandom; }

  int32_t predict(const PickInput& in) const override {
    const size_t n = cumulative_.size();
    if (n == 0) return -1;
    // Equal weights, the common Kubernetes case: one multiply, no search.
    if (uniform_) return int32_t(scale(in.random, n));
    // Otherwise the first backend whose cumulative weight exceeds a point in [0, total):
    // O(log n), and exact in the weights (no alias-table rounding).
    const uint64_t point = scale(in.random, cumulative_.back());
    auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), point);
    return int32_t(it - cumulative_.begin());
  }

 private:
  std::vector<uint64_t> cumulative_;  // cumulative_[i] = weight[0] + ... + weight[i]
  bool uniform_ = true;
};

}  // namespace

std::unique_ptr<Scheduler> makeRandom() { return std::make_unique<RandomScheduler>(); }

}  // namespace svcplane::sched

// maglev: consistent hashing by Google's Maglev table (Eisenbud et al., NSDI'16, section 3.4),
// with Cilium's weighted turns. Every instance given the same backend set and seed builds the
// same table, so a flow picks the same backend on every node and after a failover; removing a
// backend moves little more than that backend's own slots.
#include <algorithm>

#include "sched_impl.h"

namespace svcplane::sched {
namespace {

constexpr uint32_t kEmpty = 0xffffffffu;

class MaglevScheduler final : public Scheduler {
 public:
  explicit MaglevScheduler(const SchedulerConfig& cfg) : m_(cfg.maglevTableSize), seed_(cfg.maglevSeed) {}

  void rebuild(std::span<const SchedBackend> backends) override {
    const size_t n = backends.size();
    if (n == 0) {
      table_.clear();
      toInput_.clear();
      return;
    }
    // The paper leaves the order open, but it decides who gets the extra slots and the turn
    // order: sort canonically so the caller's order cannot change the table.
    toInput_ = canonicalOrder(backends);

    // Each backend's preference list is the permutation offset, offset+skip, ... (mod M); M
    // prime makes it visit every slot. Walk it incrementally instead of storing N x M.
    std::vector<uint32_t> cursor(n), skip(n);
    unsigned __int128 weightSum = 0;
    for (size_t i = 0; i < n; ++i) {
      const SchedBackend& b = backends[toInput_[i]];
      maglevOffsetSkip(b.addr, b.port, seed_, m_, &cursor[i], &skip[i]);
      weightSum += b.weight;
    }

    table_.assign(m_, kEmpty);
    std::vector<uint32_t> turns(n, 0);
    for (uint64_t filled = 0; filled < m_; ++filled) {
      // Weighted turns (Cilium's scheme, after Envoy): the round-robin turn passes over a
      // backend that already has its share of the slots filled so far, i.e. while
      // turns*sum(w) > (filled+1)*w. Some backend always qualifies, since the shares add up
      // to more than the turns taken; with equal weights nobody is ever passed over and this
      // is exactly the paper's unweighted loop.
      size_t i = filled % n;
      while ((unsigned __int128)turns[i] * weightSum > (unsigned __int128)(filled + 1) * backends[toInput_[i]].weight)
        i = (i + 1) % n;
      ++turns[i];
      // Next preferred slot not already taken; exists because the table is not yet full.
      uint32_t c = cursor[i];
      while (table_[c] != kEmpty) c = advance(c, skip[i]);
      table_[c] = uint32_t(i);
      cursor[i] = advance(c, skip[i]);
    }
  }

  int32_t pick(const PickInput& in) override { return predict(in); }
  uint8_t inputs() const override { return kPickFlowHash; }

  int32_t predict(const PickInput& in) const override {
    if (table_.empty()) return -1;
    return int32_t(toInput_[table_[in.flowHash % m_]]);
  }

  // Positions in the canonical order, so tables of two instances compare directly.
  std::span<const uint32_t> table() const override { return table_; }

 private:
  uint32_t advance(uint32_t c, uint32_t skip) const {
    uint64_t next = uint64_t(c) + skip;  // 64-bit: c + skip may exceed 2^32 for large M
    return uint32_t(next >= m_ ? next - m_ : next);
  }

  uint32_t m_;
  uint64_t seed_;
  std::vector<uint32_t> table_;    // slot -> position in canonical order
  std::vector<uint32_t> toInput_;  // position in canonical order -> index given to rebuild
};

}  // namespace

std::unique_ptr<Scheduler> makeMaglev(const SchedulerConfig& cfg) { return std::make_unique<MaglevScheduler>(cfg); }

}  // namespace svcplane::sched

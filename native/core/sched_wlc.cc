// wlc: IPVS weighted least connection (ip_vs_wlc.c). A new flow goes to the backend with the
// smallest overhead / weight; the first in list order wins a tie. Overhead is *activeConns, as
// in lc (we keep no inactive count).
#include "sched_impl.h"

namespace svcplane::sched {
namespace {

class WeightedLeastConnScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    entries_.resize(backends.size());
    for (size_t i = 0; i < backends.size(); ++i) entries_[i] = {backends[i].activeConns, backends[i].weight};
  }

  uint8_t inputs() const override { return 0; }
  int32_t pick(const PickInput&) override {
    if (entries_.empty()) return -1;
    size_t least = 0;
    uint64_t leastOverhead = loadConns(entries_[0].conns);
    for (size_t i = 1; i < entries_.size(); ++i) {
      const uint64_t overhead = loadConns(entries_[i].conns);
      // IPVS compares loh/lw > doh/dw by cross multiplication: no division, exact. Both
      // factors are 32-bit, so the 64-bit products cannot overflow.
      if (leastOverhead * entries_[i].weight > overhead * entries_[least].weight) {
        least = i;
        leastOverhead = overhead;
      }
    }
    return int32_t(least);
  }

 private:
  struct Entry {
    const uint32_t* conns;  // live counter, read at every pick
    uint32_t weight;
  };
  std::vector<Entry> entries_;
};

}  // namespace

std::unique_ptr<Scheduler> makeWeightedLeastConn() { return std::make_unique<WeightedLeastConnScheduler>(); }

}  // namespace svcplane::sched

// lc: IPVS least connection (ip_vs_lc.c). A new flow goes to the backend with the smallest
// overhead; the first in list order wins a tie, since IPVS only replaces on strictly less.
//
// IPVS's overhead is activeconns * 256 + inactconns (ip_vs_dest_conn_overhead). Our conntrack
// keeps one live count per backend and no inactive (TIME_WAIT / half-closed) count, so the
// overhead here is *activeConns alone; the ordering matches IPVS's whenever inactive counts
// are equal.
#include "sched_impl.h"

namespace svcplane::sched {
namespace {

class LeastConnScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    conns_.resize(backends.size());
    for (size_t i = 0; i < backends.size(); ++i) conns_[i] = backends[i].activeConns;
  }

  uint8_t inputs() const override { return 0; }
  int32_t pick(const PickInput&) override {
    int32_t least = -1;
    uint32_t leastOverhead = 0;
    for (size_t i = 0; i < conns_.size(); ++i) {
      const uint32_t overhead = loadConns(conns_[i]);
      if (least < 0 || overhead < leastOverhead) {
        least = int32_t(i);
        leastOverhead = overhead;
      }
    }
    return least;
  }

 private:
  std::vector<const uint32_t*> conns_;  // live counters, read at every pick
};

}  // namespace

std::unique_ptr<Scheduler> makeLeastConn() { return std::make_unique<LeastConnScheduler>(); }

}  // namespace svcplane::sched

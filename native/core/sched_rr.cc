// rr: IPVS round robin (ip_vs_rr.c). Backends take new flows in list order, one each, forever.
// Weights are ignored, as in IPVS (every backend given to rebuild is eligible).
//
// pick() advances a cursor, so one instance must not be picked from by two threads at once
// (IPVS holds svc->sched_lock); give each worker its own instance or serialise.
#include <algorithm>
#include <utility>

#include "sched_impl.h"

namespace svcplane::sched {
namespace {

class RoundRobinScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    std::vector<uint32_t> ids(backends.size());
    for (size_t i = 0; i < backends.size(); ++i) ids[i] = backends[i].backendId;
    last_ = carryPosition(ids);
    ids_ = std::move(ids);
  }

  uint8_t inputs() const override { return 0; }
  int32_t pick(const PickInput&) override {
    const int32_t n = int32_t(ids_.size());
    if (n == 0) return -1;
    last_ = last_ + 1 >= n ? 0 : last_ + 1;
    return last_;
  }

 private:
  // The service's backend set is rebuilt on every endpoint change; restarting at the head each
  // time would hand the first backends more than their share during a rollout. IPVS keeps its
  // place instead: it continues after the last backend picked, and when that one is deleted it
  // steps back to its predecessor (ip_vs_rr_del_dest), so the next pick is the deleted one's
  // successor. Do the same by backend id across the old and new lists.
  int32_t carryPosition(const std::vector<uint32_t>& newIds) const {
    if (last_ < 0 || newIds.empty()) return -1;
    std::vector<std::pair<uint32_t, uint32_t>> index(newIds.size());  // (id, new position)
    for (size_t i = 0; i < newIds.size(); ++i) index[i] = {newIds[i], uint32_t(i)};
    std::sort(index.begin(), index.end());
    for (int32_t old = last_; old >= 0; --old) {
      auto it = std::lower_bound(index.begin(), index.end(), std::make_pair(ids_[old], 0u));
      if (it != index.end() && it->first == ids_[old]) return int32_t(it->second);
    }
    return -1;  // nothing before it survived: start again at the head
  }

  std::vector<uint32_t> ids_;  // backend ids in the order given to rebuild
  int32_t last_ = -1;          // index of the last backend picked; -1 = list head
};

}  // namespace

std::unique_ptr<Scheduler> makeRoundRobin() { return std::make_unique<RoundRobinScheduler>(); }

}  // namespace svcplane::sched

// wrr: IPVS weighted round robin (ip_vs_wrr.c). The list is swept repeatedly with a current
// weight cw that starts at the maximum weight and drops by the gcd of the weights after each
// sweep; a sweep takes every backend whose weight is >= cw. Over one cycle (max/gcd sweeps) a
// backend of weight w is taken w/gcd times, heavy backends interleaved with light ones
// (weights 4,3,2: A A B A B C A B C).
//
// pick() advances (cursor, cw), so one instance must not be picked from by two threads at
// once (IPVS holds svc->sched_lock); give each worker its own instance or serialise.
#include <algorithm>
#include <numeric>

#include "sched_impl.h"

namespace svcplane::sched {
namespace {

class WeightedRoundRobinScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    weights_.resize(backends.size());
    int64_t gcd = 0, max = 0;
    for (size_t i = 0; i < backends.size(); ++i) {
      weights_[i] = backends[i].weight;
      gcd = std::gcd(gcd, int64_t(weights_[i]));
      max = std::max(max, int64_t(weights_[i]));
    }
    // ip_vs_wrr_dest_changed. The max is lowered by gcd-1 so that cw's steps land on 1 at the
    // end of the cycle whatever the gcd (the steps are mw, mw-gcd, ..., 1).
    cursor_ = -1;
    di_ = gcd ? gcd : 1;
    mw_ = max - (di_ - 1);
    // Keep cw across changes so a weight update does not restart the cycle, but bring it back
    // into range; cw == 0 means "never started" (IPVS's init and the first add land here).
    if (cw_ > mw_ || cw_ == 0)
      cw_ = mw_;
    else if (di_ > 1)
      cw_ = (cw_ / di_) * di_ + 1;
  }

  uint8_t inputs() const override { return 0; }
  int32_t pick(const PickInput&) override {
    const int32_t n = int32_t(weights_.size());
    if (n == 0) return -1;
    // ip_vs_wrr_schedule without its overload handling: every backend here is available, and a
    // backend of the maximum weight qualifies at every cw, so this ends within two sweeps.
    int32_t i = cursor_;
    for (;;) {
      if (++i == n) {
        i = -1;  // back at the list head: next sweep, at a lower weight
        cw_ -= di_;
        if (cw_ <= 0) cw_ = mw_;
        continue;
      }
      if (int64_t(weights_[i]) >= cw_) break;
    }
    cursor_ = i;
    return i;
  }

 private:
  std::vector<uint32_t> weights_;
  int32_t cursor_ = -1;  // index of the last backend picked; -1 = list head (mark->cl)
  int64_t cw_ = 0;       // current weight (mark->cw)
  int64_t mw_ = 0;       // max weight - (gcd - 1) (mark->mw)
  int64_t di_ = 1;       // gcd of the weights (mark->di)
};

}  // namespace

std::unique_ptr<Scheduler> makeWeightedRoundRobin() { return std::make_unique<WeightedRoundRobinScheduler>(); }

}  // namespace svcplane::sched

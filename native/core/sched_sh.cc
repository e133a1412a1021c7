// sh: IPVS source hashing (ip_vs_sh.c). A fixed 256-bucket table is filled round-robin over
// the backends, each taking `weight` consecutive buckets per turn (ip_vs_sh_reassign); a flow
// goes to the bucket of its source address hash, so one client always reaches one backend
// while the set is unchanged.
//
// As in IPVS, weights are bucket counts, not ratios: if they add up to more than 256 the
// backends late in the order get fewer buckets (or none), and past 256 backends the rest get
// none. Unlike IPVS the walk is in canonical (addr, port) order, not insertion order, so every
// instance given the same set builds the same table.
#include "sched_impl.h"

namespace svcplane::sched {
namespace {

class SourceHashScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    toInput_ = canonicalOrder(backends);
    if (!toInput_.empty()) fillBuckets(backends, toInput_, /*weighted=*/true, buckets_);
  }

  int32_t pick(const PickInput& in) override {
    if (toInput_.empty()) return -1;
    // srcHash is already keyed with the shared seed, so its low bits are as good as any.
    return int32_t(toInput_[buckets_[in.srcHash & (kHashBuckets - 1)]]);
  }

  // Positions in the canonical order, so tables of two instances compare directly.
  std::span<const uint32_t> table() const override {
    if (toInput_.empty()) return {};
    return {buckets_, kHashBuckets};
  }

 private:
  uint32_t buckets_[kHashBuckets] = {};  // bucket -> position in canonical order
  std::vector<uint32_t> toInput_;        // position in canonical order -> index given to rebuild
};

}  // namespace

std::unique_ptr<Scheduler> makeSourceHash() { return std::make_unique<SourceHashScheduler>(); }

}  // namespace svcplane::sched

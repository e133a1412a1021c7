// dh: IPVS destination hashing (ip_vs_dh.c). The same 256-bucket table as sh, but filled one
// bucket per backend per turn (IPVS dh ignores weights), and indexed by the destination
// address hash. With one destination address per service this sends all of a service's new
// flows to one backend; it exists for IPVS parity (dh is meant for cache clusters keyed by the
// original destination).
//
// Past 256 backends the rest get no bucket, as in IPVS. The walk is in canonical (addr, port)
// order so every instance given the same set builds the same table.
#include "sched_impl.h"

namespace svcplane::sched {
namespace {

class DestinationHashScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    toInput_ = canonicalOrder(backends);
    if (!toInput_.empty()) fillBuckets(backends, toInput_, /*weighted=*/false, buckets_);
  }

  int32_t pick(const PickInput& in) override {
    if (toInput_.empty()) return -1;
    return int32_t(toInput_[buckets_[in.dstHash & (kHashBuckets - 1)]]);
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

std::unique_ptr<Scheduler> makeDestinationHash() {
  return std::make_unique<DestinationHashScheduler>();
}

}  // namespace svcplane::sched

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

std::unique_ptr<Scheduler> makeDestinationHash() {
  return std::make_unique<BucketScheduler<false, &PickInput::dstHash>>();
}

}  // namespace svcplane::sched

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

std::unique_ptr<Scheduler> makeSourceHash() { return std::make_unique<BucketScheduler<true, &PickInput::srcHash>>(); }

}  // namespace svcplane::sched

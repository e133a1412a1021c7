// Private to the scheduler implementation (scheduler.cc, sched_*.cc) and its unit tests: one
// factory per scheduler file, plus the few helpers more than one scheduler needs.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "scheduler.h"

namespace svcplane::sched {

std::unique_ptr<Scheduler> makeRandom();
std::unique_ptr<Scheduler> makeMaglev(const SchedulerConfig& cfg);  // cfg.maglevTableSize prime
std::unique_ptr<Scheduler> makeRoundRobin();
std::unique_ptr<Scheduler> makeWeightedRoundRobin();
std::unique_ptr<Scheduler> makeLeastConn();
std::unique_ptr<Scheduler> makeWeightedLeastConn();
std::unique_ptr<Scheduler> makeSourceHash();
std::unique_ptr<Scheduler> makeDestinationHash();

// Indices into `backends`, ordered by (addr bytes, port, backendId). Schedulers whose table
// must be identical on every instance given the same set build it in this order, so the
// caller's order (which differs between nodes) cannot leak into the table.
std::vector<uint32_t> canonicalOrder(std::span<const SchedBackend> backends);

// IPVS sh/dh use a fixed 256-bucket table (IP_VS_SH_TAB_SIZE / IP_VS_DH_TAB_SIZE).
constexpr uint32_t kHashBuckets = 256;

// ip_vs_sh_reassign / ip_vs_dh_reassign: walks the backends in `order` round-robin, filling
// buckets in sequence; with `weighted`, a backend keeps taking buckets until it has filled
// `weight` consecutive ones (sh), otherwise one bucket per turn (dh). Writes positions in
// `order` (not input indices) into out[0..kHashBuckets). `order` must not be empty.
void fillBuckets(std::span<const SchedBackend> backends, std::span<const uint32_t> order, bool weighted, uint32_t* out);

// The 256-bucket schedulers (IPVS sh and dh): the table is filled from the canonical order and
// a flow picks the bucket of one of its hashes. Weighted: each backend takes `weight`
// consecutive buckets per turn (sh); unweighted: one (dh).
template <bool kWeighted, uint64_t PickInput::*kHash>
class BucketScheduler final : public Scheduler {
 public:
  void rebuild(std::span<const SchedBackend> backends) override {
    toInput_ = canonicalOrder(backends);
    if (!toInput_.empty()) fillBuckets(backends, toInput_, kWeighted, buckets_);
  }

  int32_t pick(const PickInput& in) override { return predict(in); }
  uint8_t inputs() const override { return kHash == &PickInput::srcHash ? kPickSrcHash : kPickDstHash; }

  int32_t predict(const PickInput& in) const override {
    if (toInput_.empty()) return -1;
    // The hash is already keyed with the shared seed, so its low bits are as good as any.
    return int32_t(toInput_[buckets_[(in.*kHash) & (kHashBuckets - 1)]]);
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

// Maglev's per-backend permutation parameters (offset in [0,M), skip in [1,M)), from the
// backend's (addr, port) hashed with two secrets derived from the shared seed. Exposed so the
// tests can build a reference table straight from the paper's pseudocode.
void maglevOffsetSkip(const IpAddr& addr, uint16_t port, uint64_t seed, uint32_t m, uint32_t* offset, uint32_t* skip);

// conntrack updates the counter from the packet path, possibly on another thread: read it
// with a relaxed atomic load so the race is defined; a stale value only skews one choice.
inline uint32_t loadConns(const uint32_t* p) { return p ? __atomic_load_n(p, __ATOMIC_RELAXED) : 0; }

}  // namespace svcplane::sched

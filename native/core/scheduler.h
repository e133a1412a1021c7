// Backend selection: one Scheduler per service, rebuilt on the control path whenever the
// service's eligible backends change, consulted on the packet path only on a conntrack miss.
#pragma once
#include <cstdint>
#include <memory>
#include <span>

#include "types.h"

namespace svcplane {

enum class SchedulerKind : uint8_t {
  Random = 0,              // what iptables' statistic match does
  Maglev = 1,              // consistent hashing (Eisenbud et al., NSDI'16), weighted
  RoundRobin = 2,          // IPVS rr
  WeightedRoundRobin = 3,  // IPVS wrr
  LeastConn = 4,           // IPVS lc
  WeightedLeastConn = 5,   // IPVS wlc
  SourceHash = 6,          // IPVS sh
  DestinationHash = 7,     // IPVS dh
};
constexpr int kSchedulerKinds = 8;

// One backend that may take new flows, as handed to rebuild(). The order of the span is the
// caller's; schedulers that need a canonical order (Maglev, sh, dh) sort by (addr, port) so
// every instance given the same set builds the same table.
struct SchedBackend {
  uint32_t backendId;
  uint32_t weight;  // > 0
  IpAddr addr;
  uint16_t port;
  const uint32_t* activeConns;  // live count of flows on this backend, kept by conntrack
};

struct SchedulerConfig {
  uint32_t maglevTableSize = 16381;             // prime
  uint64_t maglevSeed = 0x5eed5eed5eed5eedull;  // shared by every instance, like Cilium's
};

// What the packet path knows when it must choose.
// Which PickInput fields a scheduler reads (Scheduler::inputs): the hashes cost a few ns each,
// and a new flow computes only those its service's scheduler uses.
enum PickInputs : uint8_t { kPickFlowHash = 1, kPickSrcHash = 2, kPickDstHash = 4, kPickRandom = 8, kPickAll = 15 };

struct PickInput {
  uint64_t flowHash;  // hash of the flow keyed with the shared maglevSeed (consistent across
                      // instances); source port zeroed when session affinity is on
  uint64_t srcHash;   // hash of the source address only (shared seed)
  uint64_t dstHash;   // hash of the destination address only (shared seed)
  uint64_t random;    // 64 fresh random bits from the instance's RNG
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // Control path: may allocate. Called with the full set every time it changes.
  virtual void rebuild(std::span<const SchedBackend> backends) = 0;
  // Packet path: must not allocate. Returns an index into the last span given to rebuild,
  // or -1 when there is no backend.
  virtual int32_t pick(const PickInput& in) = 0;
  // The batch path's look-ahead: what pick(in) would return, for schedulers whose choice is a
  // function of `in` alone (random, maglev, sh, dh), so the chosen backend can be prefetched
  // before the flow is decided; -1 for those whose choice depends on their own state or on
  // connection counts (rr, wrr, lc, wlc). Changes nothing.
  // The PickInputs bits of the fields pick() and predict() read; the others may be left 0.
  virtual uint8_t inputs() const { return kPickAll; }
  virtual int32_t predict(const PickInput& in) const {
    (void)in;
    return -1;
  }
  // For inspection (e.g. dumping the Maglev table); empty for schedulers without a table.
  virtual std::span<const uint32_t> table() const { return {}; }
};

std::unique_ptr<Scheduler> makeScheduler(SchedulerKind kind, const SchedulerConfig& cfg);

// Smallest prime >= n is not needed: callers pass a prime; this validates one.
bool isPrime(uint32_t n);

}  // namespace svcplane

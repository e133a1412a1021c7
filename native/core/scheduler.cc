// The scheduler factory and the helpers shared by several schedulers.
#include "scheduler.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "hash.h"
#include "sched_impl.h"

namespace svcplane {

std::unique_ptr<Scheduler> makeScheduler(SchedulerKind kind, const SchedulerConfig& cfg) {
  switch (kind) {
    case SchedulerKind::Random: return sched::makeRandom();
    case SchedulerKind::Maglev:
      // A non-prime M breaks the permutation property the table population relies on (it
      // could loop forever), and there are no exceptions to report it: refuse with nullptr.
      if (!isPrime(cfg.maglevTableSize)) return nullptr;
      return sched::makeMaglev(cfg);
    case SchedulerKind::RoundRobin: return sched::makeRoundRobin();
    case SchedulerKind::WeightedRoundRobin: return sched::makeWeightedRoundRobin();
    case SchedulerKind::LeastConn: return sched::makeLeastConn();
    case SchedulerKind::WeightedLeastConn: return sched::makeWeightedLeastConn();
    case SchedulerKind::SourceHash: return sched::makeSourceHash();
    case SchedulerKind::DestinationHash: return sched::makeDestinationHash();
  }
  return nullptr;  // a value outside the enum, e.g. cast from user input
}

bool isPrime(uint32_t n) {
  if (n < 2) return false;
  if (n % 2 == 0) return n == 2;
  // 64-bit square so d*d cannot wrap near 2^32; at most ~32768 divisions.
  for (uint64_t d = 3; d * d <= n; d += 2)
    if (n % d == 0) return false;
  return true;
}

namespace sched {

std::vector<uint32_t> canonicalOrder(std::span<const SchedBackend> backends) {
  std::vector<uint32_t> order(backends.size());
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) {
    const SchedBackend& a = backends[x];
    const SchedBackend& b = backends[y];
    if (int c = std::memcmp(a.addr.b, b.addr.b, sizeof a.addr.b)) return c < 0;
    if (a.port != b.port) return a.port < b.port;
    if (a.backendId != b.backendId) return a.backendId < b.backendId;
    return x < y;  // identical entries: any order builds the same table
  });
  return order;
}

void fillBuckets(std::span<const SchedBackend> backends, std::span<const uint32_t> order, bool weighted,
                 uint32_t* out) {
  size_t pos = 0;
  uint32_t filled = 0;  // d_count in IPVS
  for (uint32_t i = 0; i < kHashBuckets; ++i) {
    out[i] = uint32_t(pos);
    uint32_t turns = weighted ? backends[order[pos]].weight : 1;
    if (++filled >= turns) {
      pos = (pos + 1) % order.size();
      filled = 0;
    }
  }
}

void maglevOffsetSkip(const IpAddr& addr, uint16_t port, uint64_t seed, uint32_t m, uint32_t* offset, uint32_t* skip) {
  // Two independent secrets, so offset and skip are not correlated (the paper uses two
  // different hash functions h1, h2).
  uint64_t state = seed;
  const uint64_t offsetSeed = splitmix64(state);
  const uint64_t skipSeed = splitmix64(state);
  // keyedHash wants a multiple of 4 bytes; the port goes in big-endian so the key is the
  // same bytes on every host.
  uint8_t key[20] = {};
  std::memcpy(key, addr.b, 16);
  key[16] = uint8_t(port >> 8);
  key[17] = uint8_t(port);
  *offset = uint32_t(keyedHash(key, sizeof key, offsetSeed) % m);
  *skip = m > 1 ? uint32_t(keyedHash(key, sizeof key, skipSeed) % (m - 1) + 1) : 1;
}

}  // namespace sched
}  // namespace svcplane

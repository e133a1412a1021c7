// The fragment map: what the first fragment of a datagram was decided, so its later
// fragments (which carry no ports) follow it. Keyed by the datagram's identity as the client
// sent it (addresses, protocol, IP id); an entry lives for a fixed time after the first
// fragment (30 s, the kernel's ipfrag_time). Fixed capacity; full evicts the oldest.
// A later fragment that arrives before its first one is not held back: it passes, counted.
#pragma once
#include <cstdint>

#include "fixed_map.h"
#include "types.h"

namespace svcplane {

struct FragKey {
  IpAddr src;
  IpAddr dst;
  uint32_t id;
  uint8_t proto;
  uint8_t pad[3];

  bool operator==(const FragKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
static_assert(sizeof(FragKey) == 40, "FragKey must stay packed");

struct FragRec {
  uint64_t expires = 0;
  uint16_t sport = 0, dport = 0;
  uint8_t verdict = 0;  // Verdict of the first fragment
  uint8_t reason = 0;
};

class FragMap {
 public:
  FragMap(uint32_t capacity, uint64_t seed) : map_(capacity, seed, FullPolicy::EvictOldest) {}

  void record(const FragKey& k, uint16_t sport, uint16_t dport, uint8_t verdict, uint8_t reason, uint64_t now) {
    auto r = map_.insert(k);
    if (r.index == FixedMap<FragKey, FragRec>::kNone) return;
    map_.at(r.index).value = FragRec{now + timeoutNs_, sport, dport, verdict, reason};
  }

  // The first fragment's record, or null (unknown or expired; an expired one is removed).
  const FragRec* find(const FragKey& k, uint64_t now) {
    uint32_t i = map_.findIndex(k);
    if (i == FixedMap<FragKey, FragRec>::kNone) {
      ++map_.stats().misses;
      return nullptr;
    }
    if (map_.at(i).value.expires <= now) {
      map_.expireAt(i);
      ++map_.stats().misses;
      return nullptr;
    }
    ++map_.stats().hits;
    return &map_.at(i).value;
  }

  void setTimeout(uint64_t ns) { timeoutNs_ = ns; }
  uint64_t timeout() const { return timeoutNs_; }
  void clear() { map_.clear(); }
  FixedMap<FragKey, FragRec>& map() { return map_; }

 private:
  FixedMap<FragKey, FragRec> map_;
  uint64_t timeoutNs_ = 30ull * 1000000000ull;
};

}  // namespace svcplane

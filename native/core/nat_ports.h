// The NAT port map of masquerade: which (node address, port) a masqueraded flow took towards
// which peer. A port is unique per (node address, protocol, peer address, peer port), as in
// the kernel's nf_nat, so one node address serves 64K flows per backend rather than 64K in
// all. Fixed capacity (a full map refuses, and the packet is dropped, counted); an entry is
// released when its flow leaves conntrack (expiry, eviction, delete).
#pragma once
#include <cstdint>

#include "fixed_map.h"
#include "types.h"

namespace svcplane {

struct NatKey {
  IpAddr nat;   // the node address sources are rewritten to
  IpAddr peer;  // the backend
  uint16_t natPort;
  uint16_t peerPort;
  uint8_t proto;
  uint8_t pad[3];

  bool operator==(const NatKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
static_assert(sizeof(NatKey) == 40, "NatKey must stay packed");

struct NatRec {
  uint32_t flow = 0;  // conntrack index of the owning flow
};

class NatPorts {
 public:
  // At most this many ports are tried per new flow: a crowded range costs bounded work per
  // packet and then refuses, like the kernel's nf_nat_l4proto_unique_tuple.
  static constexpr uint32_t kMaxProbes = 64;

  NatPorts(uint32_t capacity, uint64_t seed) : map_(capacity, seed, FullPolicy::Refuse) {}

  void setRange(uint16_t lo, uint16_t hi) {
    lo_ = lo;
    hi_ = hi;
  }
  uint16_t rangeLow() const { return lo_; }
  uint16_t rangeHigh() const { return hi_; }

  // Claims a port for key (natPort ignored): the preferred port when it is free and in range
  // (the client's own, as the kernel keeps it when it can), else ports from a point given by
  // `start`. taken(port) lets the caller veto ports in use elsewhere (conntrack's reply
  // tuples). Returns the port, or 0 when none was free within kMaxProbes or the map is full.
  template <class Taken>
  uint16_t claim(NatKey key, uint16_t preferred, uint32_t start, Taken&& taken);
  // Binds a claimed port to its flow.
  void bind(const NatKey& key, uint32_t flow) {
    if (NatRec* r = map_.peek(key)) r->flow = flow;
  }
  void release(const NatKey& key) { map_.erase(key); }
  void clear() { map_.clear(); }

  FixedMap<NatKey, NatRec>& map() { return map_; }

 private:
  FixedMap<NatKey, NatRec> map_;
  uint16_t lo_ = 1024, hi_ = 65535;
};

template <class Taken>
uint16_t NatPorts::claim(NatKey key, uint16_t preferred, uint32_t start, Taken&& taken) {
  if (map_.size() == map_.capacity()) {
    ++map_.stats().refusals;
    return 0;
  }
  uint32_t span = uint32_t(hi_) - lo_ + 1;
  uint32_t first = preferred >= lo_ && preferred <= hi_ ? preferred - lo_ : start % span;
  for (uint32_t n = 0; n < kMaxProbes && n < span; ++n) {
    // After the preferred port, continue from the hashed start.
    uint32_t i = n == 0 ? first : (start + n) % span;
    key.natPort = uint16_t(lo_ + i);
    if (map_.findIndex(key) != FixedMap<NatKey, NatRec>::kNone || taken(key.natPort)) continue;
    map_.insert(key);
    return key.natPort;
  }
  ++map_.stats().refusals;
  return 0;
}

}  // namespace svcplane

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
  // Restricts the ports this map hands out to those with port % classes == cls. A sharded
  // dataplane (sharded_dataplane.h) gives each shard its own class, so the reply of a
  // masqueraded flow (backend -> node address : NAT port) is steered by its port to the shard
  // that holds the flow. One class (the default) is every port.
  void setClass(uint32_t cls, uint32_t classes) {
    cls_ = cls;
    classes_ = classes ? classes : 1;
  }
  bool inClass(uint16_t port) const { return port % classes_ == cls_; }
  // How many ports of [lo, hi] are in class cls of `classes` (this map's range and class).
  static uint32_t classSpan(uint16_t lo, uint16_t hi, uint32_t cls, uint32_t classes) {
    uint32_t first = firstInClass(lo, cls, classes);
    return first > hi ? 0 : (uint32_t(hi) - first) / classes + 1;
  }
  uint32_t classSpan() const { return classSpan(lo_, hi_, cls_, classes_); }
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
  // The lowest port from lo on in class cls of `classes` (may be past the range's end).
  static uint32_t firstInClass(uint16_t lo, uint32_t cls, uint32_t classes) {
    return lo + (cls + classes - lo % classes) % classes;
  }

  FixedMap<NatKey, NatRec> map_;
  uint16_t lo_ = 1024, hi_ = 65535;
  uint32_t cls_ = 0, classes_ = 1;
};

template <class Taken>
uint16_t NatPorts::claim(NatKey key, uint16_t preferred, uint32_t start, Taken&& taken) {
  if (map_.size() == map_.capacity()) {
    ++map_.stats().refusals;
    return 0;
  }
  // Ports of the class are base + i * classes_ for i in [0, span).
  const uint32_t base = firstInClass(lo_, cls_, classes_), span = classSpan();
  const bool keep = preferred >= lo_ && preferred <= hi_ && inClass(preferred);
  const uint32_t first = keep ? (preferred - base) / classes_ : start % (span ? span : 1);
  for (uint32_t n = 0; n < kMaxProbes && n < span; ++n) {
    // After the preferred port, continue from the hashed start.
    uint32_t i = n == 0 ? first : (start + n) % span;
    key.natPort = uint16_t(base + i * classes_);
    if (map_.findIndex(key) != FixedMap<NatKey, NatRec>::kNone || taken(key.natPort)) continue;
    map_.insert(key);
    return key.natPort;
  }
  ++map_.stats().refusals;
  return 0;
}

}  // namespace svcplane

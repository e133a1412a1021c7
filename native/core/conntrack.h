// Connection tracking: one entry per flow, found from either direction. Each flow is indexed
// twice, by its original tuple (client -> service) and by its reply tuple (backend -> client),
// like the kernel's tuplehash[2], so replies find the flow they belong to and can be
// reverse-NATed. Fixed capacity; a full table evicts (the oldest, half-open flows first) or
// refuses.
//
// Storage is split by use so a hit touches two cache lines: the index bucket and the flow's
// hot line (FlowHot: IPv4 tuples, state, expiry, counters, ids). What only creation, removal,
// inspection or a counter carry needs lives in FlowCold; IPv6 addresses in FlowV6, a reserve
// whose pages are mapped only when IPv6 flows use them. An IPv4 flow costs 64 + 22 + 2 x 4.96
// (index) = 95.9 bytes. To fit, the last-seen time is kept as its distance to the expiry and
// the creation time packed (packed_duration.h: exact below a second and for whole
// milliseconds), and the counters wrap at 2^40 packets and 2^48 bytes a direction.
#pragma once
#include <cstdint>
#include <cstring>
#include <memory>

#include "bucket_index.h"
#include "hash.h"
#include "map_stats.h"
#include "packed_duration.h"
#include "table_memory.h"
#include "tcp_state.h"
#include "types.h"

namespace svcplane {

// A flow as owners and inspection see it, assembled from the tables (a copy, not a reference).
struct Flow {
  FlowKey orig;   // as the client sent it: client -> frontend
  FlowKey reply;  // as the backend answers: backend -> client
  CtState state = CtState::None;
  uint8_t finDir = 0;
  bool replyIndexed = false;
  bool used = false;
  bool snat = false;  // its source was masqueraded: reply.dst/dport hold a port of the NAT port map
  uint8_t list = 0;   // which eviction list holds it: 0 expendable, 1 settled (see Conntrack)
  uint32_t backendId = 0, serviceId = 0, revNatId = 0;
  uint64_t expires = 0, lastSeen = 0, created = 0;
  uint64_t packets[2] = {0, 0};
  uint64_t bytes[2] = {0, 0};
};

// Everything a conntrack hit reads or writes, in one line. IPv4 addresses are kept as their
// four bytes in network order; an IPv6 flow keeps its addresses in FlowV6. The reply tuple's
// destination is the original source unless kNatReply (masqueraded: natDst, natDport).
struct alignas(64) FlowHot {
  uint64_t expires;
  uint32_t seenBefore;  // packDuration(expires - last seen): the timeout the last packet set
  uint32_t packets[2];  // low words; FlowCold::packetsHi carries
  uint32_t bytes[2];    // low words; FlowCold::bytesHi carries
  uint32_t origSrc, origDst, replySrc, natDst;
  uint32_t backendId, serviceId;
  uint16_t origSport, origDport, replySport, natDport;
  uint8_t proto, state, finDir, flags;
};
static_assert(sizeof(FlowHot) == 64, "a flow's hot part is one cache line");

// Packed (22 bytes, no padding): it is read on creation, removal, inspection and a carry only.
struct __attribute__((packed)) FlowCold {
  uint32_t created;  // packDuration(creation time)
  uint32_t revNatId;
  uint32_t older, newer;  // its eviction list, oldest first (or the free-list link)
  uint8_t packetsHi[2];   // bits 32..39 of the packet counters
  uint16_t bytesHi[2];    // bits 32..47 of the byte counters
};
static_assert(sizeof(FlowCold) == 22, "FlowCold stays small");

struct FlowV6 {
  IpAddr origSrc, origDst, replySrc, replyDst;
};

struct CtHit {
  uint32_t flow;  // kNone on a miss
  Dir dir;
  bool expired;  // found, but past its timeout: the owner removes it and treats it as a miss
};

class Conntrack {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;
  enum : uint8_t { kUsed = 1, kSnat = 2, kSettled = 4, kReplyIndexed = 8, kV6 = 16, kNatReply = 32 };

  Conntrack(uint32_t capacity, uint64_t seed, FullPolicy policy, const CtTimeouts& timeouts);

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return size_; }
  // Memory of a table of IPv4 flows: hot and cold parts and the index. The IPv6 reserve
  // (reserveBytes) costs pages only as IPv6 flows use them.
  uint64_t bytes() const { return bytesFor(capacity_); }
  uint64_t reserveBytes() const { return uint64_t(slots()) * sizeof(FlowV6); }
  // What a table of this capacity allocates, without building one.
  static uint64_t bytesFor(uint32_t capacity) {
    return BucketIndex::bytesFor(indexRefs(capacity)) +
           uint64_t(capacity ? capacity : 1) * (sizeof(FlowHot) + sizeof(FlowCold));
  }
  MapStats& stats() { return stats_; }
  const MapStats& stats() const { return stats_; }
  CtTimeouts& timeouts() { return timeouts_; }
  FullPolicy policy() const { return policy_; }

  uint32_t hashOf(const FlowKey& k) const { return uint32_t(keyedHash(&k, sizeof k, seed_)); }
  // The same hash of a key given as its five little-endian words (FlowKey's bytes).
  uint32_t hashOfWords(const uint64_t w[5]) const { return uint32_t(keyedHash(w, 40, seed_)); }
  void prefetch(uint32_t hash) const { index_.prefetch(hash); }
  // Second stage of a batch lookup, once prefetch(hash) has brought the bucket in: the hot line
  // of the flow its first tag match refers to. Only a hint.
  void prefetchFlow(uint32_t hash) const {
    uint32_t ref = index_.firstWithTag(hash);
    if (ref != BucketIndex::kEmpty) __builtin_prefetch(&hot_[ref >> 1], 1);
  }
  // prefetchFlow that also says whether the home bucket held the hash's tag: false means the
  // lookup will almost surely miss (a new flow), so the batch looks ahead at its service.
  bool prefetchFlowTagged(uint32_t hash) const {
    uint32_t ref = index_.firstWithTag(hash);
    if (ref == BucketIndex::kEmpty) return false;
    __builtin_prefetch(&hot_[ref >> 1], 1);
    return true;
  }

  // Finds the flow for a packet tuple (counted as a hit or a miss; an expired one is a miss).
  // tcpFlags: a SYN on a TIME_WAIT/CLOSE flow reports it expired, so the caller replaces it.
  CtHit lookup(const FlowKey& k, uint32_t hash, uint64_t now, uint8_t tcpFlags = 0);
  // Looks without counting or expiring (inspection).
  CtHit peek(const FlowKey& k) const { return peek(k, hashOf(k)); }
  CtHit peek(const FlowKey& k, uint32_t hash) const;

  // Accounts one packet on a flow: state machine, timeout, counters.
  void update(uint32_t flow, Dir d, uint8_t tcpFlags, uint32_t bytes, uint64_t now);

  // Creates a flow. Returns kNone when the table is full and its policy refuses; the evicted
  // flow's backend is reported through onRemove, like any removal.
  template <class OnRemove>
  uint32_t create(const FlowKey& orig, uint32_t origHash, const FlowKey& reply, uint32_t replyHash, uint32_t serviceId,
                  uint32_t backendId, uint32_t revNatId, uint8_t tcpFlags, uint32_t bytes, uint64_t now,
                  OnRemove&& onRemove);

  // Removal; onRemove(flow) runs first so owners can drop per-backend counts.
  template <class OnRemove>
  void remove(uint32_t flow, OnRemove&& onRemove, bool expired = false);

  // Incremental garbage collection: scans up to budget slots from a rotating cursor.
  template <class OnRemove>
  uint32_t gc(uint64_t now, uint32_t budget, OnRemove&& onRemove);

  template <class Pred, class OnRemove>
  uint32_t removeIf(Pred&& pred, OnRemove&& onRemove) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < capacity_; ++i)
      if ((hot_[i].flags & kUsed) && pred(at(i))) {
        remove(i, onRemove);
        ++n;
      }
    return n;
  }

  // The whole flow, assembled (inspection, removal, tests).
  Flow at(uint32_t i) const;
  bool used(uint32_t i) const { return hot_[i].flags & kUsed; }
  // The hot line alone: what the packet path reads after a hit.
  const FlowHot& hot(uint32_t i) const { return hot_[i]; }
  uint32_t revNatIdOf(uint32_t i) const { return cold_[i].revNatId; }
  // One direction's tuple, from the hot line (and, masqueraded or IPv6, the other parts).
  FlowKey key(uint32_t i, Dir d) const;
  // The reply tuple's source (the backend a forward packet is sent to), without building the tuple.
  void replySource(uint32_t i, IpAddr& addr, uint16_t& port) const {
    const FlowHot& h = hot_[i];
    addr = __builtin_expect(h.flags & kV6, 0) ? v6_[i].replySrc : fromV4Bytes(h.replySrc);
    port = h.replySport;
  }
  // Marks a flow's source as masqueraded (its reply tuple holds a port of the NAT port map).
  void markSnat(uint32_t i) { hot_[i].flags |= kSnat; }
  // Gives a flow just made by create() the state, expiry, times and counters it had in a
  // previous run (flow handoff, flow_handoff.cc), moving it to its state's eviction list.
  void restore(uint32_t i, CtState state, uint8_t finDir, uint64_t expires, uint64_t lastSeen, uint64_t created,
               const uint64_t packets[2], const uint64_t bytes[2]);

 private:
  static uint32_t indexRefs(uint32_t capacity) { return capacity * 2 > capacity ? capacity * 2 : capacity; }
  uint32_t slots() const { return capacity_ ? capacity_ : 1; }
  bool matches(uint32_t ref, const FlowKey& k) const;
  FlowKey keyOffLine(uint32_t i, Dir d) const;
  uint32_t pickVictim() const;
  void linkNewest(uint32_t i);
  void unlink(uint32_t i);
  void store(uint32_t i, const FlowKey& orig, const FlowKey& reply);
  // Settled flows (established TCP, answered UDP, SCTP) are evicted only when no expendable
  // one (half-open, closing, unanswered) is left, so a SYN flood cannot push them out.
  static uint8_t listOf(CtState s) {
    return s == CtState::TcpEstablished || s == CtState::UdpStream || s == CtState::Sctp ? 1 : 0;
  }
  uint8_t listOf(uint32_t i) const { return (hot_[i].flags & kSettled) ? 1 : 0; }
  // A packet at `now` in `state`: the expiry, and the last-seen time as its distance to it.
  // The packed form of each timeout is cached, and redone when timeouts() has changed it.
  void setExpiry(FlowHot& h, uint64_t now, CtState state) {
    const size_t s = size_t(state);
    const uint64_t timeout = timeouts_.ns[s];
    if (__builtin_expect(timeout != packedFrom_[s], 0)) {
      packedFrom_[s] = timeout;
      packedTimeout_[s] = packDuration(timeout);
    }
    h.expires = now + timeout;
    h.seenBefore = packedTimeout_[s];
  }

  uint32_t capacity_;
  uint64_t seed_;
  FullPolicy policy_;
  CtTimeouts timeouts_;
  uint64_t packedFrom_[size_t(CtState::Count)] = {};  // the timeouts packedTimeout_ holds
  uint32_t packedTimeout_[size_t(CtState::Count)] = {};
  BucketIndex index_;  // refs are flow << 1 | dir
  TableArray<FlowHot> hot_;
  TableArray<FlowCold> cold_;
  TableArray<FlowV6> v6_;
  uint32_t free_ = kNone, head_[2] = {kNone, kNone}, tail_[2] = {kNone, kNone}, size_ = 0, gcCursor_ = 0;
  MapStats stats_;
};

template <class OnRemove>
uint32_t Conntrack::create(const FlowKey& orig, uint32_t origHash, const FlowKey& reply, uint32_t replyHash,
                           uint32_t serviceId, uint32_t backendId, uint32_t revNatId, uint8_t tcpFlags, uint32_t bytes,
                           uint64_t now, OnRemove&& onRemove) {
  if (size_ == capacity_) {
    uint32_t victim = policy_ == FullPolicy::EvictOldest ? pickVictim() : kNone;
    if (victim == kNone) {
      ++stats_.refusals;
      return kNone;
    }
    ++stats_.evictions;
    --stats_.deletes;  // remove() counts a delete; this one is an eviction
    remove(victim, onRemove);
  }
  uint32_t i = free_;
  free_ = cold_[i].older;
  FlowHot& h = hot_[i];
  FlowCold& c = cold_[i];
  h = FlowHot{};
  c = FlowCold{};
  store(i, orig, reply);
  h.serviceId = serviceId;
  h.backendId = backendId;
  c.revNatId = revNatId;
  const CtState state = initialState(orig.proto, tcpFlags);
  h.state = uint8_t(state);
  h.flags |= kUsed | (listOf(state) ? kSettled : 0);
  c.created = packDuration(now);
  setExpiry(h, now, state);
  h.packets[0] = 1;
  h.bytes[0] = bytes;
  index_.insert(origHash, i << 1);
  // Two clients may map to one reply tuple (the same client port towards two frontends that
  // share a backend; the kernel would SNAT one of them). Both stay indexed: lookups find the
  // older flow first, and the newer one takes over when the older goes. Not checking for the
  // clash here saves a dependent cache miss per new flow.
  index_.insert(replyHash, (i << 1) | 1);
  h.flags |= kReplyIndexed;
  linkNewest(i);
  ++size_;
  ++stats_.inserts;
  return i;
}

template <class OnRemove>
void Conntrack::remove(uint32_t i, OnRemove&& onRemove, bool expired) {
  const Flow f = at(i);
  onRemove(f);
  index_.erase(hashOf(f.orig), i << 1);
  if (f.replyIndexed) index_.erase(hashOf(f.reply), (i << 1) | 1);
  unlink(i);
  hot_[i].flags = 0;
  cold_[i].older = free_;
  free_ = i;
  --size_;
  if (expired)
    ++stats_.expirations;
  else
    ++stats_.deletes;
}

template <class OnRemove>
uint32_t Conntrack::gc(uint64_t now, uint32_t budget, OnRemove&& onRemove) {
  uint32_t removed = 0;
  if (capacity_ == 0) return 0;
  for (uint32_t n = 0; n < budget && n < capacity_; ++n) {
    uint32_t i = gcCursor_;
    gcCursor_ = gcCursor_ + 1 == capacity_ ? 0 : gcCursor_ + 1;
    if ((hot_[i].flags & kUsed) && hot_[i].expires <= now) {
      remove(i, onRemove, true);
      ++removed;
    }
  }
  return removed;
}

}  // namespace svcplane

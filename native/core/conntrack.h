// Connection tracking: one entry per flow, found from either direction. Each flow is indexed
// twice, by its original tuple (client -> service) and by its reply tuple (backend -> client),
// like the kernel's tuplehash[2], so replies find the flow they belong to and can be
// reverse-NATed. Fixed capacity; a full table evicts (the oldest, half-open flows first) or
// refuses.
#pragma once
#include <cstdint>
#include <memory>

#include "hash.h"
#include "hash_index.h"
#include "map_stats.h"
#include "table_memory.h"
#include "tcp_state.h"
#include "types.h"

namespace svcplane {

// 192 bytes, cache-line aligned, laid out by use: a conntrack hit reads and writes the first
// two lines (the key it matched, state, expiry, the other direction's key for the rewrite,
// packet counters) and the byte counters at the start of the third; the rest of the third is
// touched only when a flow is created or removed. The batch paths prefetch all three lines.
struct alignas(64) Flow {
  // line 0
  FlowKey orig;  // as the client sent it: client -> frontend
  CtState state;
  uint8_t finDir;
  bool replyIndexed;
  bool used;
  bool snat;     // its source was masqueraded: reply.dst/dport hold a port of the NAT port map
  uint8_t list;  // which eviction list holds it: 0 expendable, 1 settled (see Conntrack)
  uint32_t backendId;
  uint32_t serviceId;
  uint64_t expires;
  // line 1
  FlowKey reply;  // as the backend answers: backend -> client
  uint64_t lastSeen;
  uint64_t packets[2];
  // line 2
  uint64_t bytes[2];
  uint32_t revNatId;
  uint32_t origHash, replyHash;
  uint32_t older, newer;  // its eviction list, oldest first (or the free-list link)
  uint64_t created;
};
static_assert(sizeof(Flow) == 192, "Flow is three cache lines");

struct CtHit {
  uint32_t flow;  // kNone on a miss
  Dir dir;
  bool expired;  // found, but past its timeout: the owner removes it and treats it as a miss
};

class Conntrack {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  Conntrack(uint32_t capacity, uint64_t seed, FullPolicy policy, const CtTimeouts& timeouts);

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return size_; }
  uint64_t bytes() const { return bytesFor(capacity_); }
  // What a table of this capacity allocates, without building one.
  static uint64_t bytesFor(uint32_t capacity) {
    return HashIndex::slotsFor(indexRefs(capacity)) * sizeof(HashIndex::Slot) +
           uint64_t(capacity ? capacity : 1) * sizeof(Flow);
  }
  MapStats& stats() { return stats_; }
  const MapStats& stats() const { return stats_; }
  CtTimeouts& timeouts() { return timeouts_; }
  FullPolicy policy() const { return policy_; }

  uint32_t hashOf(const FlowKey& k) const { return uint32_t(keyedHash(&k, sizeof k, seed_)); }
  // The same hash of a key given as its five little-endian words (FlowKey's bytes).
  uint32_t hashOfWords(const uint64_t w[5]) const { return uint32_t(keyedHash(w, 40, seed_)); }
  void prefetch(uint32_t hash) const { index_.prefetch(hash); }
  // Second stage of a batch lookup, once prefetch(hash) has brought the index slot in: the
  // flow the first slot of that hash refers to is brought in too, whole. Only a hint.
  void prefetchFlow(uint32_t hash) const {
    uint32_t ref = index_.firstWithHash(hash);
    if (ref != HashIndex::kEmpty) {
      const char* p = reinterpret_cast<const char*>(&flows_[ref >> 1]);
      __builtin_prefetch(p, 1);
      __builtin_prefetch(p + 64, 1);
      __builtin_prefetch(p + 128, 1);
    }
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
      if (flows_[i].used && pred(flows_[i])) {
        remove(i, onRemove);
        ++n;
      }
    return n;
  }

  const Flow& at(uint32_t i) const { return flows_[i]; }
  Flow& at(uint32_t i) { return flows_[i]; }

 private:
  uint32_t pickVictim() const;
  void linkNewest(uint32_t i);
  void unlink(uint32_t i);
  // Settled flows (established TCP, answered UDP, SCTP) are evicted only when no expendable
  // one (half-open, closing, unanswered) is left, so a SYN flood cannot push them out.
  static uint32_t indexRefs(uint32_t capacity) { return capacity * 2 > capacity ? capacity * 2 : capacity; }
  static uint8_t listOf(CtState s) {
    return s == CtState::TcpEstablished || s == CtState::UdpStream || s == CtState::Sctp ? 1 : 0;
  }

  uint32_t capacity_;
  uint64_t seed_;
  FullPolicy policy_;
  CtTimeouts timeouts_;
  HashIndex index_;  // refs are flow << 1 | dir
  TableArray<Flow> flows_;
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
  Flow& f = flows_[i];
  free_ = f.older;
  f = Flow{};
  f.orig = orig;
  f.reply = reply;
  f.serviceId = serviceId;
  f.backendId = backendId;
  f.revNatId = revNatId;
  f.state = initialState(orig.proto, tcpFlags);
  f.list = listOf(f.state);
  f.used = true;
  f.created = f.lastSeen = now;
  f.expires = now + timeouts_.ns[size_t(f.state)];
  f.packets[0] = 1;
  f.bytes[0] = bytes;
  f.origHash = origHash;
  f.replyHash = replyHash;
  index_.insert(origHash, i << 1);
  // Two clients may map to one reply tuple (the same client port towards two frontends that
  // share a backend; the kernel would SNAT one of them). Both stay indexed: lookups find the
  // older flow first, and the newer one takes over when the older goes. Not checking for the
  // clash here saves a dependent cache miss per new flow.
  index_.insert(f.replyHash, (i << 1) | 1);
  f.replyIndexed = true;
  linkNewest(i);
  ++size_;
  ++stats_.inserts;
  return i;
}

template <class OnRemove>
void Conntrack::remove(uint32_t i, OnRemove&& onRemove, bool expired) {
  Flow& f = flows_[i];
  onRemove(f);
  index_.erase(f.origHash, i << 1);
  if (f.replyIndexed) index_.erase(f.replyHash, (i << 1) | 1);
  unlink(i);
  f.used = false;
  f.older = free_;
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
    if (flows_[i].used && flows_[i].expires <= now) {
      remove(i, onRemove, true);
      ++removed;
    }
  }
  return removed;
}

}  // namespace svcplane

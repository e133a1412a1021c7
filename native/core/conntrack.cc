#include "conntrack.h"

namespace svcplane {

Conntrack::Conntrack(uint32_t capacity, uint64_t seed, FullPolicy policy, const CtTimeouts& timeouts)
    : capacity_(capacity),
      seed_(seed),
      policy_(policy),
      timeouts_(timeouts),
      index_(indexRefs(capacity)),
      flows_(capacity ? capacity : 1) {
  for (uint32_t i = 0; i < capacity_; ++i) {
    flows_[i] = Flow{};
    flows_[i].older = i + 1 < capacity_ ? i + 1 : kNone;
  }
  free_ = capacity_ ? 0 : kNone;
}

CtHit Conntrack::peek(const FlowKey& k, uint32_t h) const {
  uint32_t ref = index_.find(h, [&](uint32_t r) {
    const Flow& f = flows_[r >> 1];
    return (r & 1) ? f.reply == k : f.orig == k;
  });
  if (ref == HashIndex::kEmpty) return {kNone, Dir::Original, false};
  return {ref >> 1, (ref & 1) ? Dir::Reply : Dir::Original, false};
}

CtHit Conntrack::lookup(const FlowKey& k, uint32_t h, uint64_t now, uint8_t tcpFlags) {
  uint32_t ref = index_.find(h, [&](uint32_t r) {
    const Flow& f = flows_[r >> 1];
    return (r & 1) ? f.reply == k : f.orig == k;
  });
  if (ref == HashIndex::kEmpty) {
    ++stats_.misses;
    return {kNone, Dir::Original, false};
  }
  uint32_t i = ref >> 1;
  // A fresh SYN on a closed connection's tuple (port reuse) starts a new connection, as the
  // kernel does: the old entry goes and the new one chooses its backend again, so it cannot
  // land on an endpoint that has since become terminating.
  const bool reopened = !(ref & 1) && (tcpFlags & (kSyn | kAck)) == kSyn &&
                        (flows_[i].state == CtState::TcpTimeWait || flows_[i].state == CtState::TcpClose);
  if (flows_[i].expires <= now || reopened) {
    ++stats_.misses;
    return {i, Dir::Original, true};
  }
  ++stats_.hits;
  return {i, (ref & 1) ? Dir::Reply : Dir::Original, false};
}

void Conntrack::update(uint32_t i, Dir d, uint8_t tcpFlags, uint32_t bytes, uint64_t now) {
  Flow& f = flows_[i];
  f.state = nextState(f.state, d, tcpFlags, f.finDir);
  f.lastSeen = now;
  f.expires = now + timeouts_.ns[size_t(f.state)];
  ++f.packets[size_t(d)];
  f.bytes[size_t(d)] += bytes;
  // Relinked only when the flow changes eviction class (a handshake completing, a FIN): a
  // move per packet would touch two other random flows, costlier than the lookup itself.
  if (uint8_t list = listOf(f.state); list != f.list) {
    unlink(i);
    f.list = list;
    linkNewest(i);
  }
}

// The oldest expendable flow (half-open, closing, unanswered) goes first; the oldest settled
// one only when there is none.
uint32_t Conntrack::pickVictim() const { return head_[0] != kNone ? head_[0] : head_[1]; }

void Conntrack::linkNewest(uint32_t i) {
  Flow& f = flows_[i];
  uint32_t& head = head_[f.list];
  uint32_t& tail = tail_[f.list];
  f.older = tail;
  f.newer = kNone;
  if (tail != kNone) flows_[tail].newer = i;
  tail = i;
  if (head == kNone) head = i;
}

void Conntrack::unlink(uint32_t i) {
  Flow& f = flows_[i];
  if (f.older != kNone)
    flows_[f.older].newer = f.newer;
  else
    head_[f.list] = f.newer;
  if (f.newer != kNone)
    flows_[f.newer].older = f.older;
  else
    tail_[f.list] = f.older;
}

}  // namespace svcplane

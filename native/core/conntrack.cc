#include "conntrack.h"

namespace svcplane {

namespace {

// Both addresses v4-mapped (::ffff:a.b.c.d): their first 12 bytes, compared as words.
bool isV4Pair(const IpAddr& a, const IpAddr& b) {
  uint64_t a0, b0;
  uint32_t a1, b1;
  std::memcpy(&a0, a.b, 8);
  std::memcpy(&b0, b.b, 8);
  std::memcpy(&a1, a.b + 8, 4);
  std::memcpy(&b1, b.b + 8, 4);
  static constexpr uint8_t kMapped[4] = {0, 0, 0xff, 0xff};
  uint32_t mapped;
  std::memcpy(&mapped, kMapped, 4);
  return (a0 | b0 | (a1 ^ mapped) | (b1 ^ mapped)) == 0;
}

uint32_t v4Bytes(const IpAddr& a) {
  uint32_t v;
  std::memcpy(&v, a.b + 12, 4);
  return v;
}

}  // namespace

Conntrack::Conntrack(uint32_t capacity, uint64_t seed, FullPolicy policy, const CtTimeouts& timeouts)
    : capacity_(capacity),
      seed_(seed),
      policy_(policy),
      timeouts_(timeouts),
      index_(indexRefs(capacity)),
      hot_(slots()),
      cold_(slots()),
      v6_(slots(), LazyPages{}) {
  for (uint32_t i = 0; i < capacity_; ++i) cold_[i].older = i + 1 < capacity_ ? i + 1 : kNone;
  free_ = capacity_ ? 0 : kNone;
}

void Conntrack::store(uint32_t i, const FlowKey& orig, const FlowKey& reply) {
  FlowHot& h = hot_[i];
  h.proto = orig.proto;
  h.origSport = orig.sport;
  h.origDport = orig.dport;
  h.replySport = reply.sport;
  if (reply.dst != orig.src || reply.dport != orig.sport) {
    h.flags |= kNatReply;
    h.natDport = reply.dport;
  }
  if (isV4Pair(orig.src, orig.dst) && isV4Pair(reply.src, reply.dst)) {
    h.origSrc = v4Bytes(orig.src);
    h.origDst = v4Bytes(orig.dst);
    h.replySrc = v4Bytes(reply.src);
    h.natDst = v4Bytes(reply.dst);
  } else {
    h.flags |= kV6;
    v6_[i] = FlowV6{orig.src, orig.dst, reply.src, reply.dst};
  }
}

FlowKey Conntrack::key(uint32_t i, Dir d) const {
  const FlowHot& h = hot_[i];
  if (__builtin_expect(h.flags & (kV6 | kNatReply), 0)) return keyOffLine(i, d);
  FlowKey k;
  const bool orig = d == Dir::Original;
  k.src = fromV4Bytes(orig ? h.origSrc : h.replySrc);
  k.dst = fromV4Bytes(orig ? h.origDst : h.origSrc);
  k.sport = orig ? h.origSport : h.replySport;
  k.dport = orig ? h.origDport : h.origSport;
  k.proto = h.proto;
  k.pad[0] = k.pad[1] = k.pad[2] = 0;
  return k;
}

// An IPv6 or masqueraded flow: its tuples need the NAT fields or the IPv6 reserve too. Kept
// out of line so the common path stays short.
__attribute__((noinline)) FlowKey Conntrack::keyOffLine(uint32_t i, Dir d) const {
  const FlowHot& h = hot_[i];
  FlowKey k{};
  k.proto = h.proto;
  const bool nat = h.flags & kNatReply;
  if (d == Dir::Original) {
    k.sport = h.origSport;
    k.dport = h.origDport;
  } else {
    k.sport = h.replySport;
    k.dport = nat ? h.natDport : h.origSport;
  }
  if (h.flags & kV6) {
    const FlowV6& a = v6_[i];
    k.src = d == Dir::Original ? a.origSrc : a.replySrc;
    k.dst = d == Dir::Original ? a.origDst : a.replyDst;
  } else if (d == Dir::Original) {
    k.src = fromV4Bytes(h.origSrc);
    k.dst = fromV4Bytes(h.origDst);
  } else {
    k.src = fromV4Bytes(h.replySrc);
    k.dst = fromV4Bytes(nat ? h.natDst : h.origSrc);
  }
  return k;
}

// Compares a packet tuple with one direction of a flow on the hot line; a masqueraded reply
// or an IPv6 flow also reads its other parts.
bool Conntrack::matches(uint32_t ref, const FlowKey& k) const {
  const uint32_t i = ref >> 1;
  const FlowHot& h = hot_[i];
  if (__builtin_expect(h.flags & (kV6 | kNatReply), 0)) return key(i, (ref & 1) ? Dir::Reply : Dir::Original) == k;
  if (!isV4Pair(k.src, k.dst)) return false;
  uint32_t s, t;
  std::memcpy(&s, k.src.b + 12, 4);
  std::memcpy(&t, k.dst.b + 12, 4);
  if (ref & 1)
    return (h.replySrc ^ s) == 0 && (h.origSrc ^ t) == 0 && h.replySport == k.sport && h.origSport == k.dport &&
           h.proto == k.proto;
  return (h.origSrc ^ s) == 0 && (h.origDst ^ t) == 0 && h.origSport == k.sport && h.origDport == k.dport &&
         h.proto == k.proto;
}

Flow Conntrack::at(uint32_t i) const {
  const FlowHot& h = hot_[i];
  const FlowCold& c = cold_[i];
  Flow f;
  f.used = h.flags & kUsed;
  if (!f.used) return f;
  f.orig = key(i, Dir::Original);
  f.reply = key(i, Dir::Reply);
  f.state = CtState(h.state);
  f.finDir = h.finDir;
  f.replyIndexed = h.flags & kReplyIndexed;
  f.snat = h.flags & kSnat;
  f.list = listOf(i);
  f.backendId = h.backendId;
  f.serviceId = h.serviceId;
  f.revNatId = c.revNatId;
  f.expires = h.expires;
  f.lastSeen = h.expires - unpackDuration(h.seenBefore);
  f.created = unpackDuration(c.created);
  for (int d = 0; d < 2; ++d) {
    f.packets[d] = uint64_t(c.packetsHi[d]) << 32 | h.packets[d];
    f.bytes[d] = uint64_t(c.bytesHi[d]) << 32 | h.bytes[d];
  }
  return f;
}

CtHit Conntrack::peek(const FlowKey& k, uint32_t h) const {
  uint32_t ref = index_.find(h, [&](uint32_t r) { return matches(r, k); });
  if (ref == BucketIndex::kEmpty) return {kNone, Dir::Original, false};
  return {ref >> 1, (ref & 1) ? Dir::Reply : Dir::Original, false};
}

CtHit Conntrack::lookup(const FlowKey& k, uint32_t h, uint64_t now, uint8_t tcpFlags) {
  uint32_t ref = index_.find(h, [&](uint32_t r) { return matches(r, k); });
  if (ref == BucketIndex::kEmpty) {
    ++stats_.misses;
    return {kNone, Dir::Original, false};
  }
  uint32_t i = ref >> 1;
  const FlowHot& f = hot_[i];
  // A fresh SYN on a closed connection's tuple (port reuse) starts a new connection, as the
  // kernel does: the old entry goes and the new one chooses its backend again, so it cannot
  // land on an endpoint that has since become terminating.
  const CtState state = CtState(f.state);
  const bool reopened =
      !(ref & 1) && (tcpFlags & (kSyn | kAck)) == kSyn && (state == CtState::TcpTimeWait || state == CtState::TcpClose);
  if (f.expires <= now || reopened) {
    ++stats_.misses;
    return {i, Dir::Original, true};
  }
  ++stats_.hits;
  return {i, (ref & 1) ? Dir::Reply : Dir::Original, false};
}

void Conntrack::update(uint32_t i, Dir d, uint8_t tcpFlags, uint32_t bytes, uint64_t now) {
  FlowHot& f = hot_[i];
  CtState state = nextState(CtState(f.state), d, tcpFlags, f.finDir);
  f.state = uint8_t(state);
  setExpiry(f, now, state);
  const size_t di = size_t(d);
  // 32-bit counters on the hot line; the rare carry goes to the cold part (and wraps there).
  if (++f.packets[di] == 0) ++cold_[i].packetsHi[di];
  const uint32_t before = f.bytes[di];
  f.bytes[di] = before + bytes;
  if (f.bytes[di] < before) cold_[i].bytesHi[di] = uint16_t(cold_[i].bytesHi[di] + 1);
  // Relinked only when the flow changes eviction class (a handshake completing, a FIN): a
  // move per packet would touch two other random flows, costlier than the lookup itself.
  if (uint8_t list = listOf(state); list != listOf(i)) {
    unlink(i);
    f.flags = uint8_t((f.flags & ~kSettled) | (list ? kSettled : 0));
    linkNewest(i);
  }
}

void Conntrack::restore(uint32_t i, CtState state, uint8_t finDir, uint64_t expires, uint64_t lastSeen,
                        uint64_t created, const uint64_t packets[2], const uint64_t bytes[2]) {
  FlowHot& f = hot_[i];
  unlink(i);
  f.state = uint8_t(state);
  f.finDir = finDir;
  f.flags = uint8_t((f.flags & ~kSettled) | (listOf(state) ? kSettled : 0));
  f.expires = expires;
  f.seenBefore = packDuration(expires > lastSeen ? expires - lastSeen : 0);
  cold_[i].created = packDuration(created);
  for (int d = 0; d < 2; ++d) {  // the counters' carries, as update() keeps them (40 and 48 bits)
    f.packets[d] = uint32_t(packets[d]);
    cold_[i].packetsHi[d] = uint8_t(packets[d] >> 32);
    f.bytes[d] = uint32_t(bytes[d]);
    cold_[i].bytesHi[d] = uint16_t(bytes[d] >> 32);
  }
  linkNewest(i);
}

// The oldest expendable flow (half-open, closing, unanswered) goes first; the oldest settled
// one only when there is none.
uint32_t Conntrack::pickVictim() const { return head_[0] != kNone ? head_[0] : head_[1]; }

void Conntrack::linkNewest(uint32_t i) {
  FlowCold& f = cold_[i];
  const uint8_t list = listOf(i);
  uint32_t& head = head_[list];
  uint32_t& tail = tail_[list];
  f.older = tail;
  f.newer = kNone;
  if (tail != kNone) cold_[tail].newer = i;
  tail = i;
  if (head == kNone) head = i;
}

void Conntrack::unlink(uint32_t i) {
  FlowCold& f = cold_[i];
  const uint8_t list = listOf(i);
  if (f.older != kNone)
    cold_[f.older].newer = f.newer;
  else
    head_[list] = f.newer;
  if (f.newer != kNone)
    cold_[f.newer].older = f.older;
  else
    tail_[list] = f.older;
}

}  // namespace svcplane

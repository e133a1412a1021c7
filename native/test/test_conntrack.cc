#include "check.h"
#include "core/conntrack.h"

using namespace svcplane;

namespace {
FlowKey tuple(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t proto = 6) {
  FlowKey k{};
  k.src = IpAddr::v4(src);
  k.dst = IpAddr::v4(dst);
  k.sport = sport;
  k.dport = dport;
  k.proto = proto;
  return k;
}
constexpr uint64_t S = 1000000000ull;
auto noop = [](const Flow&) {};
}  // namespace

TEST_CASE("conntrack: both directions find the flow") {
  Conntrack ct(16, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  FlowKey orig = tuple(0x0a000002, 40000, 0xac1e0029, 80);
  FlowKey reply = tuple(0x0ab40001, 8080, 0x0a000002, 40000);
  uint32_t f = ct.create(orig, ct.hashOf(orig), reply, ct.hashOf(reply), 1, 7, 1, kSyn, 60, 1 * S, noop);
  CHECK(f != Conntrack::kNone);
  CtHit a = ct.lookup(orig, ct.hashOf(orig), 2 * S);
  CHECK_EQ(a.flow, f);
  CHECK(a.dir == Dir::Original);
  CtHit b = ct.lookup(reply, ct.hashOf(reply), 2 * S);
  CHECK_EQ(b.flow, f);
  CHECK(b.dir == Dir::Reply);
  CHECK(ct.lookup(orig.reversed(), ct.hashOf(orig.reversed()), 2 * S).flow == Conntrack::kNone);
}

TEST_CASE("conntrack: TCP handshake, close and timeouts") {
  Conntrack ct(16, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  FlowKey orig = tuple(1, 1000, 2, 80), reply = tuple(3, 8080, 1, 1000);
  uint32_t f = ct.create(orig, ct.hashOf(orig), reply, ct.hashOf(reply), 1, 7, 1, kSyn, 0, 0, noop);
  CHECK(ct.at(f).state == CtState::TcpSynSent);
  CHECK_EQ(ct.at(f).expires, 120 * S);
  ct.update(f, Dir::Reply, kSyn | kAck, 0, 1 * S);
  CHECK(ct.at(f).state == CtState::TcpSynRecv);
  ct.update(f, Dir::Original, kAck, 0, 2 * S);
  CHECK(ct.at(f).state == CtState::TcpEstablished);
  CHECK_EQ(ct.at(f).expires, 2 * S + 86400 * S);
  ct.update(f, Dir::Original, kFin | kAck, 0, 3 * S);
  CHECK(ct.at(f).state == CtState::TcpFinWait);
  ct.update(f, Dir::Reply, kAck, 0, 4 * S);
  CHECK(ct.at(f).state == CtState::TcpCloseWait);
  ct.update(f, Dir::Reply, kFin | kAck, 0, 5 * S);
  CHECK(ct.at(f).state == CtState::TcpLastAck);
  ct.update(f, Dir::Original, kAck, 0, 6 * S);
  CHECK(ct.at(f).state == CtState::TcpTimeWait);
  CHECK_EQ(ct.at(f).expires, 126 * S);
  CHECK(ct.lookup(orig, ct.hashOf(orig), 125 * S).expired == false);
  CHECK(ct.lookup(orig, ct.hashOf(orig), 126 * S).expired == true);
}

TEST_CASE("conntrack: RST closes; UDP becomes a stream after a reply") {
  Conntrack ct(16, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  FlowKey t = tuple(1, 1000, 2, 80), r = tuple(3, 8080, 1, 1000);
  uint32_t f = ct.create(t, ct.hashOf(t), r, ct.hashOf(r), 1, 7, 1, kAck, 0, 0, noop);
  CHECK(ct.at(f).state == CtState::TcpEstablished);  // picked up mid-stream
  ct.update(f, Dir::Reply, kRst, 0, 1 * S);
  CHECK(ct.at(f).state == CtState::TcpClose);
  FlowKey u = tuple(1, 53000, 2, 53, 17), ur = tuple(3, 53, 1, 53000, 17);
  uint32_t g = ct.create(u, ct.hashOf(u), ur, ct.hashOf(ur), 1, 7, 1, 0, 0, 0, noop);
  CHECK(ct.at(g).state == CtState::Udp);
  CHECK_EQ(ct.at(g).expires, 30 * S);
  ct.update(g, Dir::Reply, 0, 0, 1 * S);
  CHECK(ct.at(g).state == CtState::UdpStream);
  CHECK_EQ(ct.at(g).expires, 121 * S);
}

TEST_CASE("conntrack: full table evicts half-open before established, or refuses") {
  Conntrack ct(2, 9, FullPolicy::EvictOldest, CtTimeouts::defaults());
  FlowKey a = tuple(1, 1, 9, 80), b = tuple(2, 2, 9, 80), c = tuple(3, 3, 9, 80);
  uint32_t removedBackend = 0;
  auto onRemove = [&](const Flow& f) { removedBackend = f.backendId; };
  ct.create(a, ct.hashOf(a), tuple(5, 80, 1, 1), ct.hashOf(tuple(5, 80, 1, 1)), 1, 100, 1, kAck, 0, 0,
            onRemove);  // established
  ct.create(b, ct.hashOf(b), tuple(5, 80, 2, 2), ct.hashOf(tuple(5, 80, 2, 2)), 1, 200, 1, kSyn, 0, 1,
            onRemove);  // half-open
  uint32_t f =
      ct.create(c, ct.hashOf(c), tuple(5, 80, 3, 3), ct.hashOf(tuple(5, 80, 3, 3)), 1, 300, 1, kSyn, 0, 2, onRemove);
  CHECK(f != Conntrack::kNone);
  CHECK_EQ(removedBackend, 200u);
  CHECK_EQ(ct.stats().evictions, 1u);
  CHECK(ct.peek(a).flow != Conntrack::kNone);
  CHECK(ct.peek(b).flow == Conntrack::kNone);

  Conntrack full(1, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  full.create(a, full.hashOf(a), tuple(5, 80, 1, 1), full.hashOf(tuple(5, 80, 1, 1)), 1, 1, 1, kSyn, 0, 0, noop);
  CHECK(full.create(b, full.hashOf(b), tuple(5, 80, 2, 2), full.hashOf(tuple(5, 80, 2, 2)), 1, 1, 1, kSyn, 0, 0,
                    noop) == Conntrack::kNone);
  CHECK_EQ(full.stats().refusals, 1u);
}

TEST_CASE("conntrack: incremental gc removes only expired flows") {
  Conntrack ct(64, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  for (uint16_t i = 0; i < 40; ++i) {
    FlowKey k = tuple(1, i, 2, 53, 17);
    ct.create(k, ct.hashOf(k), tuple(3, 53, 1, i, 17), ct.hashOf(tuple(3, 53, 1, i, 17)), 1, 1, 1, 0, 0,
              i < 20 ? 0 : 100 * S, noop);
  }
  uint32_t removed = 0;
  for (int round = 0; round < 4; ++round) removed += ct.gc(50 * S, 16, noop);
  CHECK_EQ(removed, 20u);
  CHECK_EQ(ct.size(), 20u);
  CHECK_EQ(ct.stats().expirations, 20u);
}

namespace {
FlowKey tuple6(uint8_t host, uint16_t sport, uint8_t dhost, uint16_t dport) {
  FlowKey k{};
  k.src.b[0] = 0xfd;
  k.src.b[15] = host;
  k.dst.b[0] = 0xfd;
  k.dst.b[15] = dhost;
  k.sport = sport;
  k.dport = dport;
  k.proto = 6;
  return k;
}
}  // namespace

// Flows whose tuples do not fit the compact IPv4 hot line: IPv6, a masqueraded reply (its
// destination is the NAT address, not the client), a v4-mapped source towards an IPv6
// destination. Each must come back exactly and be found from both directions.
TEST_CASE("conntrack: IPv6, masqueraded and mixed tuples round-trip and are found both ways") {
  struct Case {
    FlowKey orig, reply;
  };
  FlowKey mixed = tuple(0x0a000001, 5000, 0, 80);
  mixed.dst = tuple6(9, 0, 0, 0).src;
  FlowKey mixedReply = mixed.reversed();
  mixedReply.src = tuple6(3, 0, 0, 0).src;
  mixedReply.sport = 8080;
  const Case cases[] = {
      {tuple6(1, 40000, 2, 80), tuple6(3, 8080, 1, 40000)},
      {tuple(0x0a000002, 40000, 0xac1e0029, 80), tuple(0x0ab40001, 8080, 0xc0a80001, 61000)},  // SNAT
      {tuple6(1, 40001, 2, 80), tuple6(3, 8080, 7, 62000)},                                    // SNAT, IPv6
      {mixed, mixedReply},
  };
  Conntrack ct(16, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  for (const Case& c : cases) {
    uint32_t f = ct.create(c.orig, ct.hashOf(c.orig), c.reply, ct.hashOf(c.reply), 1, 7, 1, kSyn, 60, 1 * S, noop);
    CHECK(f != Conntrack::kNone);
    CHECK(ct.at(f).orig == c.orig);
    CHECK(ct.at(f).reply == c.reply);
    CHECK(ct.key(f, Dir::Reply) == c.reply);
    CtHit a = ct.lookup(c.orig, ct.hashOf(c.orig), 2 * S);
    CHECK_EQ(a.flow, f);
    CtHit b = ct.lookup(c.reply, ct.hashOf(c.reply), 2 * S);
    CHECK_EQ(b.flow, f);
    CHECK(b.dir == Dir::Reply);
    CHECK(ct.peek(c.orig.reversed()).flow == Conntrack::kNone);
  }
  // Removing each leaves the others findable (index erase by recomputed hash).
  for (const Case& c : cases) {
    ct.remove(ct.peek(c.orig).flow, noop);
    CHECK(ct.peek(c.orig).flow == Conntrack::kNone);
    CHECK(ct.peek(c.reply).flow == Conntrack::kNone);
  }
  CHECK_EQ(ct.size(), 0u);
}

TEST_CASE("conntrack: hot-line counters carry into the cold part") {
  Conntrack ct(4, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  FlowKey o = tuple(1, 1000, 2, 80), r = tuple(3, 8080, 1, 1000);
  uint32_t f = ct.create(o, ct.hashOf(o), r, ct.hashOf(r), 1, 7, 1, kAck, 0xfffffff0u, 0, noop);
  ct.update(f, Dir::Original, kAck, 0x20, 1);
  CHECK_EQ(ct.at(f).bytes[0], 0x100000010ull);
  CHECK_EQ(ct.at(f).packets[0], 2u);
}

// The index under load: a table filled to capacity with churn (every flow replaced twice over)
// keeps every live flow findable and every removed one gone, through bucket spills.
TEST_CASE("conntrack: full-table churn keeps the bucketed index exact") {
  const uint32_t cap = 4096;
  Conntrack ct(cap, 3, FullPolicy::EvictOldest, CtTimeouts::defaults());
  auto orig = [](uint32_t k) { return tuple(0x0b000000 + (k >> 14), uint16_t(1024 + (k & 0x3fff)), 0xac100001, 80); };
  auto reply = [](uint32_t k) {
    return tuple(0x0a800001, 8080, 0x0b000000 + (k >> 14), uint16_t(1024 + (k & 0x3fff)));
  };
  const uint32_t total = cap * 3;
  for (uint32_t k = 0; k < total; ++k) {
    FlowKey o = orig(k), r = reply(k);
    CHECK(ct.create(o, ct.hashOf(o), r, ct.hashOf(r), 1, 1, 1, kSyn, 0, k, noop) != Conntrack::kNone);
  }
  CHECK_EQ(ct.size(), cap);
  uint32_t live = 0, gone = 0;
  for (uint32_t k = 0; k < total; ++k) {
    bool expectLive = k >= total - cap;
    bool o = ct.peek(orig(k)).flow != Conntrack::kNone, r = ct.peek(reply(k)).flow != Conntrack::kNone;
    live += expectLive && o && r;
    gone += !expectLive && !o && !r;
  }
  CHECK_EQ(live, cap);
  CHECK_EQ(gone, total - cap);
}

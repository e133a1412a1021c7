// The compact flow layout: the packed times and counters round-trip, the index keeps tags and
// references apart at any table size, and an IPv4 flow stays within its byte budget.
#include "check.h"
#include "core/bucket_index.h"
#include "core/conntrack.h"
#include "core/packed_duration.h"

using namespace svcplane;

namespace {
FlowKey tuple(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport) {
  FlowKey k{};
  k.src = IpAddr::v4(src);
  k.dst = IpAddr::v4(dst);
  k.sport = sport;
  k.dport = dport;
  k.proto = 6;
  return k;
}
constexpr uint64_t S = 1000000000;
auto noop = [](const Flow&) {};
}  // namespace

TEST_CASE("packed duration: exact below a second and for whole ms, seconds, and close beyond") {
  for (uint64_t ns : {uint64_t(0), uint64_t(1), uint64_t(999999999), uint64_t(1073741823)})
    CHECK_EQ(unpackDuration(packDuration(ns)), ns);
  for (uint64_t ns :
       {uint64_t(1500) * 1000000, 86400 * S, 432000 * S, uint64_t(1234567) * 1000, uint64_t(4) * 365 * 86400 * S})
    CHECK_EQ(unpackDuration(packDuration(ns)), ns);
  // An odd nanosecond count past a second keeps its leading digits.
  const uint64_t odd = 3 * 3600 * S + 123456789;
  const uint64_t back = unpackDuration(packDuration(odd));
  CHECK(back <= odd && odd - back < 1000000);
  // Beyond 34 years it saturates rather than wrapping.
  CHECK(unpackDuration(packDuration(UINT64_MAX)) > 30ull * 365 * 86400 * S);
}

TEST_CASE("conntrack layout: created, last seen and expiry read back exactly") {
  Conntrack ct(8, 3, FullPolicy::Refuse, CtTimeouts::defaults());
  FlowKey o = tuple(1, 1000, 2, 80), r = tuple(3, 8080, 1, 1000);
  uint32_t f = ct.create(o, ct.hashOf(o), r, ct.hashOf(r), 1, 7, 1, kSyn, 60, 5 * S + 17, noop);
  CHECK_EQ(ct.at(f).created, 5 * S + 17 - (5 * S + 17) % 1000);  // past a second: µs
  CHECK_EQ(ct.at(f).lastSeen, 5 * S + 17);
  CHECK_EQ(ct.at(f).expires, 125 * S + 17);
  ct.update(f, Dir::Reply, kSyn | kAck, 60, 6 * S + 5);
  ct.update(f, Dir::Original, kAck, 60, 7 * S + 9);
  CHECK(ct.at(f).state == CtState::TcpEstablished);
  CHECK_EQ(ct.at(f).lastSeen, 7 * S + 9);
  CHECK_EQ(ct.at(f).expires, 86407 * S + 9);
  // A timeout changed later applies from the next packet and leaves last seen exact.
  ct.timeouts().ns[size_t(CtState::TcpEstablished)] = 3 * S;
  CHECK_EQ(ct.at(f).lastSeen, 7 * S + 9);
  ct.update(f, Dir::Original, kAck, 60, 8 * S);
  CHECK_EQ(ct.at(f).lastSeen, 8 * S);
  CHECK_EQ(ct.at(f).expires, 11 * S);
}

TEST_CASE("conntrack layout: counters carry to 40-bit packets and 48-bit bytes") {
  Conntrack ct(4, 9, FullPolicy::Refuse, CtTimeouts::defaults());
  FlowKey o = tuple(1, 1000, 2, 80), r = tuple(3, 8080, 1, 1000);
  uint32_t f = ct.create(o, ct.hashOf(o), r, ct.hashOf(r), 1, 7, 1, kAck, 0, 0, noop);
  for (int i = 0; i < 3; ++i) ct.update(f, Dir::Reply, kAck, 0xffffffffu, 1);
  CHECK_EQ(ct.at(f).bytes[1], 3 * 0xffffffffull);
  CHECK_EQ(ct.at(f).packets[1], 3u);
  CHECK_EQ(ct.at(f).packets[0], 1u);
}

TEST_CASE("bucket index: tags and references stay apart at every table size") {
  for (uint32_t maxRefs : {2u, 3u, 64u, 1000u, 1u << 16, (1u << 16) + 1}) {
    BucketIndex idx(maxRefs);
    // The largest refs, under hashes whose low bits would be tags: each found exactly once.
    const uint32_t n = maxRefs < 512 ? maxRefs : 512;
    for (uint32_t i = 0; i < n; ++i) idx.insert(0xffffffffu - i * 2654435761u, maxRefs - 1 - i);
    for (uint32_t i = 0; i < n; ++i) {
      const uint32_t ref = maxRefs - 1 - i, hash = 0xffffffffu - i * 2654435761u;
      CHECK_EQ(idx.find(hash, [&](uint32_t r) { return r == ref; }), ref);
    }
    for (uint32_t i = 0; i < n; ++i) CHECK(idx.erase(0xffffffffu - i * 2654435761u, maxRefs - 1 - i));
    CHECK_EQ(idx.find(0xffffffffu, [](uint32_t) { return true; }), BucketIndex::kEmpty);
  }
}

TEST_CASE("conntrack layout: an IPv4 flow costs at most 96 bytes with its index slots") {
  for (uint32_t cap : {1000u, 65536u, 1000000u, 1u << 25}) CHECK(Conntrack::bytesFor(cap) <= uint64_t(cap) * 96);
  CHECK(Conntrack::bytesFor(1000000) > 1000000ull * 90);  // and the budget is what it says
}

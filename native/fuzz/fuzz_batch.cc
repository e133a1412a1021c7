// libFuzzer harness of the batch entry points with the control plane moving underneath:
// the input is a program of operations (upsert / delete backends and services, decideBatch
// over fuzzed tuples, processPackets over batches of frames built from fuzzed tuples, gc,
// clock jumps, flushes, packet configuration) run on two dataplanes in lockstep, built
// alike. Dataplane A takes every batch in one call; dataplane B takes the same flows and
// packets one at a time. The harness traps when
//  - the two disagree on any decision, verdict, reason, rewritten byte or map statistic
//    (a batch must equal the sequence of single calls);
//  - a map invariant breaks after any operation: counts, links between services, frontends,
//    revnat, backends, conntrack, affinity and the NAT port map (checked on both);
//  - a refused control-plane update changed anything (digest before == digest after);
//  - a decision is impossible for the state it was made in: a new flow sent to a backend that
//    is not an active member of the service (a half-applied service), a forward whose address
//    is not the backend's, a reply with no service, a pass with a service;
//  - a TCP/UDP checksum that was valid before a rewrite is not valid after it.
// Small capacities (from the input) keep every map near full so that eviction, refusal,
// NAT port exhaustion and slot reuse are reached all the time.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/dataplane.h"
#include "core/packet_parse.h"

using namespace svcplane;

namespace {

constexpr uint64_t kSec = 1000000000ull;

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_batch invariant violated: %s\n", what);
  __builtin_trap();
}

IpAddr v4(uint32_t a) { return IpAddr::v4(a); }
IpAddr v6(uint16_t first, uint16_t last) {
  IpAddr x{};
  x.b[0] = uint8_t(first >> 8);
  x.b[1] = uint8_t(first);
  x.b[14] = uint8_t(last >> 8);
  x.b[15] = uint8_t(last);
  return x;
}

// A small pool, so that clients, frontends and backends meet (hairpins, reply-tuple clashes).
const IpAddr kAddrs[16] = {
    v4(0xAC1E0001),   v4(0xAC1E0002),         v4(0xAC1E0003),  // 172.30.0.1-3: service addresses
    v4(0x0A010001),   v4(0x0A010002),         v4(0x0A010003),  // 10.1.0.1-3: backends (pods)
    v4(0xC0A80002),   v4(0xC0A8010A),         v4(0x0A000005),  // node 192.168.0.2, client, pod client
    v4(0x7F000001),   v4(0x0A010001 + 0x100),                  // loopback, another pod
    v6(0xfd00, 0x41), v6(0xfd01, 1),          v6(0xfd01, 2),  v6(0x2001, 0x10), v6(0x2001, 2),
};
const uint16_t kPorts[8] = {80, 443, 8080, 53, 40000, 40001, 60000, 1024};

IpAddr pickAddr(FuzzedDataProvider& in) { return kAddrs[in.ConsumeIntegral<uint8_t>() % 16]; }
uint16_t pickPort(FuzzedDataProvider& in) {
  uint8_t b = in.ConsumeIntegral<uint8_t>();
  return b < 240 ? kPorts[b % 8] : in.ConsumeIntegral<uint16_t>();
}
uint8_t pickProto(FuzzedDataProvider& in) {
  static const uint8_t p[8] = {6, 6, 6, 17, 17, 132, 1, 0};
  return p[in.ConsumeIntegral<uint8_t>() % 8];
}

// ---- invariants -----------------------------------------------------------------------

bool containsId(const std::vector<uint32_t>& v, uint32_t id) { return std::find(v.begin(), v.end(), id) != v.end(); }

void checkInvariants(Dataplane& dp) {
  auto& svcs = dp.services();
  auto& fes = dp.frontends();
  auto& bes = dp.backends();
  auto& rn = dp.revnat();
  auto& aff = dp.affinity();
  auto& ct = dp.conntrack();
  uint32_t nSvc = 0, nFe = 0;
  for (uint32_t i = 0; i < svcs.capacity(); ++i) {
    auto& e = svcs.at(i);
    if (!e.used) continue;
    ++nSvc;
    const ServiceRec& s = e.value;
    if (!s.set) fail("service without a backend set");
    if (!s.set->scheduler) fail("service without a scheduler");
    for (const FrontendKey& k : s.frontends) {
      ++nFe;
      const FrontendRec* fe = fes.peek(k);
      if (!fe) fail("service frontend missing from the frontends map");
      if (fe->serviceId != e.key) fail("frontend points at another service");
      const RevNatRec* r = rn.peek(fe->revNatId);
      if (!r) fail("frontend without its revnat entry");
      if (r->addr != k.addr || r->port != k.port) fail("revnat entry differs from its frontend");
    }
    const auto& ids = s.set->allIds;
    if (!std::is_sorted(ids.begin(), ids.end()) || std::adjacent_find(ids.begin(), ids.end()) != ids.end())
      fail("backend set not sorted and unique");
    size_t active = 0;
    for (uint32_t id : ids) {
      BackendRec* b = bes.peek(id);
      if (!b) fail("service lists a backend that does not exist");
      if (!containsId(b->services, e.key)) fail("backend does not list a service that lists it");
      if (b->state == BackendState::Active) {
        if (active >= s.set->active.size() || s.set->active[active].backendId != id) fail("active list out of step");
        if (s.set->active[active].addr != b->addr || s.set->active[active].port != b->port) fail("active entry stale");
        ++active;
      }
    }
    if (active != s.set->active.size() || active != s.set->activeSorted.size()) fail("active count wrong");
  }
  if (nSvc != svcs.size()) fail("services size");
  if (nFe != fes.size()) fail("frontends size != sum of service frontends");
  if (rn.size() != fes.size()) fail("revnat size != frontends size");
  uint32_t n = 0;
  for (uint32_t i = 0; i < fes.capacity(); ++i) {
    auto& e = fes.at(i);
    if (!e.used) continue;
    ++n;
    ServiceRec* s = svcs.peek(e.value.serviceId);
    if (!s) fail("frontend of a missing service");
    if (std::find(s->frontends.begin(), s->frontends.end(), e.key) == s->frontends.end())
      fail("frontend not in its service");
  }
  if (n != fes.size()) fail("frontends used count");

  std::vector<uint32_t> conns(bes.capacity(), 0);
  uint32_t nFlows = 0, nSnat = 0;
  for (uint32_t i = 0; i < ct.capacity(); ++i) {
    const Flow& f = ct.at(i);
    if (!f.used) continue;
    ++nFlows;
    if (!svcs.peek(f.serviceId)) fail("flow of a missing service");
    uint32_t bi = bes.findIndex(f.backendId);
    if (bi == FixedMap<uint32_t, BackendRec>::kNone) fail("flow to a missing backend");
    ++conns[bi];
    const BackendRec& b = bes.at(bi).value;
    if (f.reply.src != b.addr || f.reply.sport != b.port) fail("flow's reply tuple is not its backend");
    if (const RevNatRec* r = rn.peek(f.revNatId); r && (r->addr != f.orig.dst || r->port != f.orig.dport))
      fail("flow's revnat entry names another frontend");
    if (ct.peek(f.orig).flow == Conntrack::kNone) fail("flow not found by its original tuple");
    if (ct.peek(f.reply).flow == Conntrack::kNone) fail("flow not found by its reply tuple");
    if (f.snat) {
      ++nSnat;
      NatKey k{};
      k.nat = f.reply.dst;
      k.natPort = f.reply.dport;
      k.peer = f.reply.src;
      k.peerPort = f.reply.sport;
      k.proto = f.reply.proto;
      const NatRec* r = dp.natPorts().map().peek(k);
      if (!r) fail("masqueraded flow without its NAT port");
      if (r->flow != i) fail("NAT port bound to another flow");
    }
  }
  if (nFlows != ct.size()) fail("conntrack size != flows in use");
  if (nSnat != dp.natPorts().map().size()) fail("NAT port map size != masqueraded flows");
  for (uint32_t i = 0; i < bes.capacity(); ++i) {
    auto& e = bes.at(i);
    if (!e.used) continue;
    if (e.value.activeConns != conns[i]) fail("backend activeConns != its flows");
    for (size_t a = 0; a < e.value.services.size(); ++a) {
      ServiceRec* s = svcs.peek(e.value.services[a]);
      if (!s || !s->set || !std::binary_search(s->set->allIds.begin(), s->set->allIds.end(), e.key))
        fail("backend lists a service that does not list it");
      for (size_t b = 0; b < a; ++b)
        if (e.value.services[a] == e.value.services[b]) fail("backend lists a service twice");
    }
  }
  uint32_t nAff = 0;
  for (uint32_t i = 0; i < aff.capacity(); ++i) {
    auto& e = aff.at(i);
    if (!e.used) continue;
    ++nAff;
    if (!svcs.peek(e.key.serviceId)) fail("affinity of a missing service");
    if (!bes.peek(e.value.backendId)) fail("affinity to a missing backend");
  }
  if (nAff != aff.size()) fail("affinity size");
  if (ct.size() > ct.capacity() || aff.size() > aff.capacity() ||
      dp.natPorts().map().size() > dp.natPorts().map().capacity())
    fail("a map above its capacity");
}

// Everything the control path owns, as bytes: a refused update must leave it identical.
std::string controlDigest(Dataplane& dp) {
  std::string d;
  auto put = [&](const void* p, size_t n) { d.append(static_cast<const char*>(p), n); };
  auto& svcs = dp.services();
  for (uint32_t i = 0; i < svcs.capacity(); ++i) {
    auto& e = svcs.at(i);
    if (!e.used) continue;
    put(&e.key, 4);
    put(&e.value.kind, 1);
    put(&e.value.affinityTimeoutNs, 8);
    put(&e.value.emptyVerdict, 1);
    for (auto& k : e.value.frontends) put(&k, sizeof k);
    for (auto& c : e.value.sourceRanges) put(&c, sizeof c);
    for (uint32_t id : e.value.set->allIds) put(&id, 4);
    for (uint32_t id : e.value.set->activeSorted) put(&id, 4);
    d += '|';
  }
  auto& fes = dp.frontends();
  for (uint32_t i = 0; i < fes.capacity(); ++i) {
    auto& e = fes.at(i);
    if (!e.used) continue;
    put(&e.key, sizeof e.key);
    put(&e.value.serviceId, 4);
    put(&e.value.revNatId, 4);
    put(&e.value.checkSourceRanges, 1);
    put(&e.value.masq, 1);
  }
  auto& bes = dp.backends();
  for (uint32_t i = 0; i < bes.capacity(); ++i) {
    auto& e = bes.at(i);
    if (!e.used) continue;
    put(&e.key, 4);
    put(&e.value.addr, 16);
    put(&e.value.port, 2);
    put(&e.value.state, 1);
    put(&e.value.weight, 4);
    put(&e.value.activeConns, 4);
    for (uint32_t s : e.value.services) put(&s, 4);
  }
  auto& rn = dp.revnat();
  for (uint32_t i = 0; i < rn.capacity(); ++i)
    if (rn.at(i).used) put(&rn.at(i).key, 4);
  uint32_t sizes[] = {dp.conntrack().size(), dp.affinity().size(), dp.natPorts().map().size()};
  put(sizes, sizeof sizes);
  return d;
}

void sameStats(const MapStats& a, const MapStats& b) {
  if (std::memcmp(&a, &b, sizeof a) != 0) fail("batch and single-call map statistics differ");
}

void sameState(Dataplane& a, Dataplane& b) {
  if (controlDigest(a) != controlDigest(b)) fail("batch and single-call dataplanes diverged (control maps)");
  sameStats(a.conntrack().stats(), b.conntrack().stats());
  sameStats(a.affinity().stats(), b.affinity().stats());
  sameStats(a.natPorts().map().stats(), b.natPorts().map().stats());
  if (std::memcmp(&a.counters(), &b.counters(), sizeof(DataplaneCounters)) != 0) fail("decision counters differ");
  for (uint32_t i = 0; i < a.conntrack().capacity(); ++i) {
    const Flow& x = a.conntrack().at(i);
    const Flow& y = b.conntrack().at(i);
    if (x.used != y.used) fail("conntrack slots differ");
    if (x.used && (!(x.orig == y.orig) || !(x.reply == y.reply) || x.state != y.state || x.expires != y.expires ||
                   x.packets[0] != y.packets[0] || x.packets[1] != y.packets[1]))
      fail("conntrack entries differ");
  }
}

// A decision must be possible in the state it was made in (no control operation runs inside a
// batch, so the state after the batch is the state every decision of it saw).
void checkDecision(Dataplane& dp, const FlowInput& in, const Decision& d, bool tupleApi) {
  if (uint8_t(d.verdict) >= kVerdicts) fail("verdict out of range");
  if (tupleApi && uint8_t(d.reason) >= kReasons) fail("tuple reason out of range");
  switch (d.verdict) {
    case Verdict::Forward: {
      BackendRec* b = dp.backends().peek(d.backendId);
      if (!b) fail("forward to a backend that does not exist");
      if (d.addr != b->addr || d.port != b->port) fail("forward address is not the backend's");
      ServiceRec* s = dp.services().peek(d.serviceId);
      if (!s) fail("forward for a service that does not exist");
      if (!d.established) {
        if (b->state != BackendState::Active) fail("new flow to a backend that is not active");
        if (!s->set->isActive(d.backendId)) fail("new flow to a backend outside its service's active set");
        const FrontendRec* fe =
            dp.frontends().peek(FrontendKey{in.key.dst, in.key.dport, in.key.proto, uint8_t(in.scope)});
        if (!fe)
          fe = dp.frontends().peek(FrontendKey{in.key.dst, in.key.dport, in.key.proto, uint8_t(1 - uint8_t(in.scope))});
        if (!fe || fe->serviceId != d.serviceId) fail("new flow for a service that does not own the frontend");
      }
      break;
    }
    case Verdict::Reply:
      if (!dp.services().peek(d.serviceId)) fail("reply for a service that does not exist");
      break;
    case Verdict::Pass:
      if (tupleApi && (d.reason != Reason::NoFrontend || d.serviceId != 0)) fail("pass with a service");
      break;
    default:
      if (tupleApi && d.reason == Reason::None) fail("reject/drop without a reason");
      break;
  }
}

// ---- packets ----------------------------------------------------------------------------

uint32_t sum16(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  return s;
}
uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return uint16_t(s);
}

// A raw-IP packet (no link header) of the tuple, with correct IPv4 header and L4 checksums.
std::vector<uint8_t> buildPacket(const FlowKey& k, uint8_t flags, uint8_t payload, bool udpZeroSum) {
  bool is4 = k.src.isV4() && k.dst.isV4();
  std::vector<uint8_t> l4;
  if (k.proto == 6)
    l4.assign(20, 0);
  else if (k.proto == 17)
    l4.assign(8, 0);
  else if (k.proto == 132)
    l4.assign(12, 0);
  else
    l4.assign(8, 0);
  l4[0] = uint8_t(k.sport >> 8), l4[1] = uint8_t(k.sport), l4[2] = uint8_t(k.dport >> 8), l4[3] = uint8_t(k.dport);
  for (uint8_t i = 0; i < payload; ++i) l4.push_back(uint8_t(i * 7 + 1));
  if (k.proto == 6) l4[12] = 0x50, l4[13] = flags, l4[14] = 0xff, l4[15] = 0xff;
  if (k.proto == 17) l4[4] = uint8_t(l4.size() >> 8), l4[5] = uint8_t(l4.size());
  std::vector<uint8_t> out;
  if (is4) {
    out.assign(20, 0);
    uint16_t total = uint16_t(20 + l4.size());
    out[0] = 0x45, out[2] = uint8_t(total >> 8), out[3] = uint8_t(total), out[4] = 0x12, out[5] = 0x34, out[8] = 64,
    out[9] = k.proto;
    std::memcpy(&out[12], k.src.b + 12, 4);
    std::memcpy(&out[16], k.dst.b + 12, 4);
    uint16_t c = ~fold(sum16(out.data(), 20));
    out[10] = uint8_t(c >> 8), out[11] = uint8_t(c);
  } else {
    out.assign(40, 0);
    out[0] = 0x60, out[4] = uint8_t(l4.size() >> 8), out[5] = uint8_t(l4.size()), out[6] = k.proto, out[7] = 64;
    std::memcpy(&out[8], k.src.b, 16);
    std::memcpy(&out[24], k.dst.b, 16);
  }
  size_t l4off = out.size();
  out.insert(out.end(), l4.begin(), l4.end());
  if ((k.proto == 6 || k.proto == 17) && !(k.proto == 17 && is4 && udpZeroSum)) {
    uint32_t s = is4 ? sum16(&out[12], 8) : sum16(&out[8], 32);
    s += k.proto + uint32_t(l4.size());
    s = sum16(&out[l4off], l4.size(), s);
    uint16_t c = ~fold(s);
    if (c == 0 && k.proto == 17) c = 0xffff;
    size_t at = l4off + (k.proto == 6 ? 16 : 6);
    out[at] = uint8_t(c >> 8), out[at + 1] = uint8_t(c);
  }
  return out;
}

// True when the packet's IPv4 header checksum and TCP/UDP checksum verify (raw IP, no options).
bool checksumsValid(const std::vector<uint8_t>& p) {
  if (p.size() < 20) return true;
  bool is4 = (p[0] >> 4) == 4;
  size_t l4off = is4 ? 20 : 40;
  uint8_t proto = is4 ? p[9] : p[6];
  if (is4 && fold(sum16(p.data(), 20)) != 0xffff) return false;
  if (proto != 6 && proto != 17) return true;
  size_t len = p.size() - l4off;
  if (proto == 17 && is4 && p[l4off + 6] == 0 && p[l4off + 7] == 0) return true;
  uint32_t s = is4 ? sum16(&p[12], 8) : sum16(&p[8], 32);
  s += proto + uint32_t(len);
  s = sum16(&p[l4off], len, s);
  return fold(s) == 0xffff;
}

// ---- the program ------------------------------------------------------------------------

struct World {
  std::unique_ptr<Dataplane> a, b;
  uint64_t now = 1000 * kSec;
};

DataplaneConfig configFrom(FuzzedDataProvider& in) {
  DataplaneConfig c;
  c.maxServices = 1 + in.ConsumeIntegral<uint8_t>() % 6;
  c.maxFrontends = 1 + in.ConsumeIntegral<uint8_t>() % 12;
  c.maxBackends = 1 + in.ConsumeIntegral<uint8_t>() % 10;
  c.maxFlows = 1 + in.ConsumeIntegral<uint8_t>() % 48;
  c.maxAffinity = 1 + in.ConsumeIntegral<uint8_t>() % 12;
  c.maxNatPorts = 1 + in.ConsumeIntegral<uint8_t>() % 12;
  c.maxFragments = 1 + in.ConsumeIntegral<uint8_t>() % 4;
  c.conntrackPolicy = in.ConsumeBool() ? FullPolicy::Refuse : FullPolicy::EvictOldest;
  c.affinityPolicy = in.ConsumeBool() ? FullPolicy::Refuse : FullPolicy::EvictOldest;
  c.seed = in.ConsumeIntegral<uint64_t>() | 1;
  c.rngSeed = 0;
  static const uint32_t primes[] = {7, 13, 251, 1021};
  c.sched.maglevTableSize = primes[in.ConsumeIntegral<uint8_t>() % 4];
  if (in.ConsumeBool()) {
    // Short timeouts so that clock jumps expire flows and affinity mid-program.
    for (auto& t : c.timeouts.ns) t = (1 + in.ConsumeIntegral<uint8_t>() % 60) * kSec;
  }
  return c;
}

BackendSpec backendFrom(FuzzedDataProvider& in) {
  BackendSpec s{};
  uint8_t id = in.ConsumeIntegral<uint8_t>();
  s.id = id < 250 ? 1 + id % 10 : 0;
  s.addr = pickAddr(in);
  s.port = pickPort(in);
  s.state = BackendState(in.ConsumeIntegral<uint8_t>() % 3);
  uint8_t w = in.ConsumeIntegral<uint8_t>();
  s.weight = w < 250 ? 1 + w % 4 : (w == 250 ? 0 : 70000);
  s.nodeLocal = in.ConsumeBool();
  s.zone = in.ConsumeIntegral<uint8_t>() % 3;
  return s;
}

ServiceSpec serviceFrom(FuzzedDataProvider& in) {
  ServiceSpec s{};
  uint8_t id = in.ConsumeIntegral<uint8_t>();
  s.id = id < 250 ? 1 + id % 7 : 0;
  s.kind = SchedulerKind(in.ConsumeIntegral<uint8_t>() % 9);  // 8 is not a scheduler
  uint8_t aff = in.ConsumeIntegral<uint8_t>();
  s.affinityTimeoutNs = aff < 128 ? 0 : uint64_t(aff - 127) * kSec;
  uint8_t ev = in.ConsumeIntegral<uint8_t>();
  s.emptyVerdict = ev < 120 ? Verdict::Reject : ev < 250 ? Verdict::Drop : Verdict(ev % 5);
  uint8_t nfe = in.ConsumeIntegral<uint8_t>() % 5;
  for (uint8_t i = 0; i < nfe; ++i) {
    FrontendSpec f{};
    f.key.addr = pickAddr(in);
    f.key.port = pickPort(in);
    f.key.proto = pickProto(in);
    f.key.scope = in.ConsumeIntegral<uint8_t>() % 2;
    f.checkSourceRanges = in.ConsumeBool();
    f.masquerade = MasqPolicy(in.ConsumeIntegral<uint8_t>() % 5);  // 4 is not a policy
    s.frontends.push_back(f);
  }
  uint8_t nbe = in.ConsumeIntegral<uint8_t>() % 7;
  for (uint8_t i = 0; i < nbe; ++i) s.backendIds.push_back(in.ConsumeIntegral<uint8_t>() % 12);
  uint8_t nsr = in.ConsumeIntegral<uint8_t>() % 3;
  for (uint8_t i = 0; i < nsr; ++i) {
    Cidr c{};
    c.net = pickAddr(in);
    uint8_t bits = in.ConsumeIntegral<uint8_t>();
    c.bits = c.net.isV4() ? uint8_t(96 + bits % 33) : uint8_t(bits % 129);
    s.sourceRanges.push_back(c);
  }
  return s;
}

// A tuple: fresh from the pools, or one of a tracked flow's two directions (a client's next
// packet or a backend's reply), so established paths are exercised as much as new ones.
FlowInput flowFrom(FuzzedDataProvider& in, Dataplane& dp) {
  FlowInput f{};
  uint8_t how = in.ConsumeIntegral<uint8_t>();
  bool reused = false;
  if (how >= 128 && dp.conntrack().size() > 0) {
    uint32_t start = in.ConsumeIntegral<uint8_t>() % dp.conntrack().capacity();
    for (uint32_t n = 0; n < dp.conntrack().capacity(); ++n) {
      const Flow& fl = dp.conntrack().at((start + n) % dp.conntrack().capacity());
      if (!fl.used) continue;
      f.key = (how & 1) ? fl.reply : fl.orig;
      reused = true;
      break;
    }
  }
  if (!reused) {
    f.key.src = pickAddr(in);
    f.key.dst = pickAddr(in);
    f.key.sport = pickPort(in);
    f.key.dport = pickPort(in);
    f.key.proto = pickProto(in);
  }
  f.scope = Scope(in.ConsumeIntegral<uint8_t>() % 2);
  static const uint8_t flags[8] = {0x02, 0x12, 0x10, 0x11, 0x04, 0x00, 0x18, 0x01};
  f.tcpFlags = flags[in.ConsumeIntegral<uint8_t>() % 8];
  f.bytes = in.ConsumeIntegral<uint16_t>();
  return f;
}

void sameDecision(const Decision& x, const Decision& y) {
  if (x.verdict != y.verdict || x.reason != y.reason || x.established != y.established ||
      x.affinityHit != y.affinityHit || x.serviceId != y.serviceId || x.backendId != y.backendId || x.addr != y.addr ||
      x.port != y.port)
    fail("decideBatch differs from decide() one flow at a time");
}

void opDecideBatch(World& w, FuzzedDataProvider& in) {
  uint32_t n = 1 + in.ConsumeIntegral<uint8_t>() % 48;
  std::vector<FlowInput> flows;
  for (uint32_t i = 0; i < n && in.remaining_bytes(); ++i) flows.push_back(flowFrom(in, *w.a));
  if (flows.empty()) return;
  std::vector<Decision> da(flows.size()), db(flows.size());
  w.a->decideBatch(flows.data(), uint32_t(flows.size()), w.now, da.data());
  for (size_t i = 0; i < flows.size(); ++i) w.b->decide(flows[i], w.now, db[i]);
  for (size_t i = 0; i < flows.size(); ++i) {
    sameDecision(da[i], db[i]);
    checkDecision(*w.a, flows[i], da[i], true);
  }
}

void opPackets(World& w, FuzzedDataProvider& in) {
  uint32_t n = 1 + in.ConsumeIntegral<uint8_t>() % 24;
  PacketOptions o;
  o.link = LinkType::Raw;
  o.dir = in.ConsumeBool() ? PacketDirection::FromBackend : PacketDirection::ToService;
  o.fromNode = in.ConsumeIntegral<uint8_t>() < 40;
  o.reject = RejectMode(in.ConsumeIntegral<uint8_t>() % 3);
  std::vector<std::vector<uint8_t>> pa, pb;
  std::vector<bool> validBefore;
  for (uint32_t i = 0; i < n && in.remaining_bytes(); ++i) {
    FlowInput f = flowFrom(in, *w.a);
    if (f.key.src.isV4() != f.key.dst.isV4()) f.key.dst = f.key.src.isV4() ? kAddrs[0] : kAddrs[11];
    uint8_t extra = in.ConsumeIntegral<uint8_t>();
    auto p = buildPacket(f.key, f.tcpFlags, extra % 9, extra >= 200);
    validBefore.push_back(checksumsValid(p));
    pa.push_back(p);
    pb.push_back(p);
  }
  if (pa.empty()) return;
  size_t m = pa.size();
  // Exact-size heap copies, so that any read or write past a packet is caught.
  std::vector<std::unique_ptr<uint8_t[]>> ha(m), hb(m);
  std::vector<PacketRef> ra(m), rb(m);
  for (size_t i = 0; i < m; ++i) {
    ha[i].reset(new uint8_t[pa[i].size()]);
    hb[i].reset(new uint8_t[pb[i].size()]);
    std::memcpy(ha[i].get(), pa[i].data(), pa[i].size());
    std::memcpy(hb[i].get(), pb[i].data(), pb[i].size());
    ra[i] = PacketRef{ha[i].get(), uint32_t(pa[i].size())};
    rb[i] = PacketRef{hb[i].get(), uint32_t(pb[i].size())};
  }
  std::vector<uint8_t> va(m), rsa(m), vb(m), rsb(m);
  std::vector<uint8_t> replyA(4096), replyB(4096);
  std::vector<uint32_t> offA(m), lenA(m), offB(m), lenB(m);
  ReplySink sa{replyA.data(), uint32_t(replyA.size()), 0, offA.data(), lenA.data()};
  PacketOptions oa = o;
  oa.replies = &sa;
  w.a->processPackets(ra.data(), uint32_t(m), oa, w.now, va.data(), rsa.data());
  for (size_t i = 0; i < m; ++i) {
    uint32_t off = 0, len = 0;
    ReplySink sb{replyB.data(), uint32_t(replyB.size()), 0, &off, &len};
    PacketOptions ob = o;
    ob.replies = &sb;
    w.b->processPackets(&rb[i], 1, ob, w.now, &vb[i], &rsb[i]);
    if (va[i] != vb[i] || rsa[i] != rsb[i]) fail("processPackets batch verdict differs from one packet at a time");
    if (std::memcmp(ha[i].get(), hb[i].get(), pa[i].size()) != 0)
      fail("processPackets batch rewrote a packet differently");
    if (lenA[i] != len || (len && std::memcmp(replyA.data() + offA[i], replyB.data() + off, len) != 0))
      fail("reject reply differs between batch and single packet");
    if (va[i] > 4 || rsa[i] >= kPacketReasons) fail("packet verdict or reason out of range");
    if ((va[i] == 1 || va[i] == 2) && validBefore[i]) {
      std::vector<uint8_t> after(ha[i].get(), ha[i].get() + pa[i].size());
      if (!checksumsValid(after)) fail("a rewrite broke a valid checksum");
    }
  }
  if (sa.used > replyA.size()) fail("reply sink overflow");
}

void opPacketConfig(World& w, FuzzedDataProvider& in) {
  PacketConfig pc;
  uint8_t nn = in.ConsumeIntegral<uint8_t>() % 3;
  for (uint8_t i = 0; i < nn; ++i) pc.nodeAddrs.push_back(pickAddr(in));
  uint8_t np = in.ConsumeIntegral<uint8_t>() % 3;
  for (uint8_t i = 0; i < np; ++i) {
    Cidr c{};
    c.net = pickAddr(in);
    uint8_t bits = in.ConsumeIntegral<uint8_t>();
    c.bits = c.net.isV4() ? uint8_t(96 + bits % 33) : uint8_t(bits % 129);
    pc.podCidrs.push_back(c);
  }
  pc.masqueradeAll = in.ConsumeBool();
  pc.hasMasq4 = in.ConsumeBool();
  pc.hasMasq6 = in.ConsumeBool();
  pc.masq4 = kAddrs[6];
  pc.masq6 = kAddrs[15];
  if (in.ConsumeIntegral<uint8_t>() == 0) std::swap(pc.masq4, pc.masq6);  // refused: wrong family
  uint16_t lo = pickPort(in), span = in.ConsumeIntegral<uint8_t>() % 8;
  pc.natPortLow = lo;
  pc.natPortHigh = uint16_t(std::min<uint32_t>(65535, uint32_t(lo) + span));
  if (in.ConsumeIntegral<uint8_t>() == 0) pc.natPortLow = 0;  // refused
  std::string before = controlDigest(*w.a);
  Result ra = w.a->setPacketConfig(pc), rb = w.b->setPacketConfig(pc);
  if (ra.ok() != rb.ok()) fail("packet config accepted by one dataplane only");
  if (!ra.ok() && controlDigest(*w.a) != before) fail("a refused packet config changed something");
}

void run(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  World w;
  DataplaneConfig cfg = configFrom(in);
  w.a = std::make_unique<Dataplane>(cfg);
  w.b = std::make_unique<Dataplane>(cfg);
  uint32_t ops = 0;
  while (in.remaining_bytes() && ops++ < 200) {
    uint8_t op = in.ConsumeIntegral<uint8_t>() % 13;
    switch (op) {
      case 0:
      case 1: {
        BackendSpec s = backendFrom(in);
        std::string before = controlDigest(*w.a);
        Result ra = w.a->upsertBackend(s), rb = w.b->upsertBackend(s);
        if (ra.status != rb.status) fail("upsertBackend results differ");
        if (!ra.ok() && controlDigest(*w.a) != before) fail("a refused upsertBackend changed something");
        break;
      }
      case 2: {
        uint32_t id = in.ConsumeIntegral<uint8_t>() % 12;
        std::string before = controlDigest(*w.a);
        Result ra = w.a->deleteBackend(id), rb = w.b->deleteBackend(id);
        if (ra.status != rb.status) fail("deleteBackend results differ");
        if (!ra.ok() && controlDigest(*w.a) != before) fail("a refused deleteBackend changed something");
        break;
      }
      case 3:
      case 4: {
        ServiceSpec s = serviceFrom(in);
        std::string before = controlDigest(*w.a);
        Result ra = w.a->upsertService(s), rb = w.b->upsertService(s);
        if (ra.status != rb.status) fail("upsertService results differ");
        if (!ra.ok() && controlDigest(*w.a) != before) fail("a refused upsertService changed something");
        if (ra.ok()) {
          // The service is in place as a whole: exactly its frontends, its backend set.
          ServiceRec* rec = w.a->services().peek(s.id);
          if (!rec) fail("accepted service missing");
          if (rec->frontends.size() != s.frontends.size()) fail("accepted service has other frontends");
          for (const FrontendSpec& f : s.frontends) {
            const FrontendRec* fe = w.a->frontends().peek(f.key);
            if (!fe || fe->serviceId != s.id || fe->masq != f.masquerade) fail("accepted frontend not in place");
          }
          std::vector<uint32_t> ids = s.backendIds;
          std::sort(ids.begin(), ids.end());
          ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
          if (rec->set->allIds != ids) fail("accepted service has another backend set");
        }
        break;
      }
      case 5: {
        uint32_t id = in.ConsumeIntegral<uint8_t>() % 8;
        std::string before = controlDigest(*w.a);
        Result ra = w.a->deleteService(id), rb = w.b->deleteService(id);
        if (ra.status != rb.status) fail("deleteService results differ");
        if (!ra.ok() && controlDigest(*w.a) != before) fail("a refused deleteService changed something");
        break;
      }
      case 6:
      case 7: opDecideBatch(w, in); break;
      case 8: opPackets(w, in); break;
      case 9: {
        uint8_t what = in.ConsumeIntegral<uint8_t>();
        if (what < 200) {
          w.now += uint64_t(what % 100) * kSec + in.ConsumeIntegral<uint16_t>();
        } else if (what < 230) {
          uint32_t budget = 1 + in.ConsumeIntegral<uint8_t>() % 64;
          if (w.a->gc(w.now, budget) != w.b->gc(w.now, budget)) fail("gc differs");
          if (w.a->gcAffinity(w.now, budget) != w.b->gcAffinity(w.now, budget)) fail("gcAffinity differs");
        } else if (what < 245) {
          uint32_t id = in.ConsumeIntegral<uint8_t>() % 12;
          if (w.a->deleteFlowsByBackend(id) != w.b->deleteFlowsByBackend(id)) fail("deleteFlowsByBackend differs");
        } else if (what < 254) {
          uint32_t id = in.ConsumeIntegral<uint8_t>() % 8;
          if (w.a->deleteFlowsByService(id) != w.b->deleteFlowsByService(id)) fail("deleteFlowsByService differs");
        } else {
          w.a->flushConntrack();
          w.b->flushConntrack();
          if (w.a->conntrack().size() || w.a->natPorts().map().size()) fail("flush left flows or NAT ports");
        }
        break;
      }
      case 10: opPacketConfig(w, in); break;
      default: {
        FlowInput f = flowFrom(in, *w.a);
        Decision da, db;
        w.a->decide(f, w.now, da);
        w.b->decide(f, w.now, db);
        sameDecision(da, db);
        checkDecision(*w.a, f, da, true);
        break;
      }
    }
    checkInvariants(*w.a);
    checkInvariants(*w.b);
    sameState(*w.a, *w.b);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 8192) return 0;
  run(data, size);
  return 0;
}

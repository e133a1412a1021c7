#include "flow_handoff.h"

#include <cstring>
#include <string>

namespace svcplane {

namespace {

constexpr char kMagic[8] = {'S', 'V', 'C', 'P', 'F', 'L', 'O', 'W'};
constexpr uint8_t kRecSnat = 1;                            // flow record flag: the reply tuple holds a NAT port
constexpr uint64_t kMaxPackets = (uint64_t(1) << 48) - 1;  // what conntrack's counters hold

void put16(uint8_t* p, uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = uint8_t(v >> (8 * i));
}
void put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = uint8_t(v >> (8 * i));
}
void put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = uint8_t(v >> (8 * i));
}
uint16_t get16(const uint8_t* p) { return uint16_t(p[0] | p[1] << 8); }
uint32_t get32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t get64(const uint8_t* p) { return uint64_t(get32(p)) | uint64_t(get32(p + 4)) << 32; }

uint64_t ago(uint64_t now, uint64_t t) { return now > t ? now - t : 0; }

// The scope of the frontend a flow was sent to: the one of the flow's service.
uint8_t scopeOf(Dataplane& dp, const Flow& f) {
  for (uint8_t scope = 0; scope < 2; ++scope)
    if (const FrontendRec* fe = dp.frontends().peek(FrontendKey{f.orig.dst, f.orig.dport, f.orig.proto, scope});
        fe && fe->serviceId == f.serviceId)
      return scope;
  return 0;
}

// The frontend a packet to (addr, port, proto) reaches: the preferred scope first, then the other.
const FrontendRec* frontendAt(Dataplane& dp, const IpAddr& addr, uint16_t port, uint8_t proto, uint8_t scope) {
  if (const FrontendRec* fe = dp.frontends().peek(FrontendKey{addr, port, proto, scope})) return fe;
  return dp.frontends().peek(FrontendKey{addr, port, proto, uint8_t(scope ^ 1)});
}

// The id of the backend of a service at (addr, port); kNone when the service lists none there.
uint32_t backendAt(Dataplane& dp, const ServiceRec& svc, const IpAddr& addr, uint16_t port) {
  if (!svc.set) return Conntrack::kNone;
  for (uint32_t id : svc.set->allIds)
    if (const BackendRec* b = dp.backends().peek(id); b && b->addr == addr && b->port == port) return id;
  return Conntrack::kNone;
}

struct FlowRecord {
  FlowKey orig, reply;
  CtState state;
  uint8_t finDir, flags, scope;
  uint64_t remaining, idle, age;
  uint64_t packets[2], bytes[2];
};

struct AffinityRecord {
  IpAddr client, frontend, backend;
  uint16_t frontendPort, backendPort;
  uint8_t proto, scope;
  uint64_t idle;
};

FlowKey keyAt(const uint8_t* src, const uint8_t* dst, uint16_t sport, uint16_t dport, uint8_t proto) {
  FlowKey k{};
  std::memcpy(k.src.b, src, 16);
  std::memcpy(k.dst.b, dst, 16);
  k.sport = sport;
  k.dport = dport;
  k.proto = proto;
  return k;
}

Result invalid(const std::string& what) { return {Status::Invalid, "flow handoff: " + what}; }

Result parseFlow(const uint8_t* p, size_t i, uint64_t now, FlowRecord& r) {
  const std::string at = "flows[" + std::to_string(i) + "]";
  const uint8_t proto = p[72];
  if (!isKnownProtocol(proto)) return invalid(at + ".protocol " + std::to_string(proto) + " is not TCP, UDP or SCTP");
  if (p[73] == 0 || p[73] >= uint8_t(CtState::Count))
    return invalid(at + ".state " + std::to_string(p[73]) + " is not a conntrack state");
  if (p[74] > 3) return invalid(at + ".finDir " + std::to_string(p[74]) + " is not 0..3");
  if (p[75] & ~kRecSnat) return invalid(at + ".flags has unknown bits");
  if (p[76] > 1) return invalid(at + ".scope " + std::to_string(p[76]) + " is not 0 or 1");
  if (p[77] | p[78] | p[79]) return invalid(at + ": reserved bytes are not 0");
  r.orig = keyAt(p, p + 16, get16(p + 64), get16(p + 66), proto);
  r.reply = keyAt(p + 32, p + 48, get16(p + 68), get16(p + 70), proto);
  if (r.orig.src.isV4() != r.orig.dst.isV4() || r.reply.src.isV4() != r.reply.dst.isV4() ||
      r.orig.src.isV4() != r.reply.src.isV4())
    return invalid(at + ": its addresses mix IPv4 and IPv6");
  r.state = CtState(p[73]);
  r.finDir = p[74];
  r.flags = p[75];
  r.scope = p[76];
  r.remaining = get64(p + 80);
  r.idle = get64(p + 88);
  r.age = get64(p + 96);
  if (r.remaining > UINT64_MAX - now) return invalid(at + ".remaining is out of range");
  for (int d = 0; d < 2; ++d) {
    r.packets[d] = get64(p + 104 + 8 * d);
    r.bytes[d] = get64(p + 120 + 8 * d);
    if (r.packets[d] > kMaxPackets) return invalid(at + ".packets is out of range");
  }
  return {};
}

Result parseAffinity(const uint8_t* p, size_t i, AffinityRecord& r) {
  const std::string at = "affinity[" + std::to_string(i) + "]";
  std::memcpy(r.client.b, p, 16);
  std::memcpy(r.frontend.b, p + 16, 16);
  r.frontendPort = get16(p + 32);
  r.proto = p[34];
  r.scope = p[35];
  std::memcpy(r.backend.b, p + 36, 16);
  r.backendPort = get16(p + 52);
  r.idle = get64(p + 56);
  if (!isKnownProtocol(r.proto))
    return invalid(at + ".protocol " + std::to_string(r.proto) + " is not TCP, UDP or SCTP");
  if (r.scope > 1) return invalid(at + ".scope " + std::to_string(r.scope) + " is not 0 or 1");
  if (p[54] | p[55]) return invalid(at + ": reserved bytes are not 0");
  return {};
}

// Re-creates one flow; false when it cannot (counted as dropped by the caller).
bool restoreFlow(Dataplane& dp, const FlowRecord& r, uint64_t now) {
  Conntrack& ct = dp.conntrack();
  if (r.remaining == 0 || ct.size() >= ct.capacity()) return false;
  const FrontendRec* fe = frontendAt(dp, r.orig.dst, r.orig.dport, r.orig.proto, r.scope);
  if (!fe) return false;
  const ServiceRec* svc = dp.services().peek(fe->serviceId);
  if (!svc) return false;
  const uint32_t backendId = backendAt(dp, *svc, r.reply.src, r.reply.sport);
  if (backendId == Conntrack::kNone) return false;
  const uint32_t origHash = ct.hashOf(r.orig), replyHash = ct.hashOf(r.reply);
  if (ct.peek(r.orig, origHash).flow != Conntrack::kNone) return false;  // tracked already
  const bool snat = r.flags & kRecSnat;
  const NatKey nk{r.reply.dst, r.reply.src, r.reply.dport, r.reply.sport, r.reply.proto, {}};
  auto& nat = dp.natPorts().map();
  if (snat && (nat.findIndex(nk) != FixedMap<NatKey, NatRec>::kNone || nat.size() >= nat.capacity())) return false;
  const uint32_t flow = ct.create(r.orig, origHash, r.reply, replyHash, fe->serviceId, backendId, fe->revNatId, 0, 0,
                                  now, [](const Flow&) {});  // never called: the table has room
  if (flow == Conntrack::kNone) return false;
  ct.restore(flow, r.state, r.finDir, now + r.remaining, ago(now, r.idle), ago(now, r.age), r.packets, r.bytes);
  if (snat) {
    ct.markSnat(flow);
    nat.insert(nk);
    dp.natPorts().bind(nk, flow);
  }
  ++dp.backends().peek(backendId)->activeConns;
  return true;
}

bool restoreAffinity(Dataplane& dp, const AffinityRecord& r, uint64_t now) {
  auto& aff = dp.affinity();
  if (aff.capacity() == 0) return false;
  const FrontendRec* fe = frontendAt(dp, r.frontend, r.frontendPort, r.proto, r.scope);
  if (!fe) return false;
  const ServiceRec* svc = dp.services().peek(fe->serviceId);
  if (!svc || svc->affinityTimeoutNs == 0) return false;
  const uint32_t backendId = backendAt(dp, *svc, r.backend, r.backendPort);
  if (backendId == Conntrack::kNone || r.idle >= svc->affinityTimeoutNs) return false;
  auto ins = aff.insert(AffinityKey{r.client, fe->serviceId});
  if (ins.index == FixedMap<AffinityKey, AffinityRec>::kNone) return false;
  aff.at(ins.index).value = AffinityRec{backendId, ago(now, r.idle)};
  return true;
}

}  // namespace

std::vector<uint8_t> exportFlows(Dataplane& dp, uint64_t now) {
  std::vector<uint8_t> out(kFlowHandoffHeaderBytes);
  Conntrack& ct = dp.conntrack();
  uint32_t flows = 0, affinity = 0;
  for (uint32_t i = 0; i < ct.capacity(); ++i) {
    if (!ct.used(i)) continue;
    const Flow f = ct.at(i);
    if (f.expires <= now) continue;
    const size_t o = out.size();
    out.resize(o + kFlowRecordBytes);
    uint8_t* p = out.data() + o;
    std::memcpy(p, f.orig.src.b, 16);
    std::memcpy(p + 16, f.orig.dst.b, 16);
    std::memcpy(p + 32, f.reply.src.b, 16);
    std::memcpy(p + 48, f.reply.dst.b, 16);
    put16(p + 64, f.orig.sport);
    put16(p + 66, f.orig.dport);
    put16(p + 68, f.reply.sport);
    put16(p + 70, f.reply.dport);
    p[72] = f.orig.proto;
    p[73] = uint8_t(f.state);
    p[74] = f.finDir;
    p[75] = f.snat ? kRecSnat : 0;
    p[76] = scopeOf(dp, f);
    put64(p + 80, f.expires - now);
    put64(p + 88, ago(now, f.lastSeen));
    put64(p + 96, ago(now, f.created));
    for (int d = 0; d < 2; ++d) {
      put64(p + 104 + 8 * d, f.packets[d]);
      put64(p + 120 + 8 * d, f.bytes[d]);
    }
    ++flows;
  }
  auto& aff = dp.affinity();
  for (uint32_t i = 0; i < aff.capacity(); ++i) {
    const auto& e = aff.at(i);
    if (!e.used) continue;
    const ServiceRec* svc = dp.services().peek(e.key.serviceId);
    const BackendRec* b = dp.backends().peek(e.value.backendId);
    if (!svc || !b || svc->frontends.empty() || e.value.lastUsed + svc->affinityTimeoutNs <= now) continue;
    const FrontendKey& fk = svc->frontends.front();
    const size_t o = out.size();
    out.resize(o + kAffinityRecordBytes);
    uint8_t* p = out.data() + o;
    std::memcpy(p, e.key.client.b, 16);
    std::memcpy(p + 16, fk.addr.b, 16);
    put16(p + 32, fk.port);
    p[34] = fk.proto;
    p[35] = fk.scope;
    std::memcpy(p + 36, b->addr.b, 16);
    put16(p + 52, b->port);
    put64(p + 56, ago(now, e.value.lastUsed));
    ++affinity;
  }
  std::memcpy(out.data(), kMagic, 8);
  put32(out.data() + 8, kFlowHandoffVersion);
  put32(out.data() + 12, flows);
  put32(out.data() + 16, affinity);
  put32(out.data() + 20, 0);
  return out;
}

Result importFlows(Dataplane& dp, const uint8_t* data, size_t len, uint64_t now, HandoffCounts& out) {
  out = HandoffCounts{};
  if (len < kFlowHandoffHeaderBytes)
    return invalid("blob of " + std::to_string(len) + " bytes is shorter than its header");
  if (std::memcmp(data, kMagic, 8) != 0) return invalid("not a flow handoff blob (bad magic)");
  const uint32_t version = get32(data + 8);
  if (version != kFlowHandoffVersion)
    return invalid("version " + std::to_string(version) + " is not supported (expected " +
                   std::to_string(kFlowHandoffVersion) + ")");
  const uint64_t flows = get32(data + 12), affinity = get32(data + 16);
  if (get32(data + 20) != 0) return invalid("reserved header word is not 0");
  if (flows > kMaxCapacity || affinity > kMaxCapacity) return invalid("record counts exceed the largest map");
  const uint64_t want = kFlowHandoffHeaderBytes + flows * kFlowRecordBytes + affinity * kAffinityRecordBytes;
  if (len != want) return invalid("blob is " + std::to_string(len) + " bytes, its header says " + std::to_string(want));
  // Everything is parsed and checked before the dataplane changes.
  std::vector<FlowRecord> fr(flows);
  std::vector<AffinityRecord> ar(affinity);
  const uint8_t* p = data + kFlowHandoffHeaderBytes;
  for (size_t i = 0; i < fr.size(); ++i, p += kFlowRecordBytes)
    if (Result r = parseFlow(p, i, now, fr[i]); !r.ok()) return r;
  for (size_t i = 0; i < ar.size(); ++i, p += kAffinityRecordBytes)
    if (Result r = parseAffinity(p, i, ar[i]); !r.ok()) return r;
  for (const FlowRecord& r : fr) ++(restoreFlow(dp, r, now) ? out.imported : out.dropped);
  for (const AffinityRecord& r : ar) ++(restoreAffinity(dp, r, now) ? out.affinityImported : out.affinityDropped);
  return {};
}

}  // namespace svcplane

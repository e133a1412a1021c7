// libFuzzer harness of the flow handoff importer (core/flow_handoff.h). The input is either a
// blob as it is (first byte even) or edits of a valid blob (first byte odd): the blob that a
// dataplane with masqueraded TCP, UDP and affinity flows exports, with fuzzed bytes XORed in
// at fuzzed offsets and a fuzzed length, so that both the validation and the apply paths
// are reached. It is imported into a dataplane programmed alike (other ids, one backend gone,
// one flow tracked already). The harness traps when
//  - a refused blob changed anything (conntrack, NAT port map, affinity, backend counts);
//  - an accepted one: imported + dropped is not the header's flow count, conntrack did not
//    grow by `imported`, the backends' active connection counts do not add up to conntrack's
//    size, the NAT port map does not hold exactly the masqueraded flows' ports, or a flow
//    points at a service or backend that does not exist;
//  - flushing conntrack afterwards leaves a NAT port or an active connection behind.
#include <cstdint>
#include <cstring>
#include <vector>

#include "core/flow_handoff.h"

using namespace svcplane;

namespace {

constexpr uint64_t kSec = 1000000000ull;
constexpr uint32_t kVip = 0x0a600001, kNode = 0x0a010001;

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_handoff invariant violated: %s\n", what);
  __builtin_trap();
}

DataplaneConfig config() {
  DataplaneConfig c;
  c.maxServices = c.maxFrontends = c.maxBackends = 16;
  c.maxFlows = c.maxAffinity = c.maxNatPorts = 32;
  c.seed = 3;
  return c;
}

// Service at kVip:80/TCP and kVip:53/UDP, masqueraded, with ClientIP affinity, over backends
// at 10.2.0.<host>; ids start at `base`.
void program(Dataplane& dp, uint32_t base, const std::vector<uint8_t>& hosts) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < hosts.size(); ++i) {
    uint32_t id = base + uint32_t(i);
    dp.upsertBackend(BackendSpec{id, IpAddr::v4(0x0a020000u | hosts[i]), 8080, BackendState::Active, 1, false, 0});
    ids.push_back(id);
  }
  std::vector<FrontendSpec> fes;
  for (auto [port, proto] : {std::pair<uint16_t, uint8_t>{80, 6}, {53, 17}}) {
    FrontendSpec fe{};
    fe.key = FrontendKey{IpAddr::v4(kVip), port, proto, uint8_t(Scope::Internal)};
    fe.masquerade = MasqPolicy::Always;
    fes.push_back(fe);
  }
  dp.upsertService(ServiceSpec{base + 100, SchedulerKind::RoundRobin, 600 * kSec, Verdict::Reject, fes, ids, {}});
  PacketConfig pc;
  pc.hasMasq4 = true;
  pc.masq4 = IpAddr::v4(kNode);
  dp.setPacketConfig(pc);
}

void open(Dataplane& dp, uint32_t client, uint16_t sport, uint16_t dport, uint8_t proto, uint64_t now) {
  FlowInput in{};
  in.key = FlowKey{IpAddr::v4(client), IpAddr::v4(kVip), sport, dport, proto, {}};
  in.scope = Scope::Internal;
  in.tcpFlags = proto == 6 ? kAck : 0;
  in.bytes = 60;
  in.packet = kInPacket;
  Decision d{};
  dp.decide(in, now, d);
}

std::vector<uint8_t> validBlob() {
  Dataplane a(config());
  program(a, 1, {1, 2, 3});
  for (uint16_t i = 0; i < 6; ++i)
    open(a, 0x0a000002 + i % 3, uint16_t(40000 + i), i % 2 ? 53 : 80, i % 2 ? 17 : 6, kSec);
  return exportFlows(a, 5 * kSec);
}

struct Digest {
  uint32_t flows, nat, affinity;
  uint64_t active;
  bool operator==(const Digest& o) const {
    return flows == o.flows && nat == o.nat && affinity == o.affinity && active == o.active;
  }
};

Digest digest(Dataplane& dp) {
  Digest d{dp.conntrack().size(), dp.natPorts().map().size(), dp.affinity().size(), 0};
  for (uint32_t i = 0; i < dp.backends().capacity(); ++i)
    if (dp.backends().at(i).used) d.active += dp.backends().at(i).value.activeConns;
  return d;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t> valid = validBlob();
  std::vector<uint8_t> blob;
  if (size > 0 && (data[0] & 1)) {
    blob = valid;
    size_t i = 1;
    if (i < size) blob.resize(data[i++] < 8 ? blob.size() - data[i - 1] * 17 % (blob.size() + 1) : blob.size());
    for (; i + 2 < size; i += 3) {
      if (blob.empty()) break;
      blob[(size_t(data[i]) << 8 | data[i + 1]) % blob.size()] ^= data[i + 2];
    }
  } else if (size > 0) {
    blob.assign(data + 1, data + size);
  }

  Dataplane b(config());
  program(b, 7, {3, 1});                        // backend 10.2.0.2 is gone
  open(b, 0x0a000002, 40000, 80, 6, 9 * kSec);  // a tuple the blob may carry: tracked already
  const Digest before = digest(b);
  HandoffCounts n;
  Result r = importFlows(b, blob.data(), blob.size(), 10 * kSec, n);
  const Digest after = digest(b);
  if (!r.ok()) {
    if (!(before == after)) fail("a refused blob changed the dataplane");
    if (r.message.empty()) fail("a refusal without a message");
  } else {
    uint32_t flows;
    std::memcpy(&flows, blob.data() + 12, 4);
    if (n.imported + n.dropped != flows) fail("imported + dropped != the blob's flows");
    if (after.flows != before.flows + n.imported) fail("conntrack did not grow by imported");
    if (after.active != after.flows) fail("active connections do not add up to the flows");
    uint32_t snat = 0;
    for (uint32_t i = 0; i < b.conntrack().capacity(); ++i) {
      if (!b.conntrack().used(i)) continue;
      const Flow f = b.conntrack().at(i);
      if (!b.services().peek(f.serviceId) || !b.backends().peek(f.backendId))
        fail("a flow names a missing service or backend");
      if (f.snat) {
        ++snat;
        NatKey k{f.reply.dst, f.reply.src, f.reply.dport, f.reply.sport, f.reply.proto, {}};
        if (b.natPorts().map().findIndex(k) == FixedMap<NatKey, NatRec>::kNone)
          fail("a masqueraded flow without its NAT port");
      }
    }
    if (snat != after.nat) fail("the NAT port map does not hold exactly the masqueraded flows");
  }
  b.flushConntrack();
  const Digest flushed = digest(b);
  if (flushed.flows || flushed.nat || flushed.active) fail("a flush left NAT ports or active connections");
  return 0;
}

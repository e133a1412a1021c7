#include "check.h"
#include "core/flow_handoff.h"

using namespace svcplane;

namespace {
constexpr uint64_t S = 1000000000ull;
constexpr uint32_t kVip = 0x0a600001, kClient = 0x0a000002, kNode = 0x0a010001;

DataplaneConfig config() {
  DataplaneConfig c;
  c.maxServices = c.maxFrontends = c.maxBackends = 8;
  c.maxFlows = c.maxAffinity = c.maxNatPorts = 64;
  c.seed = 7;
  return c;
}

// One service at kVip:80 with backends at the given addresses; ids differ per call (`base`), as
// they would across runs.
void program(Dataplane& dp, uint32_t base, std::vector<uint32_t> addrs, uint64_t affinityNs = 0) {
  std::vector<uint32_t> ids;
  for (size_t i = 0; i < addrs.size(); ++i) {
    CHECK(
        dp.upsertBackend(BackendSpec{base + uint32_t(i), IpAddr::v4(addrs[i]), 8080, BackendState::Active, 1, false, 0})
            .ok());
    ids.push_back(base + uint32_t(i));
  }
  FrontendSpec fe{};
  fe.key = FrontendKey{IpAddr::v4(kVip), 80, 6, uint8_t(Scope::Internal)};
  fe.masquerade = MasqPolicy::Always;
  CHECK(dp.upsertService(ServiceSpec{base + 100, SchedulerKind::RoundRobin, affinityNs, Verdict::Reject, {fe}, ids, {}})
            .ok());
  PacketConfig pc;
  pc.hasMasq4 = true;
  pc.masq4 = IpAddr::v4(kNode);
  CHECK(dp.setPacketConfig(pc).ok());
}

Decision open(Dataplane& dp, uint16_t sport, uint64_t now, uint8_t packet) {
  FlowInput in{};
  in.key = FlowKey{IpAddr::v4(kClient), IpAddr::v4(kVip), sport, 80, 6, {}};
  in.scope = Scope::Internal;
  in.tcpFlags = kAck;
  in.bytes = 100;
  in.packet = packet;
  Decision d{};
  dp.decide(in, now, d);
  return d;
}
}  // namespace

TEST_CASE("flow handoff: flows and affinity survive into a dataplane with other ids") {
  Dataplane a(config());
  program(a, 1, {0x0a020001, 0x0a020002}, 600 * S);
  Decision d1 = open(a, 40000, 10 * S, kInPacket);  // masqueraded
  Decision d2 = open(a, 40001, 10 * S, 0);          // tuple API: not masqueraded
  CHECK(d1.verdict == Verdict::Forward && d2.verdict == Verdict::Forward);
  const Flow f1 = a.conntrack().at(d1.flow);
  CHECK(f1.snat);
  std::vector<uint8_t> blob = exportFlows(a, 20 * S);
  CHECK_EQ(blob.size(), kFlowHandoffHeaderBytes + 2 * kFlowRecordBytes + 1 * kAffinityRecordBytes);

  Dataplane b(config());
  program(b, 50, {0x0a020002, 0x0a020001}, 600 * S);  // same backends, other ids and order
  HandoffCounts n;
  CHECK(importFlows(b, blob.data(), blob.size(), 1000 * S, n).ok());
  CHECK_EQ(n.imported, 2u);
  CHECK_EQ(n.dropped, 0u);
  CHECK_EQ(n.affinityImported, 1u);
  // The masqueraded flow's reply (backend -> node:natPort) finds it again, with its state.
  CtHit hit = b.conntrack().peek(f1.reply);
  CHECK(hit.flow != Conntrack::kNone);
  const Flow g1 = b.conntrack().at(hit.flow);
  CHECK(g1.snat && g1.state == CtState::TcpEstablished);
  CHECK_EQ(g1.serviceId, 150u);
  CHECK_EQ(g1.expires, 1000 * S + (f1.expires - 20 * S));
  CHECK_EQ(g1.packets[0], f1.packets[0]);
  CHECK(b.backends().peek(g1.backendId)->addr == f1.reply.src);
  CHECK_EQ(b.natPorts().map().size(), 1u);
  // A packet of the flow is established and goes to the same backend.
  Decision again = open(b, 40000, 1001 * S, kInPacket);
  CHECK(again.established);
  CHECK(again.addr == f1.reply.src);
  // Removing the flow releases the NAT port reserved again.
  b.flushConntrack();
  CHECK_EQ(b.natPorts().map().size(), 0u);
}

TEST_CASE("flow handoff: a flow whose backend is gone is dropped and counted") {
  Dataplane a(config());
  program(a, 1, {0x0a020001});
  open(a, 40000, 1 * S, 0);
  std::vector<uint8_t> blob = exportFlows(a, 2 * S);
  Dataplane b(config());
  program(b, 1, {0x0a020009});
  HandoffCounts n;
  CHECK(importFlows(b, blob.data(), blob.size(), 3 * S, n).ok());
  CHECK_EQ(n.imported, 0u);
  CHECK_EQ(n.dropped, 1u);
  CHECK_EQ(b.conntrack().size(), 0u);
}

TEST_CASE("flow handoff: bad blobs are refused whole") {
  Dataplane a(config());
  program(a, 1, {0x0a020001});
  open(a, 40000, 1 * S, 0);
  open(a, 40001, 1 * S, 0);
  std::vector<uint8_t> blob = exportFlows(a, 2 * S);
  Dataplane b(config());
  program(b, 1, {0x0a020001});
  HandoffCounts n;
  std::vector<uint8_t> bad = blob;
  bad[0] = 'X';
  CHECK(importFlows(b, bad.data(), bad.size(), 3 * S, n).status == Status::Invalid);
  bad = blob;
  bad[8] = 9;
  CHECK(importFlows(b, bad.data(), bad.size(), 3 * S, n).message.find("version 9") != std::string::npos);
  CHECK(importFlows(b, blob.data(), blob.size() - 1, 3 * S, n).status == Status::Invalid);
  CHECK(importFlows(b, blob.data(), 3, 3 * S, n).status == Status::Invalid);
  bad = blob;
  bad[kFlowHandoffHeaderBytes + kFlowRecordBytes + 73] = 99;  // the second flow's state
  Result r = importFlows(b, bad.data(), bad.size(), 3 * S, n);
  CHECK(r.message.find("flows[1].state") != std::string::npos);
  CHECK_EQ(b.conntrack().size(), 0u);  // the first, valid flow was not applied either
  CHECK(importFlows(b, blob.data(), blob.size(), 3 * S, n).ok());
  CHECK_EQ(n.imported, 2u);
}

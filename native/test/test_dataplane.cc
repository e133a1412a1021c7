#include "check.h"
#include "core/dataplane.h"

using namespace svcplane;

namespace {
constexpr uint64_t S = 1000000000ull;

FrontendSpec frontend(uint32_t addr, uint16_t port, Scope scope = Scope::Internal, bool ranges = false) {
  FrontendSpec f{};
  f.key.addr = IpAddr::v4(addr);
  f.key.port = port;
  f.key.proto = 6;
  f.key.scope = uint8_t(scope);
  f.checkSourceRanges = ranges;
  return f;
}

BackendSpec backend(uint32_t id, uint32_t addr, BackendState st = BackendState::Active) {
  return BackendSpec{id, IpAddr::v4(addr), 8080, st, 1, false, 0};
}

FlowInput flow(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags = kSyn) {
  FlowInput in{};
  in.key.src = IpAddr::v4(src);
  in.key.dst = IpAddr::v4(dst);
  in.key.sport = sport;
  in.key.dport = dport;
  in.key.proto = 6;
  in.scope = Scope::External;
  in.tcpFlags = flags;
  return in;
}

DataplaneConfig small() {
  DataplaneConfig c;
  c.maxServices = 8;
  c.maxFrontends = 8;
  c.maxBackends = 8;
  c.maxFlows = 64;
  c.maxAffinity = 64;
  c.seed = 1;
  return c;
}
}  // namespace

TEST_CASE("dataplane: forward, established, reply, pass") {
  Dataplane dp(small());
  CHECK(dp.upsertBackend(backend(1, 0x0ab40001)).ok());
  ServiceSpec s{1, SchedulerKind::Random, 0, Verdict::Reject, {frontend(0xac1e0029, 80)}, {1}, {}};
  CHECK(dp.upsertService(s).ok());
  Decision d;
  dp.decide(flow(0x0a000002, 40000, 0xac1e0029, 80), 1 * S, d);
  CHECK(d.verdict == Verdict::Forward);
  CHECK_EQ(d.backendId, 1u);
  CHECK(!d.established);
  dp.decide(flow(0x0a000002, 40000, 0xac1e0029, 80, kAck), 2 * S, d);
  CHECK(d.established);
  FlowInput r = flow(0x0ab40001, 8080, 0x0a000002, 40000, kSyn | kAck);
  dp.decide(r, 2 * S, d);
  CHECK(d.verdict == Verdict::Reply);
  CHECK(d.addr == IpAddr::v4(0xac1e0029));
  CHECK_EQ(d.port, 80);
  dp.decide(flow(0x0a000002, 40000, 0xac1e0030, 80), 2 * S, d);
  CHECK(d.verdict == Verdict::Pass);
  CHECK(d.reason == Reason::NoFrontend);
  CHECK_EQ(dp.backends().peek(1)->activeConns, 1u);
}

TEST_CASE("dataplane: no active backends gives the service's empty verdict; source ranges drop") {
  Dataplane dp(small());
  dp.upsertBackend(backend(1, 0x0ab40001, BackendState::Terminating));
  Cidr allowed{IpAddr::v4(0xc0a80000), 96 + 16};
  ServiceSpec s{1, SchedulerKind::Random, 0, Verdict::Drop, {frontend(0x01020304, 80, Scope::External, true)}, {1}, {allowed}};
  CHECK(dp.upsertService(s).ok());
  Decision d;
  dp.decide(flow(0x0a000002, 1, 0x01020304, 80), S, d);
  CHECK(d.verdict == Verdict::Drop);
  CHECK(d.reason == Reason::SourceRange);
  dp.decide(flow(0xc0a80105, 1, 0x01020304, 80), S, d);
  CHECK(d.verdict == Verdict::Drop);
  CHECK(d.reason == Reason::NoBackends);
}

TEST_CASE("dataplane: a refused update changes nothing") {
  Dataplane dp(small());
  dp.upsertBackend(backend(1, 0x0ab40001));
  CHECK(dp.upsertService({1, SchedulerKind::Random, 0, Verdict::Reject, {frontend(1, 80)}, {1}, {}}).ok());
  // Unknown backend.
  Result r = dp.upsertService({1, SchedulerKind::Random, 0, Verdict::Reject, {frontend(2, 80)}, {1, 9}, {}});
  CHECK(r.status == Status::NotFound);
  CHECK(dp.frontends().peek(frontend(1, 80).key) != nullptr);
  CHECK(dp.frontends().peek(frontend(2, 80).key) == nullptr);
  // A frontend owned by another service.
  r = dp.upsertService({2, SchedulerKind::Random, 0, Verdict::Reject, {frontend(1, 80)}, {1}, {}});
  CHECK(r.status == Status::Conflict);
  CHECK(dp.services().peek(2) == nullptr);
  // Too many frontends.
  std::vector<FrontendSpec> many;
  for (uint32_t i = 0; i < 9; ++i) many.push_back(frontend(100 + i, 80));
  r = dp.upsertService({3, SchedulerKind::Random, 0, Verdict::Reject, many, {1}, {}});
  CHECK(r.status == Status::Full);
  CHECK_EQ(dp.frontends().size(), 1u);
  CHECK_EQ(dp.services().size(), 1u);
  // Backend listed by a service cannot go.
  CHECK(dp.deleteBackend(1).status == Status::InUse);
}

TEST_CASE("dataplane: flows keep a terminating backend; deleting a backend removes its flows") {
  Dataplane dp(small());
  dp.upsertBackend(backend(1, 0x0ab40001));
  dp.upsertService({1, SchedulerKind::Random, 0, Verdict::Reject, {frontend(1, 80)}, {1}, {}});
  Decision d;
  dp.decide(flow(5, 1000, 1, 80), S, d);
  CHECK_EQ(d.backendId, 1u);
  dp.upsertBackend(backend(1, 0x0ab40001, BackendState::Terminating));
  dp.decide(flow(5, 1000, 1, 80, kAck), 2 * S, d);
  CHECK(d.verdict == Verdict::Forward);
  CHECK_EQ(d.backendId, 1u);
  dp.decide(flow(5, 1001, 1, 80), 2 * S, d);
  CHECK(d.verdict == Verdict::Reject);
  CHECK(dp.upsertService({1, SchedulerKind::Random, 0, Verdict::Reject, {frontend(1, 80)}, {}, {}}).ok());
  CHECK(dp.deleteBackend(1).ok());
  CHECK_EQ(dp.conntrack().size(), 0u);
}

TEST_CASE("dataplane: session affinity holds until the timeout") {
  Dataplane dp(small());
  for (uint32_t i = 1; i <= 4; ++i) dp.upsertBackend(backend(i, 0x0ab40000 + i));
  dp.upsertService({1, SchedulerKind::Random, 10 * S, Verdict::Reject, {frontend(1, 80)}, {1, 2, 3, 4}, {}});
  Decision first, d;
  dp.decide(flow(5, 1000, 1, 80), S, first);
  for (uint16_t p = 1001; p < 1020; ++p) {
    dp.decide(flow(5, p, 1, 80), 2 * S, d);
    CHECK_EQ(d.backendId, first.backendId);
    CHECK(d.affinityHit);
  }
  dp.decide(flow(5, 2000, 1, 80), 13 * S, d);
  CHECK(!d.affinityHit);
}

TEST_CASE("dataplane: the service maps grow up to their ceiling; flows and lc counts survive") {
  DataplaneConfig c = small();
  c.maxServices = 3000;
  c.maxFrontends = 3000;
  c.maxBackends = 20000;
  c.maxFlows = 1024;
  Dataplane dp(c);
  CHECK_EQ(dp.services().capacity(), kInitialServices);
  CHECK(dp.upsertBackend(backend(1, 0x0ab40001)).ok());
  CHECK(dp.upsertBackend(backend(2, 0x0ab40002)).ok());
  CHECK(dp.upsertService(ServiceSpec{1, SchedulerKind::LeastConn, 0, Verdict::Reject, {frontend(0xac1e0001, 80)}, {1, 2}, {}}).ok());
  Decision first;
  dp.decide(flow(0x0a000002, 1000, 0xac1e0001, 80), 1 * S, first);
  CHECK(first.verdict == Verdict::Forward);
  for (uint32_t b = 3; b <= 17000; ++b) CHECK(dp.upsertBackend(backend(b, 0x0ac00000 + b)).ok());
  for (uint32_t s = 2; s <= 3000; ++s) CHECK(dp.upsertService(ServiceSpec{s, SchedulerKind::Random, 0, Verdict::Reject, {frontend(0xac200000 + s, 80)}, {s + 3}, {}}).ok());
  CHECK(dp.backends().capacity() > kInitialBackends);
  CHECK_EQ(dp.services().capacity(), 3000u);  // doubling stops at the ceiling
  Result full = dp.upsertService(ServiceSpec{3001, SchedulerKind::Random, 0, Verdict::Reject, {frontend(0xac300000, 80)}, {5}, {}});
  CHECK(full.status == Status::Full);
  Decision d;
  dp.decide(flow(0x0a000002, 1000, 0xac1e0001, 80, kAck), 2 * S, d);
  CHECK(d.established);
  CHECK_EQ(d.backendId, first.backendId);
  // lc reads the moved records: the other backend (no flows) takes the next new flow.
  dp.decide(flow(0x0a000003, 1001, 0xac1e0001, 80), 2 * S, d);
  CHECK(d.backendId != first.backendId);
  CHECK_EQ(dp.backends().peek(first.backendId)->activeConns, 1u);
  CHECK_EQ(dp.deleteFlowsByService(1), 2u);
  CHECK_EQ(dp.backends().peek(1)->activeConns + dp.backends().peek(2)->activeConns, 0u);
  CHECK(dp.reserve(3000, 3000, 20000).ok());
  CHECK(dp.reserve(3001, 0, 0).status == Status::Full);
}

#include "bridge/update_batch.h"
#include "check.h"
#include "core/dataplane.h"

using namespace svcplane;

namespace {

FrontendSpec fe(uint32_t addr) {
  FrontendSpec f{};
  f.key.addr = IpAddr::v4(addr);
  f.key.port = 80;
  f.key.proto = 6;
  return f;
}

BackendSpec be(uint32_t id) {
  return BackendSpec{id, IpAddr::v4(0x0a000000 + id), 8080, BackendState::Active, 1, false, 0};
}

ServiceSpec svc(uint32_t id, std::vector<FrontendSpec> frontends, std::vector<uint32_t> backends) {
  ServiceSpec s{};
  s.id = id;
  s.kind = SchedulerKind::Random;
  s.emptyVerdict = Verdict::Reject;
  s.frontends = std::move(frontends);
  s.backendIds = std::move(backends);
  return s;
}

// Room for four of each, so a fifth service is refused.
DataplaneConfig four() {
  DataplaneConfig c;
  c.maxServices = c.maxFrontends = c.maxBackends = 4;
  return c;
}

}  // namespace

TEST_CASE("update batch: backends then services, one call") {
  Dataplane dp(four());
  bridge::UpdateBatch b;
  b.backends = {be(1), be(2)};
  b.services = {svc(1, {fe(0xac1e0001)}, {1, 2}), svc(2, {fe(0xac1e0002)}, {2})};
  CHECK(bridge::applyUpdateBatch(dp, b).result.ok());
  CHECK_EQ(dp.services().size(), 2u);
  CHECK_EQ(dp.frontends().size(), 2u);
  CHECK_EQ(dp.backends().size(), 2u);
}

TEST_CASE("update batch: a frontend given up earlier in the batch is free after it") {
  Dataplane dp(four());
  bridge::UpdateBatch first;
  first.backends = {be(1)};
  first.services = {svc(1, {fe(0xac1e0001)}, {1})};
  CHECK(bridge::applyUpdateBatch(dp, first).result.ok());
  bridge::UpdateBatch move;
  move.services = {svc(1, {}, {1}), svc(2, {fe(0xac1e0001)}, {1})};
  CHECK(bridge::applyUpdateBatch(dp, move).result.ok());
  CHECK_EQ(dp.frontends().peek(fe(0xac1e0001).key)->serviceId, 2u);
  bridge::UpdateBatch back;  // the other order conflicts, and changes nothing
  back.services = {svc(1, {fe(0xac1e0001)}, {1}), svc(2, {}, {1})};
  bridge::BatchOutcome out = bridge::applyUpdateBatch(dp, back);
  CHECK(out.result.status == Status::Conflict);
  CHECK(out.service);
  CHECK_EQ(out.index, 0u);
  CHECK_EQ(dp.frontends().peek(fe(0xac1e0001).key)->serviceId, 2u);
  CHECK_EQ(dp.services().peek(1)->frontends.size(), 0u);
}

TEST_CASE("update batch: refused whole when a later update does not fit") {
  Dataplane dp(four());
  bridge::UpdateBatch b;
  b.backends = {be(1), be(2)};
  for (uint32_t i = 1; i <= 5; ++i) b.services.push_back(svc(i, {}, {1}));
  bridge::BatchOutcome out = bridge::applyUpdateBatch(dp, b);
  CHECK(out.result.status == Status::Full);
  CHECK_EQ(out.index, 4u);
  CHECK_EQ(dp.services().size(), 0u);
  CHECK_EQ(dp.backends().size(), 0u);
  b.services.resize(1);
  b.services[0].backendIds = {3};
  out = bridge::applyUpdateBatch(dp, b);
  CHECK(out.result.status == Status::NotFound);
  CHECK_EQ(dp.backends().size(), 0u);
  b.backends.push_back(be(5));
  b.backends.back().weight = 0;
  out = bridge::applyUpdateBatch(dp, b);
  CHECK(out.result.status == Status::Invalid);
  CHECK(!out.service);
  CHECK_EQ(out.index, 2u);
}

// PacketPool: every job of a run runs once and what jobs write is visible to the caller when
// run() returns; two jobs run on two threads at once; pools start and stop cleanly, idle or
// after work; a ShardedDataplane's steered batch processed shard by shard on the pool (what the
// Node addon's processPackets fan-out does) decides as the shards do one after another. These
// "sharded: packet pool" cases are also what native/test/run-tsan.sh runs under ThreadSanitizer.
#include <atomic>
#include <chrono>
#include <cstring>
#include <thread>
#include <vector>

#include "check.h"
#include "core/packet_pool.h"
#include "core/sharded_dataplane.h"
#include "packet_builder.h"

using namespace svcplane;

TEST_CASE("sharded: packet pool runs every job once per run, its writes seen after run") {
  for (uint32_t threads : {1u, 2u, 3u, 5u}) {
    PacketPool pool(threads);
    CHECK(pool.threads() == threads);
    std::vector<uint64_t> calls(8, 0);  // plain memory: each slot written by its job alone
    uint64_t expect[8] = {};
    for (uint32_t round = 0; round < 3000; ++round) {
      const uint32_t n = 1 + round % 8;
      pool.run(n, [&](uint32_t i) { ++calls[i]; });
      for (uint32_t i = 0; i < n; ++i) ++expect[i];
    }
    for (uint32_t i = 0; i < 8; ++i) CHECK(calls[i] == expect[i]);
  }
}

TEST_CASE("sharded: packet pool runs jobs on two threads at once") {
  PacketPool pool(2);
  for (int round = 0; round < 20; ++round) {
    // Whichever job the caller claims, the other one must run elsewhere meanwhile: each waits
    // (bounded) for the other to have started.
    std::atomic<int> started{0};
    std::atomic<bool> together{true};
    pool.run(2, [&](uint32_t) {
      started.fetch_add(1);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (started.load() < 2)
        if (std::chrono::steady_clock::now() > deadline) {
          together = false;
          return;
        }
    });
    CHECK(together.load());
  }
}

TEST_CASE("sharded: packet pool starts and stops idle and after work") {
  for (int k = 0; k < 50; ++k) { PacketPool idle(4); }
  PacketPool pool(2);
  int ran = 0;
  pool.run(0, [&](uint32_t) { ++ran; });
  CHECK(ran == 0);
  std::vector<int> hit(7, 0);
  pool.run(7, [&](uint32_t i) { ++hit[i]; });  // more jobs than threads: each runs once
  for (int h : hit) CHECK(h == 1);
}

namespace {

IpAddr ipOf(const pb::Addr& a) {
  IpAddr x{};
  x.b[10] = x.b[11] = 0xff;
  std::memcpy(x.b + 12, a.b, 4);
  return x;
}

}  // namespace

TEST_CASE("sharded: packet pool fans a steered batch out over the shards") {
  constexpr uint32_t kShards = 3, kClients = 600;
  DataplaneConfig cfg;  // default capacities
  cfg.seed = 9;
  ShardedDataplane dp(cfg, kShards);
  for (uint32_t id = 1; id <= 3; ++id)
    CHECK(dp.upsertBackend(
                BackendSpec{id, ipOf(pb::v4(10, 180, 0, uint8_t(id))), 8080, BackendState::Active, 1, false, 0})
              .ok());
  ServiceSpec s{};
  s.id = 1;
  s.kind = SchedulerKind::Maglev;
  s.emptyVerdict = Verdict::Reject;
  FrontendSpec f{};
  f.key = FrontendKey{ipOf(pb::v4(172, 30, 0, 41)), 80, 6, uint8_t(Scope::External)};
  s.frontends.push_back(f);
  s.backendIds = {1, 2, 3};
  CHECK(dp.upsertService(s).ok());
  PacketPool pool(kShards);
  PacketOptions opt;
  opt.link = LinkType::Raw;
  for (uint32_t round = 0; round < 20; ++round) {
    std::vector<pb::Bytes> pkts;
    for (uint32_t k = 0; k < kClients; ++k) {
      pb::Spec sp{pb::v4(192, 168, uint8_t(1 + k / 200), uint8_t(k % 200 + 1)), pb::v4(172, 30, 0, 41)};
      sp.sport = uint16_t(20000 + k);
      sp.tcpFlags = round == 0 ? 0x02 : 0x10;
      pkts.push_back(pb::build(sp).bytes);
    }
    std::vector<PacketRef> refs;
    for (auto& p : pkts) refs.push_back(PacketRef{p.data(), uint32_t(p.size())});
    std::vector<uint32_t> shardOf(kClients);
    dp.shardsOfPackets(refs.data(), kClients, opt, shardOf.data());
    std::vector<std::vector<PacketRef>> slices(kShards);
    for (uint32_t i = 0; i < kClients; ++i) slices[shardOf[i]].push_back(refs[i]);
    std::vector<std::vector<uint8_t>> v(kShards), r(kShards);
    pool.run(kShards, [&](uint32_t shard) {
      auto& sl = slices[shard];
      v[shard].assign(sl.size(), 0xff);
      r[shard].assign(sl.size(), 0xff);
      dp.processPackets(shard, sl.data(), uint32_t(sl.size()), opt, (round + 1) * 1000000ull, v[shard].data(),
                        r[shard].data());
    });
    for (uint32_t shard = 0; shard < kShards; ++shard) {
      CHECK(!slices[shard].empty());
      for (uint8_t x : v[shard]) CHECK(Verdict(x) == Verdict::Forward);
    }
  }
  CHECK(dp.flows() == kClients);
}

// ShardedDataplane: steering keeps both directions of a flow (masqueraded or not) on one
// shard; one shard decides as a Dataplane does; N packet threads run while the control path
// adds and removes services and backends (these "sharded: concurrent" cases are also what
// native/test/run-tsan.sh runs under ThreadSanitizer).
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "check.h"
#include "core/sharded_dataplane.h"
#include "packet_builder.h"

using namespace svcplane;

namespace {

constexpr uint64_t S = 1000000000ull;

IpAddr ip(const pb::Addr& a) {
  IpAddr x{};
  x.b[10] = x.b[11] = 0xff;
  std::memcpy(x.b + 12, a.b, 4);
  return x;
}

const pb::Addr kVip = pb::v4(172, 30, 0, 41), kVip2 = pb::v4(172, 30, 0, 42), kNode = pb::v4(192, 168, 0, 2);
pb::Addr backendAddr(uint32_t id) { return pb::v4(10, 180, 0, uint8_t(id)); }
pb::Addr clientAddr(uint32_t k) { return pb::v4(192, 168, uint8_t(1 + k / 200), uint8_t(k % 200 + 1)); }

DataplaneConfig config() {
  DataplaneConfig c;
  c.maxServices = 8;
  c.maxFrontends = 16;
  c.maxBackends = 16;
  c.maxFlows = 8192;
  c.maxAffinity = 64;
  c.maxNatPorts = 8192;
  c.maxFragments = 16;
  c.seed = 3;
  return c;
}

ServiceSpec service(uint32_t id, const pb::Addr& vip, std::vector<uint32_t> backends, MasqPolicy masq,
                    SchedulerKind kind = SchedulerKind::Maglev) {
  ServiceSpec s{};
  s.id = id;
  s.kind = kind;
  s.emptyVerdict = Verdict::Reject;
  FrontendSpec f{};
  f.key = FrontendKey{ip(vip), 80, 6, uint8_t(Scope::External)};
  f.masquerade = masq;
  s.frontends.push_back(f);
  s.backendIds = std::move(backends);
  return s;
}

// Backends 1..4 and service 1 (kVip) over 1..3; masquerade address kNode.
template <class DP>
void setUp(DP& dp, MasqPolicy masq) {
  for (uint32_t id = 1; id <= 4; ++id)
    CHECK(dp.upsertBackend(BackendSpec{id, ip(backendAddr(id)), 8080, BackendState::Active, 1, false, 0}).ok());
  CHECK(dp.upsertService(service(1, kVip, {1, 2, 3}, masq)).ok());
  PacketConfig pc;
  pc.nodeAddrs = {ip(kNode)};
  pc.hasMasq4 = true;
  pc.masq4 = ip(kNode);
  CHECK(dp.setPacketConfig(pc).ok());
}

pb::Bytes clientPacket(uint32_t k, const pb::Addr& vip, uint8_t flags) {
  pb::Spec s{clientAddr(k), vip};
  s.sport = uint16_t(20000 + k);
  s.tcpFlags = flags;
  return pb::build(s).bytes;
}

// The reply a backend sends to a forwarded packet: the forwarded packet with its addresses and
// ports swapped.
pb::Bytes replyTo(const pb::Bytes& forwarded) {
  pb::Addr src{4, {}}, dst{4, {}};
  std::memcpy(src.b, forwarded.data() + 16, 4);
  std::memcpy(dst.b, forwarded.data() + 12, 4);
  pb::Spec r{src, dst};
  r.sport = pb::get16(forwarded, 22);
  r.dport = pb::get16(forwarded, 20);
  r.tcpFlags = 0x12;
  return pb::build(r).bytes;
}

struct Outcome {
  Verdict v;
  Reason r;
};

Outcome run(ShardedDataplane& dp, uint32_t shard, pb::Bytes& p, PacketDirection dir, uint64_t now) {
  PacketRef ref{p.data(), uint32_t(p.size())};
  PacketOptions o;
  o.dir = dir;
  o.link = LinkType::Raw;
  uint8_t v = 0xff, r = 0xff;
  dp.processPackets(shard, &ref, 1, o, now, &v, &r);
  return {Verdict(v), Reason(r)};
}

uint32_t steer(ShardedDataplane& dp, const pb::Bytes& p, PacketDirection dir) {
  PacketOptions o;
  o.dir = dir;
  o.link = LinkType::Raw;
  return dp.shardOfPacket(p.data(), uint32_t(p.size()), o);
}

}  // namespace

TEST_CASE("sharded: both directions of a flow steer to one shard, with and without masquerade") {
  for (MasqPolicy masq : {MasqPolicy::Never, MasqPolicy::Always}) {
    ShardedDataplane dp(config(), 4);
    setUp(dp, masq);
    std::vector<uint32_t> perShard(4, 0);
    for (uint32_t k = 0; k < 400; ++k) {
      pb::Bytes p = clientPacket(k, kVip, 0x02);
      uint32_t shard = steer(dp, p, PacketDirection::ToService);
      ++perShard[shard];
      Outcome o = run(dp, shard, p, PacketDirection::ToService, S);
      CHECK(o.v == Verdict::Forward);
      if (masq == MasqPolicy::Always) {
        CHECK(std::memcmp(p.data() + 12, kNode.b, 4) == 0);
        CHECK_EQ(uint32_t(pb::get16(p, 20)) % 4, shard);  // the NAT port is of the shard's class
      }
      pb::Bytes r = replyTo(p);
      CHECK_EQ(steer(dp, r, PacketDirection::FromBackend), shard);
      CHECK_EQ(steer(dp, r, PacketDirection::ToService), shard);  // not to a frontend: the same
      Outcome ro = run(dp, shard, r, PacketDirection::FromBackend, S);
      CHECK(ro.v == Verdict::Reply);
      CHECK(std::memcmp(r.data() + 12, kVip.b, 4) == 0);
      CHECK(std::memcmp(r.data() + 16, clientAddr(k).b, 4) == 0);
      CHECK_EQ(uint32_t(pb::get16(r, 22)), 20000 + k);
    }
    CHECK_EQ(dp.flows(), 400u);
    for (uint32_t n : perShard) CHECK(n > 40);
    // The batch form steers as packet by packet does.
    std::vector<pb::Bytes> batch;
    for (uint32_t k = 0; k < 64; ++k) batch.push_back(clientPacket(k, k % 2 ? kVip : kVip2, 0x10));
    std::vector<PacketRef> refs;
    for (auto& p : batch) refs.push_back(PacketRef{p.data(), uint32_t(p.size())});
    std::vector<uint32_t> shards(batch.size());
    PacketOptions o;
    o.link = LinkType::Raw;
    dp.shardsOfPackets(refs.data(), uint32_t(refs.size()), o, shards.data());
    for (size_t i = 0; i < batch.size(); ++i)
      CHECK_EQ(shards[i], steer(dp, batch[i], PacketDirection::ToService));  // 400 clients spread over the 4 shards
    CHECK_EQ(dp.packetCounters().packets, 800u);
  }
}

TEST_CASE("sharded: the tuple API steers replies to the flow's shard") {
  ShardedDataplane dp(config(), 4);
  setUp(dp, MasqPolicy::Never);
  for (uint32_t k = 0; k < 200; ++k) {
    FlowInput in{};
    in.key.src = ip(clientAddr(k));
    in.key.dst = ip(kVip);
    in.key.sport = uint16_t(30000 + k);
    in.key.dport = 80;
    in.key.proto = 6;
    in.scope = Scope::External;
    in.tcpFlags = kSyn;
    uint32_t shard = dp.shardOfFlow(in.key);
    Decision d;
    dp.decide(shard, in, S, d);
    CHECK(d.verdict == Verdict::Forward);
    FlowInput r{};
    r.key.src = d.addr;
    r.key.sport = d.port;
    r.key.dst = in.key.src;
    r.key.dport = in.key.sport;
    r.key.proto = 6;
    r.tcpFlags = kSyn | kAck;
    CHECK_EQ(dp.shardOfFlow(r.key), shard);
    dp.decide(shard, r, S, d);
    CHECK(d.verdict == Verdict::Reply);
    CHECK(d.addr == ip(kVip));
  }
}

TEST_CASE("sharded: one shard decides exactly as a Dataplane; N shards pick the same Maglev backends") {
  Dataplane one(config());
  ShardedDataplane single(config(), 1), four(config(), 4);
  setUp(one, MasqPolicy::Never);
  setUp(single, MasqPolicy::Never);
  setUp(four, MasqPolicy::Never);
  for (uint32_t k = 0; k < 300; ++k) {
    pb::Bytes a = clientPacket(k, kVip, 0x02), b = a, c = a;
    PacketRef ref{a.data(), uint32_t(a.size())};
    PacketOptions o;
    o.link = LinkType::Raw;
    uint8_t v, r;
    one.processPackets(&ref, 1, o, S, &v, &r);
    Outcome ob = run(single, 0, b, PacketDirection::ToService, S);
    Outcome oc = run(four, steer(four, c, PacketDirection::ToService), c, PacketDirection::ToService, S);
    CHECK(Verdict(v) == Verdict::Forward);
    CHECK(ob.v == Verdict::Forward && oc.v == Verdict::Forward);
    CHECK(a == b);  // byte for byte: the same backend, the same rewrite
    CHECK(a == c);  // Maglev hashes with a shared seed: every shard maps a flow alike
  }
  CHECK_EQ(single.flows(), one.conntrack().size());
  CHECK_EQ(four.flows(), one.conntrack().size());
}

TEST_CASE("sharded: a NAT port range with fewer ports than shards is refused, nothing changed") {
  ShardedDataplane dp(config(), 4);
  PacketConfig pc;
  pc.natPortLow = 2000;
  pc.natPortHigh = 2002;  // 2000, 2001, 2002: shard 3 would have none
  Result r = dp.setPacketConfig(pc);
  CHECK(r.status == Status::Invalid);
  CHECK(dp.withShard(0, [](Dataplane& d) { return d.packetConfig().natPortLow; }) == 1024);
  pc.natPortHigh = 2003;
  CHECK(dp.setPacketConfig(pc).ok());
}

TEST_CASE("sharded: one client's flows spread over the shards and keep one affinity backend") {
  ShardedDataplane dp(config(), 4);
  setUp(dp, MasqPolicy::Never);
  ServiceSpec sticky = service(2, kVip2, {1, 2, 3, 4}, MasqPolicy::Never, SchedulerKind::Random);
  sticky.affinityTimeoutNs = 60 * S;
  CHECK(dp.upsertService(sticky).ok());
  std::vector<uint32_t> perShard(4, 0);
  int backend = -1;
  for (uint32_t port = 0; port < 200; ++port) {
    pb::Spec sp{clientAddr(7), kVip2};
    sp.sport = uint16_t(30000 + port);
    pb::Bytes p = pb::build(sp).bytes;
    uint32_t shard = steer(dp, p, PacketDirection::ToService);
    ++perShard[shard];
    CHECK(run(dp, shard, p, PacketDirection::ToService, S).v == Verdict::Forward);
    if (backend < 0) backend = p[19];
    CHECK_EQ(int(p[19]), backend);  // every flow of the client: the same backend
  }
  for (uint32_t n : perShard) CHECK(n > 20);
  CHECK_EQ(dp.withShard(0, [](Dataplane& d) { return d.affinity().size(); }), 1u);
  // Removing the service removes its affinity entry, once, for every shard.
  CHECK(dp.deleteService(2).ok());
  CHECK_EQ(dp.withShard(0, [](Dataplane& d) { return d.affinity().size(); }), 0u);
}

TEST_CASE("sharded: later fragments are steered after their first fragment") {
  ShardedDataplane dp(config(), 4);
  setUp(dp, MasqPolicy::Never);
  ServiceSpec udp = service(2, kVip2, {1}, MasqPolicy::Never);
  udp.frontends[0].key.proto = 17;
  CHECK(dp.upsertService(udp).ok());
  for (uint32_t k = 0; k < 40; ++k) {
    pb::Spec s{clientAddr(k), kVip2};
    s.proto = 17;
    s.sport = uint16_t(5000 + k);
    s.payload = 24;
    s.ipId = uint16_t(100 + k);
    pb::Bytes whole = pb::build(s).bytes;
    pb::Bytes first(whole.begin(), whole.begin() + 36), second(whole.begin(), whole.begin() + 20);
    second.insert(second.end(), whole.begin() + 36, whole.end());
    pb::put16(first, 2, uint16_t(first.size()));
    pb::put16(first, 6, 0x2000);  // MF
    pb::put16(first, 10, pb::ipv4HeaderChecksum(first, 0));
    pb::put16(second, 2, uint16_t(second.size()));
    pb::put16(second, 6, 2);  // offset 16 bytes
    pb::put16(second, 10, pb::ipv4HeaderChecksum(second, 0));
    uint32_t shard = steer(dp, first, PacketDirection::ToService);
    CHECK_EQ(steer(dp, second, PacketDirection::ToService), shard);
    CHECK(run(dp, shard, first, PacketDirection::ToService, S).v == Verdict::Forward);
    CHECK(run(dp, shard, second, PacketDirection::ToService, S).v == Verdict::Forward);
    CHECK_EQ(int(second[19]), 1);  // rewritten to backend 1 (10.180.0.1)
  }
}

// Packet threads, each on its own shard's flows (both directions, new flows and hits), while
// the control thread moves service 1 between backend sets, adds and removes service 2 and
// backend 9. Service 1 always has a backend, so each of its packets is forwarded (or, for a
// reply whose flow went with a removed backend, passed); nothing crashes, counts add up.
TEST_CASE("sharded: concurrent packet threads while the control path changes services and backends") {
  constexpr uint32_t kShards = 2, kThreads = 2, kRounds = 60, kClients = 256;
  for (MasqPolicy masq : {MasqPolicy::Never, MasqPolicy::Always}) {
    ShardedDataplane dp(config(), kShards);
    setUp(dp, masq);
    // Each thread's clients: those steered to its shard.
    std::vector<std::vector<uint32_t>> mine(kThreads);
    for (uint32_t k = 0; k < kClients; ++k)
      mine[steer(dp, clientPacket(k, kVip, 0x02), PacketDirection::ToService)].push_back(k);
    std::atomic<bool> stop{false};
    std::atomic<uint32_t> bad{0}, forwarded{0}, replied{0};
    std::atomic<uint64_t> sent{0};
    auto packetThread = [&](uint32_t shard) {
      uint64_t now = S;
      for (uint32_t round = 0; round < kRounds; ++round) {
        now += S / 100;
        // A batch of the shard's clients to service 1 (and to service 2 while it exists).
        std::vector<pb::Bytes> batch;
        for (uint32_t k : mine[shard]) batch.push_back(clientPacket(k, round % 3 == 2 ? kVip2 : kVip, 0x02));
        std::vector<PacketRef> refs;
        for (auto& p : batch) refs.push_back(PacketRef{p.data(), uint32_t(p.size())});
        std::vector<uint8_t> v(batch.size()), r(batch.size());
        PacketOptions o;
        o.link = LinkType::Raw;
        dp.processPackets(shard, refs.data(), uint32_t(refs.size()), o, now, v.data(), r.data());
        sent += batch.size();
        std::vector<pb::Bytes> replies;
        for (size_t i = 0; i < batch.size(); ++i) {
          bool toVip1 = round % 3 != 2;
          if (Verdict(v[i]) == Verdict::Forward) {
            ++forwarded;
            // The backend chosen is one service 1 or 2 ever listed.
            uint8_t last = batch[i][19];
            if (batch[i][16] != 10 || last < 1 || last > 9) ++bad;
            replies.push_back(replyTo(batch[i]));
          } else if (toVip1) {
            ++bad;  // service 1 never loses all its backends
          }
        }
        std::vector<PacketRef> rrefs;
        for (auto& p : replies) {
          if (steer(dp, p, PacketDirection::FromBackend) != shard) ++bad;
          rrefs.push_back(PacketRef{p.data(), uint32_t(p.size())});
        }
        std::vector<uint8_t> rv(replies.size()), rr(replies.size());
        o.dir = PacketDirection::FromBackend;
        dp.processPackets(shard, rrefs.data(), uint32_t(rrefs.size()), o, now, rv.data(), rr.data());
        sent += replies.size();
        for (size_t i = 0; i < replies.size(); ++i) {
          if (Verdict(rv[i]) == Verdict::Reply)
            ++replied;
          else if (Reason(rr[i]) != Reason::NotTracked)
            ++bad;
        }
      }
    };
    std::thread control([&] {
      uint32_t n = 0;
      while (!stop.load()) {
        ++n;
        dp.upsertService(service(1, kVip, n % 2 ? std::vector<uint32_t>{1, 2} : std::vector<uint32_t>{2, 3, 4}, masq));
        dp.upsertBackend(BackendSpec{9, ip(backendAddr(9)), 8080, BackendState::Active, 1, false, 0});
        dp.upsertService(service(2, kVip2, {4, 9}, masq, SchedulerKind::RoundRobin));
        dp.gc(S * 2, 64);
        dp.deleteService(2);
        dp.deleteBackend(9);
        dp.counters();
        std::this_thread::yield();
      }
    });
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < kThreads; ++t) threads.emplace_back(packetThread, t);
    for (auto& t : threads) t.join();
    stop = true;
    control.join();
    CHECK_EQ(bad.load(), 0u);
    CHECK(forwarded.load() > 0);
    CHECK(replied.load() > 0);
    CHECK_EQ(dp.packetCounters().packets, sent.load());
  }
}

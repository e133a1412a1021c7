#include "sharded_dataplane.h"

#include <algorithm>

#include "hash.h"

namespace svcplane {

namespace {

uint32_t divideUp(uint32_t total, uint32_t parts) { return std::max<uint32_t>(1, (total + parts - 1) / parts); }

void addCounters(DataplaneCounters& to, const DataplaneCounters& c) {
  for (int i = 0; i < kVerdicts; ++i) to.verdicts[i] += c.verdicts[i];
  for (int i = 0; i < kReasons; ++i) to.reasons[i] += c.reasons[i];
  to.packets += c.packets;
}

void addCounters(PacketCounters& to, const PacketCounters& c) {
  to.packets += c.packets;
  for (int i = 0; i < kVerdicts; ++i) to.verdicts[i] += c.verdicts[i];
  for (int i = 0; i < kPacketReasons; ++i) to.reasons[i] += c.reasons[i];
  for (int i = 0; i < kPktCounters; ++i) to.counts[i] += c.counts[i];
}

uint16_t readPort(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

uint64_t steerSeedOf(uint64_t seed) {
  uint64_t s = seed ^ 0x5eed5eed5eedull;
  return splitmix64(s);
}

// The seed Dataplane gives its own affinity map (derive(seed, 5) in dataplane.cc), so a shared
// map hashes as a shard's own would.
uint64_t affinitySeedOf(uint64_t seed) {
  uint64_t s = seed ^ (5 * 0x9e3779b97f4a7c15ull);
  return splitmix64(s);
}

}  // namespace

ShardedDataplane::ShardedDataplane(const DataplaneConfig& cfg, uint32_t shards)
    : steerSeed_(steerSeedOf(cfg.seed)),
      fragShards_(shards > 1 ? cfg.maxFragments : 0, steerSeed_ + 1, FullPolicy::EvictOldest) {
  const uint32_t n = std::clamp<uint32_t>(shards, 1, kMaxShards);
  if (n > 1)
    affinity_ = std::make_unique<SharedAffinity>(cfg.maxAffinity, affinitySeedOf(cfg.seed), cfg.affinityPolicy);
  shards_.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    DataplaneConfig c = cfg;
    c.maxFlows = divideUp(cfg.maxFlows, n);
    c.maxNatPorts = divideUp(cfg.maxNatPorts, n);
    c.maxFragments = divideUp(cfg.maxFragments, n);
    c.natPortClass = i;
    c.natPortClasses = n;
    // Shard 0 keeps the configured stream, so one shard decides exactly as a Dataplane does.
    if (i > 0) {
      uint64_t r = (cfg.rngSeed ? cfg.rngSeed : cfg.seed) + i * 0x9e3779b97f4a7c15ull;
      c.rngSeed = splitmix64(r) | 1;
    }
    shards_.push_back(std::make_unique<Shard>(c, affinity_.get(), i == 0));
  }
}

// ---------------------------------------------------------------------------------------
// Steering

uint32_t ShardedDataplane::shardOfEndpoint(const IpAddr& addr, uint16_t port) const {
  const uint32_t n = shards();
  if (n == 1) return 0;
  // A masquerade address: the NAT port's class (NatPorts::setClass).
  if ((hasMasq4_ && addr == masq4_) || (hasMasq6_ && addr == masq6_)) return port % n;
  // The port as one whole word (keyedHash takes 4-byte words; a 2-byte store and its padding
  // would stall the hash's load on store forwarding).
  struct {
    IpAddr addr;
    uint32_t port;
  } ep{addr, port};
  return uint32_t(keyedHash(&ep, sizeof ep, steerSeed_) % n);
}

bool ShardedDataplane::isFrontend(const IpAddr& addr, uint16_t port, uint8_t proto) const {
  auto& fe = shards_[0]->dp.frontends();
  // External first: the scope of most traffic to a frontend, found with one lookup.
  for (uint8_t scope : {uint8_t(Scope::External), uint8_t(Scope::Internal)})
    if (fe.findIndex(frontendKey(addr, port, proto, scope)) != FixedMap<FrontendKey, FrontendRec>::kNone) return true;
  return false;
}

uint32_t ShardedDataplane::shardOfFlow(const FlowKey& k) {
  if (shards() == 1) return 0;
  std::lock_guard<std::mutex> g(steer_);
  return isFrontend(k.dst, k.dport, k.proto) ? shardOfEndpoint(k.src, k.sport) : shardOfEndpoint(k.dst, k.dport);
}

uint32_t ShardedDataplane::shardOfPacket(const uint8_t* data, uint32_t len, const PacketOptions& opt) {
  if (shards() == 1) return 0;
  std::lock_guard<std::mutex> g(steer_);
  return steerLocked(data, len, opt);
}

void ShardedDataplane::shardsOfPackets(const PacketRef* pkts, uint32_t n, const PacketOptions& opt, uint32_t* shards) {
  if (this->shards() == 1) {
    std::fill(shards, shards + n, 0u);
    return;
  }
  std::lock_guard<std::mutex> g(steer_);
  for (uint32_t i = 0; i < n; ++i) shards[i] = steerLocked(pkts[i].data, pkts[i].len, opt);
}

uint32_t ShardedDataplane::shardOfPacketReadOnly(const uint8_t* data, uint32_t len, const PacketOptions& opt) {
  return shards() == 1 ? 0 : steerLocked(data, len, opt, false);
}

uint32_t ShardedDataplane::steerLocked(const uint8_t* data, uint32_t len, const PacketOptions& opt, bool remember) {
  ParsedPacket pp;
  if (parsePacket(data, len, opt.link, pp) != Reason::None) return 0;  // dropped or passed: no state
  auto addrs = [&](const IpHeaders& ip, IpAddr& src, IpAddr& dst) {
    const uint32_t off = ip.family == 4 ? 12 : 8, size = ip.family == 4 ? 4 : 16;
    src = readAddr(data + ip.l3 + off, ip.family);
    dst = readAddr(data + ip.l3 + off + size, ip.family);
  };
  IpAddr src, dst;
  switch (pp.kind) {
    case PacketKind::Flow: {
      if (pp.ip.fragment && !remember) return kSteerSerially;
      addrs(pp.ip, src, dst);
      const uint32_t shard = opt.dir == PacketDirection::ToService && isFrontend(dst, pp.dport, pp.ip.proto)
                                 ? shardOfEndpoint(src, pp.sport)
                                 : shardOfEndpoint(dst, pp.dport);
      if (pp.ip.fragment) {
        auto r = fragShards_.insert(FragKey{src, dst, pp.ip.fragId, pp.ip.proto, {}});
        if (r.index != FixedMap<FragKey, uint32_t>::kNone) fragShards_.at(r.index).value = shard;
      }
      return shard;
    }
    case PacketKind::LaterFragment: {
      // After its first fragment; one not seen is passed by whichever shard gets it.
      if (!remember) return kSteerSerially;
      addrs(pp.ip, src, dst);
      const uint32_t* shard = fragShards_.peek(FragKey{src, dst, pp.ip.fragId, pp.ip.proto, {}});
      return shard ? *shard : 0;
    }
    case PacketKind::IcmpError: {
      // The quoted packet left through this dataplane: its client is its source, unless its
      // source is a frontend (a reply towards the client).
      addrs(pp.inner, src, dst);
      const uint16_t sport = readPort(data + pp.inner.l4), dport = readPort(data + pp.inner.l4 + 2);
      return isFrontend(src, sport, pp.inner.proto) ? shardOfEndpoint(dst, dport) : shardOfEndpoint(src, sport);
    }
    default: addrs(pp.ip, src, dst); return shardOfEndpoint(src, 0);  // echo and other protocols keep no state
  }
}

// ---------------------------------------------------------------------------------------
// Packet path

void ShardedDataplane::decide(uint32_t shard, const FlowInput& in, uint64_t now, Decision& out) {
  Shard& s = *shards_[shard];
  std::lock_guard<std::mutex> g(s.mutex);
  s.dp.decide(in, now, out);
}

void ShardedDataplane::decideBatch(uint32_t shard, const FlowInput* in, uint32_t n, uint64_t now, Decision* out) {
  Shard& s = *shards_[shard];
  std::lock_guard<std::mutex> g(s.mutex);
  s.dp.decideBatch(in, n, now, out);
}

void ShardedDataplane::processPackets(uint32_t shard, const PacketRef* pkts, uint32_t n, const PacketOptions& opt,
                                      uint64_t now, uint8_t* verdicts, uint8_t* reasons) {
  Shard& s = *shards_[shard];
  std::lock_guard<std::mutex> g(s.mutex);
  s.dp.processPackets(pkts, n, opt, now, verdicts, reasons);
}

// ---------------------------------------------------------------------------------------
// Control path

template <class F>
Result ShardedDataplane::everyShard(F&& f) {
  std::lock_guard<std::mutex> c(control_);
  for (size_t i = 0; i < shards_.size(); ++i) {
    Shard& s = *shards_[i];
    std::lock_guard<std::mutex> g(s.mutex);
    // Shard 0's frontends are what steering reads.
    std::unique_lock<std::mutex> steer(steer_, std::defer_lock);
    if (i == 0) steer.lock();
    Result r = f(s.dp);
    // Shards hold identical service maps and see identical updates: only shard 0 can refuse
    // (and then nothing changed anywhere).
    if (!r.ok()) return r;
  }
  return {};
}

template <class F>
uint32_t ShardedDataplane::sumShards(F&& f) {
  std::lock_guard<std::mutex> c(control_);
  uint32_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> g(s->mutex);
    n += f(s->dp);
  }
  return n;
}

Result ShardedDataplane::upsertBackend(const BackendSpec& spec) {
  return everyShard([&](Dataplane& dp) { return dp.upsertBackend(spec); });
}

Result ShardedDataplane::deleteBackend(uint32_t id) {
  return everyShard([&](Dataplane& dp) { return dp.deleteBackend(id); });
}

Result ShardedDataplane::upsertService(const ServiceSpec& spec) {
  return everyShard([&](Dataplane& dp) { return dp.upsertService(spec); });
}

Result ShardedDataplane::deleteService(uint32_t id) {
  return everyShard([&](Dataplane& dp) { return dp.deleteService(id); });
}

Result ShardedDataplane::reserve(uint32_t services, uint32_t frontends, uint32_t backends) {
  return everyShard([&](Dataplane& dp) { return dp.reserve(services, frontends, backends); });
}

Result ShardedDataplane::setPacketConfig(const PacketConfig& c) {
  // Every shard needs a NAT port of its class; consecutive ports cover every class. Checked
  // here, before any shard changes, since shard 0 alone would accept a narrower range.
  if (c.natPortLow != 0 && c.natPortLow <= c.natPortHigh && uint32_t(c.natPortHigh) - c.natPortLow + 1 < shards())
    return {Status::Invalid, "natPortRange has fewer ports than the " + std::to_string(shards()) +
                                 " shards (each shard needs at least one)"};
  Result r = everyShard([&](Dataplane& dp) { return dp.setPacketConfig(c); });
  if (r.ok()) setSteering(c);
  return r;
}

void ShardedDataplane::setSteering(const PacketConfig& c) {
  std::lock_guard<std::mutex> g(steer_);
  hasMasq4_ = c.hasMasq4;
  hasMasq6_ = c.hasMasq6;
  masq4_ = c.masq4;
  masq6_ = c.masq6;
}

uint32_t ShardedDataplane::deleteFlowsByBackend(uint32_t backendId) {
  return sumShards([&](Dataplane& dp) { return dp.deleteFlowsByBackend(backendId); });
}

uint32_t ShardedDataplane::deleteFlowsByService(uint32_t serviceId) {
  return sumShards([&](Dataplane& dp) { return dp.deleteFlowsByService(serviceId); });
}

void ShardedDataplane::flushConntrack() {
  sumShards([](Dataplane& dp) {
    dp.flushConntrack();
    return 0u;
  });
}

uint32_t ShardedDataplane::gc(uint64_t now, uint32_t budget) {
  return sumShards([&](Dataplane& dp) { return dp.gc(now, budget); });
}

uint32_t ShardedDataplane::gcAffinity(uint64_t now, uint32_t budget) {
  return sumShards([&](Dataplane& dp) { return dp.gcAffinity(now, budget); });
}

// ---------------------------------------------------------------------------------------
// Inspection

template <class C, class Get>
C ShardedDataplane::sumCounters(Get&& get) {
  C sum;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> g(s->mutex);
    addCounters(sum, get(s->dp));
  }
  return sum;
}

DataplaneCounters ShardedDataplane::counters() {
  return sumCounters<DataplaneCounters>([](Dataplane& dp) { return dp.counters(); });
}

PacketCounters ShardedDataplane::packetCounters() {
  return sumCounters<PacketCounters>([](Dataplane& dp) { return dp.packetCounters(); });
}

uint32_t ShardedDataplane::flows() {
  uint32_t n = 0;
  for (auto& s : shards_) {
    std::lock_guard<std::mutex> g(s->mutex);
    n += s->dp.conntrack().size();
  }
  return n;
}

}  // namespace svcplane

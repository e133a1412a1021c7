// A dataplane for N packet threads: N shards, each a whole Dataplane (service maps, conntrack,
// affinity, NAT ports, fragments, counters) owned by one packet thread at a time, the way
// DPDK gives each lcore its own tables and eBPF gives each CPU its per-CPU maps.
//
// Steering. A flow lives in the shard of its *client endpoint* (address and port), the one
// thing both of its tuples share: the original tuple has the client as its source, the reply
// tuple as its destination (client -> frontend becomes backend -> client). When the flow is
// masqueraded the reply's destination is the node address and a NAT port instead; each shard
// hands out only NAT ports of its own class (port % shards == shard), and an endpoint on a
// masquerade address is steered by its port alone, so the reply again lands on the flow's
// shard. Any other endpoint is steered by a keyed hash of address and port, so the flows of
// one busy client (a load balancer's SNAT address, a node) spread over every shard; session
// affinity, which must follow a client across its flows, is one map all shards share, under
// a mutex taken only by new flows of services with affinity. A packet's client endpoint is
// its source when its destination is a frontend, else its destination (replies, and batches
// FromBackend). ICMP errors are steered by the tuple they quote, seen from the other side.
// Later fragments carry no ports: the steering stage remembers where it sent each first
// fragment (a small LRU map of its own) and sends the rest after it. shardOfPacket /
// shardOfFlow compute this; the caller (a software RSS stage, or a NIC programmed to match)
// hands each shard's packets to the thread that serves it.
//
// Threads. Packet calls (decide*, processPackets) name their shard; calls on different shards
// run in parallel and share no mutable state; calls on one shard are serialised by the
// shard's mutex, taken once per call (per batch), uncontended when one thread serves the
// shard. Control calls (upsert*, delete*, gc, setPacketConfig, ...) may come from any thread;
// they are serialised among themselves and apply the change to one shard at a time, holding
// only that shard's mutex, so a packet thread waits at most for one O(changed) update of its
// own shard and never sees half of one. Every shard holds the same service maps and applies
// the same sequence of updates, so a change refused by shard 0 (validated before anything
// changes) is refused before any shard changed, and one shard 0 accepted is accepted by all.
//
// What is per shard (and so only approximately global): lc/wlc connection counts and rr/wrr
// positions (each shard balances its own new flows; together they spread as evenly), the
// random scheduler's stream, and the capacity of the flow maps (maxFlows and the
// other flow-state capacities are divided among the shards).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "dataplane.h"
#include "frag_map.h"

namespace svcplane {

class ShardedDataplane {
 public:
  static constexpr uint32_t kMaxShards = 64;

  // shards in [1, kMaxShards] (clamped). The flow-state capacities of cfg are divided among
  // the shards (rounded up); the service-map ceilings hold in every shard.
  ShardedDataplane(const DataplaneConfig& cfg, uint32_t shards);

  uint32_t shards() const { return uint32_t(shards_.size()); }

  // Steering (thread-safe; reads the frontends under a mutex of its own).
  uint32_t shardOfFlow(const FlowKey& k);
  uint32_t shardOfPacket(const uint8_t* data, uint32_t len, const PacketOptions& opt);
  // shards[i] = shardOfPacket(pkts[i]), taking the steering mutex once for the batch.
  void shardsOfPackets(const PacketRef* pkts, uint32_t n, const PacketOptions& opt, uint32_t* shards);
  // shardOfPacket for packets whose steering changes nothing, without the mutex, so that several
  // threads may steer parts of one batch at once; fragments (whose steering is remembered) get
  // kSteerSerially, for shardsOfPackets after. Only while no control call can run (the caller
  // excludes them: the Node addon's processPackets fan-out).
  static constexpr uint32_t kSteerSerially = UINT32_MAX;
  uint32_t shardOfPacketReadOnly(const uint8_t* data, uint32_t len, const PacketOptions& opt);

  // Packet path: the shard's own Dataplane, under its mutex. Every flow given to a shard must
  // be one shardOfFlow / shardOfPacket steers there; others are decided on that shard's state
  // alone (memory-safe, but their other direction will not find them).
  void decide(uint32_t shard, const FlowInput& in, uint64_t now, Decision& out);
  void decideBatch(uint32_t shard, const FlowInput* in, uint32_t n, uint64_t now, Decision* out);
  void processPackets(uint32_t shard, const PacketRef* pkts, uint32_t n, const PacketOptions& opt, uint64_t now,
                      uint8_t* verdicts, uint8_t* reasons);

  // Control path: every shard, one after another.
  Result upsertBackend(const BackendSpec& spec);
  Result deleteBackend(uint32_t id);
  Result upsertService(const ServiceSpec& spec);
  Result deleteService(uint32_t id);
  Result reserve(uint32_t services, uint32_t frontends, uint32_t backends);
  Result setPacketConfig(const PacketConfig& c);
  // What steering takes from a packet config (the masquerade addresses), for a caller that
  // gave the shards their config one by one (the Node addon's shard handles).
  void setSteering(const PacketConfig& c);
  uint32_t deleteFlowsByBackend(uint32_t backendId);
  uint32_t deleteFlowsByService(uint32_t serviceId);
  void flushConntrack();
  // Each shard scans up to budget slots.
  uint32_t gc(uint64_t now, uint32_t budget);
  uint32_t gcAffinity(uint64_t now, uint32_t budget);

  // Inspection: sums over the shards.
  DataplaneCounters counters();
  PacketCounters packetCounters();
  uint32_t flows();
  // Runs f(Dataplane&) on one shard under its mutex (inspection and tests).
  template <class F>
  auto withShard(uint32_t shard, F&& f) {
    Shard& s = *shards_[shard];
    std::lock_guard<std::mutex> g(s.mutex);
    return f(s.dp);
  }

  // Runs f(const FixedMap<AffinityKey, AffinityRec>&) on the affinity map all shards share,
  // under its mutex (shard 0's own map when there is one shard).
  template <class F>
  void withAffinity(F&& f) {
    if (!affinity_) {
      withShard(0, [&](Dataplane& dp) {
        f(dp.affinity());
        return 0;
      });
      return;
    }
    std::lock_guard<std::mutex> g(affinity_->mutex);
    f(affinity_->map);
  }

 private:
  struct Shard {
    Shard(const DataplaneConfig& c, SharedAffinity* a, bool owner) : dp(c, a, owner) {}
    std::mutex mutex;
    Dataplane dp;
  };
  // The shard of one endpoint (see the file comment).
  uint32_t shardOfEndpoint(const IpAddr& addr, uint16_t port) const;
  // shardOfPacket's work; the caller holds steer_, or passes remember = false (then fragments,
  // which would update fragShards_, get kSteerSerially).
  uint32_t steerLocked(const uint8_t* data, uint32_t len, const PacketOptions& opt, bool remember = true);
  bool isFrontend(const IpAddr& addr, uint16_t port, uint8_t proto) const;
  // f(Dataplane&) -> Result on every shard; stops at the first refusal.
  template <class F>
  Result everyShard(F&& f);
  template <class F>
  uint32_t sumShards(F&& f);
  template <class C, class Get>
  C sumCounters(Get&& get);

  // Declared before the shards, which point at it.
  std::unique_ptr<SharedAffinity> affinity_;
  std::vector<std::unique_ptr<Shard>> shards_;
  uint64_t steerSeed_;
  std::mutex control_;  // serialises control calls
  // Guards what steering reads: shard 0's frontends map and the masquerade addresses. The
  // control path holds it while it changes them.
  mutable std::mutex steer_;
  bool hasMasq4_ = false, hasMasq6_ = false;
  IpAddr masq4_{}, masq6_{};
  FixedMap<FragKey, uint32_t> fragShards_;  // first fragments steered: datagram -> shard
};

}  // namespace svcplane

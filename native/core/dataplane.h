// The dataplane: one config struct in, fixed-capacity maps inside, decisions out.
//
// Packet path (decide / decideBatch): conntrack lookup; on a miss, frontend lookup (the
// preferred scope first, then the other), source-range check, session affinity, backend
// selection, conntrack insert. Never allocates, never throws, never reads a clock.
// Control path (upsert*/delete*): validates everything before it changes anything, so a
// refused update leaves every map as it was.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "conntrack.h"
#include "fixed_map.h"
#include "frag_map.h"
#include "nat_ports.h"
#include "packet_path.h"
#include "scheduler.h"
#include "service_table.h"
#include "types.h"

namespace svcplane {

// The most entries any map holds (the bindings refuse larger capacities).
constexpr uint32_t kMaxCapacity = 1u << 25;

// The control-plane maps (services, frontends and revnat, backends) start at these sizes (or
// their ceiling, when smaller) and double, rebuilt aside and swapped in whole, up to the
// ceiling in DataplaneConfig. Flow state (conntrack, affinity, NAT ports, fragments) is sized
// once and never moved.
constexpr uint32_t kInitialServices = 1024;
constexpr uint32_t kInitialFrontends = 4096;
constexpr uint32_t kInitialBackends = 16384;

struct DataplaneConfig {
  uint32_t maxServices = kMaxCapacity;   // ceilings of the growing maps
  uint32_t maxFrontends = kMaxCapacity;  // also the revnat map's
  uint32_t maxBackends = kMaxCapacity;
  uint32_t maxFlows = 65536;
  uint32_t maxAffinity = 65536;
  uint32_t maxNatPorts = 65536;  // masqueraded flows (packet path)
  uint32_t maxFragments = 1024;  // datagrams whose later fragments are awaited (packet path)
  FullPolicy conntrackPolicy = FullPolicy::EvictOldest;
  FullPolicy affinityPolicy = FullPolicy::EvictOldest;
  CtTimeouts timeouts = CtTimeouts::defaults();
  uint64_t seed = 0;     // hash-table secret
  uint64_t rngSeed = 0;  // random scheduler
  SchedulerConfig sched;
  // Masquerade hands out only NAT ports with port % natPortClasses == natPortClass (one shard
  // of a ShardedDataplane: see sharded_dataplane.h). 1 class: every port of the range.
  uint32_t natPortClass = 0;
  uint32_t natPortClasses = 1;
};

// FlowInput::packet bits, set by the packet path only: a tuple-API flow has 0 and is never
// masqueraded.
enum : uint8_t { kInPacket = 1, kInFromPod = 2, kInFromNode = 4 };

struct FlowInput {
  FlowKey key;
  Scope scope;  // which frontend scope to try first
  uint8_t tcpFlags;
  uint32_t bytes;
  uint8_t packet = 0;
};

struct Decision {
  Verdict verdict;
  Reason reason;
  bool established;
  bool affinityHit;
  uint32_t serviceId;
  uint32_t backendId;
  IpAddr addr;  // backend (forward) or service frontend (reply)
  uint16_t port;
  uint32_t flow;  // conntrack index when the flow is tracked (forward / reply)
  Dir dir;
  Reason packetReason;  // packet path: a reason that does not stop the packet (e.g. no masquerade address)
};

enum class Status : uint8_t {
  Ok = 0,
  NotFound,
  InUse,     // backend still listed by a service
  Conflict,  // frontend owned by another service
  Full,      // a fixed-capacity map has no room
  Invalid,   // a value out of range (the message names it)
};

struct Result {
  Status status = Status::Ok;
  std::string message;
  bool ok() const { return status == Status::Ok; }
};

struct BackendSpec {
  uint32_t id;
  IpAddr addr;
  uint16_t port;
  BackendState state;
  uint32_t weight;
  bool nodeLocal;
  uint16_t zone;
};

struct FrontendSpec {
  FrontendKey key;
  bool checkSourceRanges;
  MasqPolicy masquerade = MasqPolicy::Never;
};

struct ServiceSpec {
  uint32_t id;
  SchedulerKind kind;
  uint64_t affinityTimeoutNs;
  Verdict emptyVerdict;
  std::vector<FrontendSpec> frontends;
  std::vector<uint32_t> backendIds;
  std::vector<Cidr> sourceRanges;
};

struct DataplaneCounters {
  uint64_t verdicts[kVerdicts] = {};
  uint64_t reasons[kReasons] = {};
  uint64_t packets = 0;
};

// A session-affinity map shared by the shards of a ShardedDataplane: a client's flows spread
// over shards (they are steered by address and port), its affinity entry must not. Taken only
// by new flows of services with affinity, and by the control path.
struct SharedAffinity {
  SharedAffinity(uint32_t capacity, uint64_t seed, FullPolicy policy) : map(capacity, seed, policy) {}
  FixedMap<AffinityKey, AffinityRec> map;
  std::mutex mutex;
};

class Dataplane {
 public:
  // With `shared`, session affinity lives in that map (under its mutex) instead of one of its
  // own; `affinityOwner` says whether this instance's control path maintains it (removals with
  // backends and services, gcAffinity): one of the instances sharing it does.
  explicit Dataplane(const DataplaneConfig& cfg, SharedAffinity* shared = nullptr, bool affinityOwner = true);

  // Packet path.
  void decide(const FlowInput& in, uint64_t now, Decision& out);
  void decideBatch(const FlowInput* in, uint32_t n, uint64_t now, Decision* out);
  // The batch packet path (packet_path.cc): parses, decides and rewrites n packets in place;
  // verdicts[i] / reasons[i] get each packet's Verdict and Reason.
  void processPackets(const PacketRef* pkts, uint32_t n, const PacketOptions& opt, uint64_t now, uint8_t* verdicts,
                      uint8_t* reasons);

  // Control path.
  Result upsertBackend(const BackendSpec& spec);
  Result deleteBackend(uint32_t id);
  Result upsertService(const ServiceSpec& spec);
  Result deleteService(uint32_t id);
  // Grows the control-plane maps to hold at least this many entries (a caller that knows the
  // cluster's size sizes them once instead of doubling). Full when a ceiling is smaller.
  Result reserve(uint32_t services, uint32_t frontends, uint32_t backends);

  uint32_t deleteFlowsByBackend(uint32_t backendId);
  uint32_t deleteFlowsByService(uint32_t serviceId);
  void flushConntrack();
  uint32_t gc(uint64_t now, uint32_t budget);
  uint32_t gcAffinity(uint64_t now, uint32_t budget);

  Result setPacketConfig(const PacketConfig& c);
  const PacketConfig& packetConfig() const { return pktCfg_; }
  void setFragmentTimeout(uint64_t ns) { frags_.setTimeout(ns); }

  // Inspection.
  // A service's scheduler table as backend ids, one per slot (Maglev's M slots, sh/dh's 256
  // buckets); false for an unknown service, empty for schedulers without a table.
  bool schedulerTable(uint32_t serviceId, std::vector<uint32_t>& out);
  FixedMap<FrontendKey, FrontendRec>& frontends() { return frontends_; }
  FixedMap<uint32_t, ServiceRec>& services() { return services_; }
  FixedMap<uint32_t, BackendRec>& backends() { return backends_; }
  FixedMap<uint32_t, RevNatRec>& revnat() { return revnat_; }
  FixedMap<AffinityKey, AffinityRec>& affinity() { return affinity_; }
  Conntrack& conntrack() { return ct_; }
  const DataplaneCounters& counters() const { return counters_; }
  const PacketCounters& packetCounters() const { return pktCounters_; }
  NatPorts& natPorts() { return nat_; }
  FragMap& fragments() { return frags_; }
  const DataplaneConfig& config() const { return cfg_; }

 private:
  // What the lookup decided for a new flow, for commitNewFlow to insert.
  struct NewFlow {
    FlowKey reply;
    uint32_t replyHash;
    uint32_t serviceId, backendId, revNatId;
    uint32_t* activeConns;
    IpAddr addr;
    uint16_t port;
    Verdict emptyVerdict;
    bool masquerade;
  };
  // What the batch path's look-ahead found for one flow of a group (decide_batch.cc).
  struct LookAhead;
  // The batch path's service-side stages over a group of flows (decide_batch.cc): for each flow
  // that looks new, its frontend, service, backend set, affinity entry and predicted backend's
  // reply slot are prefetched stage by stage across the group. Reads only; changes nothing.
  void lookAheadServices(const FlowInput* in, uint32_t m, const uint32_t* ctHash, uint32_t* feHash, uint64_t now,
                         LookAhead* la) const;
  // Returns true when the decision is complete; false for a new flow to commit.
  bool decideLookup(const FlowInput& in, uint32_t ctHash, uint32_t feHash, uint64_t now, Decision& out, NewFlow& nf);
  // The part of decideLookup after a conntrack miss: frontend, source ranges, backend choice.
  bool decideMiss(const FlowInput& in, uint32_t feHash, uint64_t now, Decision& out, NewFlow& nf);
  // The packet path's decideLookup + commitNewFlow: a hit touches only the flow (no revnat
  // lookup, no decision fields the packet path does not read); the source is classified
  // (pod, node) only on a miss, where masquerade and scope need it.
  void decidePacket(FlowInput& in, uint32_t ctHash, uint64_t now, bool fromNode, Decision& out);
  void commitNewFlow(const FlowInput& in, uint32_t ctHash, NewFlow& nf, uint64_t now, Decision& out);
  // Finds a tracked flow without creating one (replies from backends, ICMP errors, later
  // fragments). With `account`, the packet counts on the flow and drives its state.
  bool lookupTracked(const FlowInput& in, uint32_t ctHash, uint64_t now, bool account, Decision& out);
  bool wantsMasquerade(const FlowInput& in, const FrontendRec& fe, const IpAddr& backend) const;
  bool masquerade(const FlowInput& in, NewFlow& nf, Decision& out);
  uint8_t classify(const IpAddr& src, bool fromNode) const;
  void finishPacket(const PacketRef& pkt, const ParsedPacket& pp, const PacketOptions& opt, const FlowInput& in,
                    Decision& d, uint64_t now, uint32_t index, uint8_t& verdict, uint8_t& reason);
  void fillFromFlow(uint32_t flow, Dir dir, Decision& out);
  static FrontendKey frontendKeyOf(const FlowInput& in);
  int32_t choose(const ServiceRec& svc, const FlowKey& key, uint32_t serviceId, uint64_t now, Decision& out);
  // Builds a service's backend set; with `reuse` (the service being rebuilt), its scheduler
  // instance moves into the new set when the kind is unchanged.
  Result buildSet(const std::vector<uint32_t>& ids, SchedulerKind kind, std::unique_ptr<BackendSet>& out,
                  ServiceRec* reuse = nullptr);
  void rebuildServicesOf(const BackendRec& b);
  // Room for `need` entries in each growing map, within its ceiling; false when it cannot.
  bool roomForServices(uint64_t need);
  bool roomForFrontends(uint64_t need);
  bool roomForBackends(uint64_t need);
  // Points every frontend at its service's record again, after the services map moved them.
  void relinkFrontends();
  void onFlowRemoved(const Flow& f);
  uint64_t nextRandom();
  // What the nextRandom() call `ahead` calls from now will return (0: the next one).
  uint64_t peekRandom(uint32_t ahead) const;
  // What the service's scheduler is given for a new flow (random: the draw to use); the hashes
  // it does not read are left 0.
  PickInput pickInputOf(const ServiceRec& svc, const FlowKey& key, uint64_t random) const;
  // A new flow's reply tuple as the backend answers: backend -> client.
  static FlowKey replyKeyOf(const FlowKey& key, const SchedBackend& b);
  // The shared affinity map's mutex, held (nothing when the map is this instance's own).
  std::unique_lock<std::mutex> lockAffinity();

  DataplaneConfig cfg_;
  uint64_t rngState_;
  FixedMap<uint32_t, ServiceRec> services_;
  FixedMap<FrontendKey, FrontendRec> frontends_;
  FixedMap<uint32_t, BackendRec> backends_;
  FixedMap<uint32_t, RevNatRec> revnat_;
  FixedMap<AffinityKey, AffinityRec> ownAffinity_;  // unused (capacity 0) when shared
  SharedAffinity* sharedAffinity_;
  bool affinityOwner_;
  FixedMap<AffinityKey, AffinityRec>& affinity_;  // ownAffinity_ or sharedAffinity_->map
  Conntrack ct_;
  uint32_t affinityGcCursor_ = 0;
  uint32_t nextRevNatId_ = 0;  // last revnat id handed out; ids are not reused
  DataplaneCounters counters_;
  PacketConfig pktCfg_;
  PacketCounters pktCounters_;
  NatPorts nat_;
  FragMap frags_;
};

}  // namespace svcplane

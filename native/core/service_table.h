// The control-plane view of services: the `services`, `frontends`, `backends` and `revnat`
// maps and the records they hold.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "cidr.h"
#include "scheduler.h"
#include "types.h"

namespace svcplane {

enum class BackendState : uint8_t { Active = 0, Terminating = 1, Quarantined = 2 };

struct BackendRec {
  IpAddr addr{};
  uint16_t port = 0;
  BackendState state = BackendState::Active;
  bool nodeLocal = false;
  uint16_t zone = 0;  // index into Dataplane's zone names; 0 = none
  uint32_t weight = 1;
  uint32_t activeConns = 0;        // flows in conntrack pointing here
  std::vector<uint32_t> services;  // ids of services that list this backend
};

enum class Verdict : uint8_t { Pass = 0, Forward = 1, Reply = 2, Reject = 3, Drop = 4 };
constexpr int kVerdicts = 5;
enum class Reason : uint8_t {
  None = 0,
  NoFrontend = 1,
  NoBackends = 2,
  SourceRange = 3,
  ConntrackFull = 4,
  AffinityFull = 5,
  // Packet path only (processPackets); the tuple API never gives these.
  NotTracked = 6,            // from a backend, but no tracked flow: passed untouched
  Truncated = 7,             // shorter than its headers say: dropped
  Malformed = 8,             // impossible header values: dropped
  NotIp = 9,                 // not IPv4/IPv6 (ARP, LLDP, ...): passed
  UnsupportedProtocol = 10,  // not TCP/UDP/SCTP/ICMP (or an ESP/unknown extension header): passed
  FragmentUnknown = 11,      // a later fragment whose first fragment was not seen: passed
  IcmpUntracked = 12,        // an ICMP error about no tracked flow: passed
  IcmpEcho = 13,             // ICMP echo: not service traffic, passed
  NatPortsExhausted = 14,    // masquerade found no free port: dropped
  NoMasqueradeAddress = 15,  // masquerade wanted but no address of the family: forwarded unmasqueraded
  BadChecksum = 16,          // an ICMP error whose checksum is wrong: dropped
  ReplyBufferFull = 17,      // a reject whose reply did not fit the caller's buffer
};
// The tuple API's counters (and the C ABI's) cover the first kReasons; the packet path counts
// all kPacketReasons in its own counters.
constexpr int kReasons = 6;
constexpr int kPacketReasons = 18;

// What new flows of a service may choose from, with its scheduler. Replaced as a whole on
// every change (built aside, then swapped in), so a packet never sees half of an update.
// What a new flow reads (active, scheduler) comes first, in the set's first cache line.
struct alignas(64) BackendSet {
  std::vector<SchedBackend> active;  // eligible for new flows, in allIds order
  std::unique_ptr<Scheduler> scheduler;
  std::vector<uint32_t> allIds;        // sorted; every backend the service lists
  std::vector<uint32_t> activeSorted;  // ids of `active`, sorted, for affinity validation

  bool isActive(uint32_t id) const;
};

// What a new flow reads (set, affinity, emptyVerdict) comes first, next to the map entry's key.
struct ServiceRec {
  std::unique_ptr<BackendSet> set;
  uint64_t affinityTimeoutNs = 0;  // 0: no session affinity
  Verdict emptyVerdict = Verdict::Reject;
  SchedulerKind kind = SchedulerKind::Random;
  std::vector<Cidr> sourceRanges;
  std::vector<FrontendKey> frontends;
};

// When a frontend's new flows are masqueraded (SNAT to the node address). Hairpin traffic
// (the client is the chosen backend) is masqueraded under every policy, as kube-proxy does.
enum class MasqPolicy : uint8_t {
  Never = 0,
  Always = 1,
  OutsidePodCidrs = 2,  // sources outside the pod CIDRs; none when no pod CIDR is configured;
                        // all with masqueradeAll (kube-proxy's cluster-IP rule)
  FromNode = 3,         // sources that are a node address and not a pod (kube-proxy's rule for
                        // node traffic short-circuited under externalTrafficPolicy Local)
};
constexpr int kMasqPolicies = 4;

struct FrontendRec {
  // Its service's record, so a new flow goes from frontend to service without a second hash
  // lookup; set by upsertService and refreshed whenever the services map grows (which moves
  // the records).
  const ServiceRec* service = nullptr;
  uint32_t serviceId = 0;
  uint32_t revNatId = 0;
  bool checkSourceRanges = false;
  MasqPolicy masq = MasqPolicy::Never;  // read by the packet path only
};

struct RevNatRec {
  IpAddr addr{};
  uint16_t port = 0;
};

struct AffinityKey {
  IpAddr client;
  uint32_t serviceId;
  bool operator==(const AffinityKey& o) const { return client == o.client && serviceId == o.serviceId; }
};
static_assert(sizeof(AffinityKey) == 20, "AffinityKey must stay packed");

struct AffinityRec {
  uint32_t backendId = 0;
  uint64_t lastUsed = 0;
};

}  // namespace svcplane

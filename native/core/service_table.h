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
  uint32_t activeConns = 0;               // flows in conntrack pointing here
  std::vector<uint32_t> services;          // ids of services that list this backend
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
};
constexpr int kReasons = 6;

// What new flows of a service may choose from, with its scheduler. Replaced as a whole on
// every change (built aside, then swapped in), so a packet never sees half of an update.
struct BackendSet {
  std::vector<uint32_t> allIds;        // sorted; every backend the service lists
  std::vector<SchedBackend> active;    // eligible for new flows, in allIds order
  std::vector<uint32_t> activeSorted;  // ids of `active`, sorted, for affinity validation
  std::unique_ptr<Scheduler> scheduler;

  bool isActive(uint32_t id) const;
};

struct ServiceRec {
  SchedulerKind kind = SchedulerKind::Random;
  uint64_t affinityTimeoutNs = 0;  // 0: no session affinity
  Verdict emptyVerdict = Verdict::Reject;
  std::vector<Cidr> sourceRanges;
  std::vector<FrontendKey> frontends;
  std::unique_ptr<BackendSet> set;
};

struct FrontendRec {
  uint32_t serviceId = 0;
  uint32_t revNatId = 0;
  bool checkSourceRanges = false;
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

// Flow handoff: the tracked flows and session-affinity entries of a dataplane as a versioned
// binary blob, so that a restarted process (native mode on a node) takes over the connections
// the previous one was forwarding instead of answering their next packets with RSTs.
//
// Ids are not stable across runs (the control plane numbers services and backends as it
// meets them), so a record carries addresses, not ids: the importer finds the service from
// the frontend the original tuple was sent to and the backend among that service's backends
// at the reply tuple's source. A flow whose service or backend is gone is dropped and counted.
//
// Layout (little-endian): a 24-byte header ("SVCPFLOW", u32 version, u32 flows, u32 affinity
// entries, u32 reserved 0), then kFlowRecordBytes per flow and kAffinityRecordBytes per
// affinity entry. Times are relative to the exporting and importing `now`: remaining timeout,
// age since last seen, age since created.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "dataplane.h"

namespace svcplane {

constexpr uint32_t kFlowHandoffVersion = 1;
constexpr size_t kFlowHandoffHeaderBytes = 24;
constexpr size_t kFlowRecordBytes = 136;
constexpr size_t kAffinityRecordBytes = 64;

struct HandoffCounts {
  uint32_t imported = 0;          // flows now tracked again
  uint32_t dropped = 0;           // flows left out: service, backend or NAT port gone, expired, table full, duplicate
  uint32_t affinityImported = 0;  // session-affinity entries restored
  uint32_t affinityDropped = 0;
};

// Every live (unexpired at `now`) flow and affinity entry of dp.
std::vector<uint8_t> exportFlows(Dataplane& dp, uint64_t now);

// Validates the whole blob first (Status::Invalid naming the problem, dp untouched), then
// re-creates each flow whose service and backend resolve, with its state, remaining timeout,
// counters and NAT port. Call on a dataplane whose services and backends are programmed.
Result importFlows(Dataplane& dp, const uint8_t* data, size_t len, uint64_t now, HandoffCounts& out);

}  // namespace svcplane

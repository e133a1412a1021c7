// Byte layouts shared with lib/dataplane/wire.ts. Batches cross the JS boundary as flat,
// caller-owned buffers in these layouts (little-endian), never as one object per element.
#pragma once
#include <cstddef>
#include <cstdint>

namespace svcplane::wire {

// One flow tuple in (48 bytes):
//   0 src[16]  16 dst[16]  32 sport u16  34 dport u16  36 proto u8  37 scope u8
//   38 tcpFlags u8  39 -  40 bytes u32  44 -
constexpr size_t kFlowStride = 48;
// One decision out (32 bytes):
//   0 verdict u8  1 reason u8  2 flags u8 (1 established, 2 affinity hit)  3 -
//   4 port u16  6 -  8 serviceId u32  12 backendId u32  16 addr[16]
constexpr size_t kDecisionStride = 32;
// One frontend in a service update (24 bytes):
//   0 addr[16]  16 port u16  18 proto u8  19 scope u8  20 checkSourceRanges u8
//   21 masquerade u8 (MasqPolicy)  22 -
constexpr size_t kFrontendStride = 24;
// One source range (20 bytes): 0 addr[16]  16 bits u8 (over the 16-byte form)  17 -
constexpr size_t kCidrStride = 20;

// A batched update (Dataplane.upsertBatch, lib/dataplane/update-batch.ts): one backend
// (32 bytes):
//   0 addr[16]  16 id u32  20 port u16  22 state u8  23 nodeLocal u8  24 weight u32  28 zone u16  30 -
// and one service as kServiceSlots u32 slots, its frontends (kFrontendStride each), backend
// ids and source ranges (kCidrStride each) following in their own arrays, in service order.
constexpr size_t kBatchBackendStride = 32;
enum BatchServiceSlot : uint8_t {
  kSvcId,
  kSvcScheduler,
  kSvcEmptyVerdict,
  kSvcFrontends,  // how many frontends
  kSvcBackends,   // how many backend ids
  kSvcRanges,     // how many source ranges
  kServiceSlots
};

// The numeric IPv4 single-decision path (Dataplane.decideV4): its tuple in a registered
// Uint32Array, its decision into another, one u32 per slot, addresses in host order.
enum V4In : uint8_t {
  kV4Src,
  kV4Dst,
  kV4Ports,  // sport | dport << 16
  kV4Meta,   // proto | scope << 8 (1 external) | tcpFlags << 16
  kV4InSlots
};
enum V4Out : uint8_t {
  kV4Verdict,
  kV4Reason,
  kV4Flags,  // 1 established, 2 affinity hit
  kV4ServiceId,
  kV4BackendId,
  kV4Port,
  kV4Address,  // the backend (forward) or service (reply) address; 0 otherwise
  kV4OutSlots
};

// processPackets' PacketCall (lib/dataplane/packet-call.ts): the slots of its `params`
// Float64Array, and its arrays in the order the addon keeps them.
enum PacketParam : uint8_t { kCount, kDirection, kNow, kLink, kFromNode, kReject, kPacketParams };
enum PacketArray : uint8_t {
  kBuffer,
  kOffsets,
  kLengths,
  kVerdicts,
  kReasons,
  kReplies,
  kReplyOffsets,
  kReplyLengths,
  kPacketArrays
};

}  // namespace svcplane::wire

// The chunked batch drivers both bindings use: a caller's batch of any length is cut into
// chunks the size of the stack arrays below and handed to the core chunk by chunk, with each
// element converted in and out by the binding's own functions (the addon's wire layout, the
// C ABI's structs). Binding-neutral: no Node-API, no C ABI types.
#pragma once
#include <cstdint>

#include "core/dataplane.h"

namespace svcplane::bridge {

// Flows per decideBatch chunk, packets per processPackets chunk.
inline constexpr uint32_t kDecideChunk = 64;
inline constexpr uint32_t kPacketChunk = 256;

// decideBatch over n flows: read(i, FlowInput&) fills flow i, write(i, const Decision&)
// takes its decision.
template <class Read, class Write>
void decideChunked(Dataplane& dp, uint32_t n, uint64_t now, Read&& read, Write&& write) {
  FlowInput in[kDecideChunk];
  Decision out[kDecideChunk];
  for (uint32_t base = 0; base < n; base += kDecideChunk) {
    const uint32_t m = n - base < kDecideChunk ? n - base : kDecideChunk;
    for (uint32_t i = 0; i < m; ++i) read(base + i, in[i]);
    dp.decideBatch(in, m, now, out);
    for (uint32_t i = 0; i < m; ++i) write(base + i, out[i]);
  }
}

// processPackets over n packets. refs(base, m, scratch) gives packets [base, base + m) as
// PacketRefs: the caller's own array where it has that layout, or `scratch` filled in.
// verdicts and reasons may be null (a chunk-sized scratch takes them). replies, if set, is
// indexed by the packet's position in the whole batch: each chunk gets its slice, and
// `replies->used` carries on from chunk to chunk.
template <class Refs>
void processChunked(Dataplane& dp, uint32_t n, PacketOptions opt, uint64_t now, Refs&& refs, uint8_t* verdicts,
                    uint8_t* reasons, ReplySink* replies) {
  PacketRef scratch[kPacketChunk];
  uint8_t v[kPacketChunk], r[kPacketChunk];
  for (uint32_t base = 0; base < n; base += kPacketChunk) {
    const uint32_t m = n - base < kPacketChunk ? n - base : kPacketChunk;
    const PacketRef* pkts = refs(base, m, scratch);
    ReplySink chunk;
    if (replies) {
      chunk = *replies;
      chunk.offsets = replies->offsets + base;
      chunk.lengths = replies->lengths + base;
      opt.replies = &chunk;
    } else {
      opt.replies = nullptr;
    }
    dp.processPackets(pkts, m, opt, now, verdicts ? verdicts + base : v, reasons ? reasons + base : r);
    if (replies) replies->used = chunk.used;
  }
}

}  // namespace svcplane::bridge

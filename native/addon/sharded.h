// Dataplane({ threads: N }) in the addon (lib/dataplane/threads.ts): a ShardedDataplane whose
// shards are each an ordinary DataplaneHandle (addon.cc), so every existing method works on a
// shard unchanged, plus a ShardSet JS object (steering, and the tokens that make the shard
// handles) and a Fanout that shard 0's handle uses for processPackets: it steers the batch,
// runs each shard's slice on a persistent PacketPool and returns the verdicts in the caller's
// order.
//
// Threads. All JS calls come from the one JS thread; the pool's workers run only inside
// processPackets, which that thread waits for, and each shard's slice runs under the shard's
// mutex (ShardedDataplane::withShard).
#pragma once
#include <napi.h>

#include <memory>
#include <utility>

#include "core/dataplane.h"
#include "core/packet_path.h"

namespace svcplane::addon {

class Fanout;

// A shard handle's core: from the token ShardSet.token(i) gives (the second argument of the
// DataplaneHandle constructor) and the config the handle parsed. The first token used creates
// the ShardedDataplane from that config. Shard 0 also gets the Fanout. The Dataplane pointer
// shares ownership of the whole ShardedDataplane, so handles may be destroyed in any order.
std::pair<std::shared_ptr<Dataplane>, std::shared_ptr<Fanout>> adoptShard(Napi::Value token,
                                                                          const DataplaneConfig& cfg);

// processPackets over n packets (buffer/offsets/lengths as the addon checked them) on every
// shard: verdicts, reasons and replies as one Dataplane would lay them out.
void fanOut(Fanout& f, uint32_t n, const PacketOptions& opt, uint64_t now, uint8_t* buf, const uint32_t* offsets,
            const uint32_t* lengths, uint8_t* verdicts, uint8_t* reasons, ReplySink* replies);

// Adds the ShardSet class to the addon's exports.
void registerSharded(Napi::Env env, Napi::Object exports);

}  // namespace svcplane::addon

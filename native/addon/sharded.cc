#include "sharded.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "bridge/batch.h"
#include "core/packet_pool.h"
#include "core/sharded_dataplane.h"
#include "wire.h"

namespace svcplane::addon {

// The fan-out of one processPackets call over the shards (see sharded.h). Its arrays are kept
// from call to call, so a batch allocates nothing once they have grown to its size.
class Fanout {
 public:
  explicit Fanout(std::shared_ptr<ShardedDataplane> sd) : sd_(std::move(sd)), pool_(sd_->shards()) {}
  void process(uint32_t n, const PacketOptions& opt, uint64_t now, uint8_t* buf, const uint32_t* offsets,
               const uint32_t* lengths, uint8_t* verdicts, uint8_t* reasons, ReplySink* replies);

 private:
  // Batches of at least this many packets per thread are steered in parallel.
  static constexpr uint32_t kSteerPart = 512;
  // refs_ and shardOf_ for the batch.
  void steer(uint32_t n, const PacketOptions& opt, uint8_t* buf, const uint32_t* offsets, const uint32_t* lengths);
  // One shard's slice [begin_[s], begin_[s + 1]) of the steered batch, under its mutex.
  void runShard(uint32_t shard, const PacketOptions& opt, uint64_t now, ReplySink* replies);
  // The replies the shards wrote into their own buffers, into the caller's in packet order.
  void gatherReplies(uint32_t n, ReplySink& to, uint8_t* reasons);

  std::shared_ptr<ShardedDataplane> sd_;
  PacketPool pool_;
  std::vector<PacketRef> refs_;     // by packet
  std::vector<uint32_t> shardOf_;   // by packet
  std::vector<uint32_t> posOf_;     // packet -> its position in the steered batch
  std::vector<PacketRef> steered_;  // by position: shard 0's packets, then shard 1's, ...
  std::vector<uint8_t> verdicts_, reasons_;
  std::vector<uint32_t> replyOffsets_, replyLengths_;
  std::vector<std::vector<uint8_t>> replyData_;  // by shard
  uint32_t begin_[ShardedDataplane::kMaxShards + 1];
  uint32_t busy_[ShardedDataplane::kMaxShards];  // the shards with packets in this batch
};

void Fanout::process(uint32_t n, const PacketOptions& opt, uint64_t now, uint8_t* buf, const uint32_t* offsets,
                     const uint32_t* lengths, uint8_t* verdicts, uint8_t* reasons, ReplySink* replies) {
  if (n == 0) return;
  const uint32_t shards = sd_->shards();
  if (refs_.size() < n) {
    refs_.resize(n);
    shardOf_.resize(n);
    posOf_.resize(n);
    steered_.resize(n);
    verdicts_.resize(n);
    reasons_.resize(n);
    replyOffsets_.resize(n);
    replyLengths_.resize(n);
  }
  steer(n, opt, buf, offsets, lengths);
  uint32_t count[ShardedDataplane::kMaxShards] = {};
  for (uint32_t i = 0; i < n; ++i) ++count[shardOf_[i]];
  uint32_t busy = 0;
  begin_[0] = 0;
  for (uint32_t s = 0; s < shards; ++s) {
    begin_[s + 1] = begin_[s] + count[s];
    if (count[s]) busy_[busy++] = s;
  }
  if (busy == 1) {
    // The whole batch is one shard's: run it in place, exactly as one Dataplane would.
    sd_->withShard(busy_[0], [&](Dataplane& dp) {
      bridge::processChunked(
          dp, n, opt, now, [&](uint32_t base, uint32_t, PacketRef*) { return refs_.data() + base; }, verdicts, reasons,
          replies);
      return 0;
    });
    return;
  }
  uint32_t next[ShardedDataplane::kMaxShards];
  std::copy(begin_, begin_ + shards, next);
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t pos = next[shardOf_[i]]++;
    posOf_[i] = pos;
    steered_[pos] = refs_[i];
  }
  if (replies && replyData_.size() < shards) replyData_.resize(shards);
  pool_.run(busy, [&](uint32_t job) { runShard(busy_[job], opt, now, replies); });
  for (uint32_t i = 0; i < n; ++i) {
    verdicts[i] = verdicts_[posOf_[i]];
    reasons[i] = reasons_[posOf_[i]];
  }
  if (replies) gatherReplies(n, *replies, reasons);
}

void Fanout::steer(uint32_t n, const PacketOptions& opt, uint8_t* buf, const uint32_t* offsets,
                   const uint32_t* lengths) {
  auto part = [&](uint32_t from, uint32_t to) {
    for (uint32_t i = from; i < to; ++i) {
      refs_[i] = PacketRef{buf + offsets[i], lengths[i]};
      shardOf_[i] = sd_->shardOfPacketReadOnly(refs_[i].data, refs_[i].len, opt);
    }
  };
  // Steering parses every packet: as much work as a conntrack hit. A large batch is steered in
  // parts on the pool too (this thread is the JS thread, so no control call runs meanwhile).
  const uint32_t parts = std::min<uint32_t>(pool_.threads(), n / kSteerPart);
  if (parts > 1) {
    const uint32_t step = (n + parts - 1) / parts;
    pool_.run(parts, [&](uint32_t j) { part(j * step, std::min(n, (j + 1) * step)); });
  } else {
    part(0, n);
  }
  // Fragments, in batch order: a first fragment's shard is remembered for the rest.
  for (uint32_t i = 0; i < n; ++i)
    if (shardOf_[i] == ShardedDataplane::kSteerSerially) sd_->shardsOfPackets(&refs_[i], 1, opt, &shardOf_[i]);
}

void Fanout::runShard(uint32_t shard, const PacketOptions& opt, uint64_t now, ReplySink* replies) {
  const uint32_t b = begin_[shard], m = begin_[shard + 1] - b;
  ReplySink sink;
  if (replies) {
    // Each shard writes its replies into a buffer of its own, as large as the caller's.
    std::vector<uint8_t>& data = replyData_[shard];
    if (data.size() < replies->capacity) data.resize(replies->capacity);
    sink.data = data.data();
    sink.capacity = replies->capacity;
    sink.offsets = replyOffsets_.data() + b;
    sink.lengths = replyLengths_.data() + b;
  }
  sd_->withShard(shard, [&](Dataplane& dp) {
    bridge::processChunked(
        dp, m, opt, now, [&](uint32_t base, uint32_t, PacketRef*) { return steered_.data() + b + base; },
        verdicts_.data() + b, reasons_.data() + b, replies ? &sink : nullptr);
    return 0;
  });
}

void Fanout::gatherReplies(uint32_t n, ReplySink& to, uint8_t* reasons) {
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t pos = posOf_[i], len = replyLengths_[pos];
    to.lengths[i] = 0;
    if (!len) continue;
    if (len > to.capacity - to.used) {
      // Fitted in its shard's buffer but not after the replies before it: as one Dataplane
      // would have said (the reject-replies counter of its shard still counts it).
      reasons[i] = uint8_t(Reason::ReplyBufferFull);
      continue;
    }
    const uint32_t shard = shardOf_[i];
    std::memcpy(to.data + to.used, replyData_[shard].data() + replyOffsets_[pos], len);
    to.offsets[i] = to.used;
    to.lengths[i] = len;
    to.used += len;
  }
}

void fanOut(Fanout& f, uint32_t n, const PacketOptions& opt, uint64_t now, uint8_t* buf, const uint32_t* offsets,
            const uint32_t* lengths, uint8_t* verdicts, uint8_t* reasons, ReplySink* replies) {
  f.process(n, opt, now, buf, offsets, lengths, verdicts, reasons, replies);
}

namespace {

// What the shard handles of one threaded Dataplane share: made empty by ShardSet, filled by
// the first shard handle's config.
struct ShardState {
  uint32_t threads = 1;
  std::shared_ptr<ShardedDataplane> sd;
  std::shared_ptr<Fanout> fanout;
};

// The token behind ShardSet.token(i): an External the DataplaneHandle constructor takes.
struct ShardToken {
  std::shared_ptr<ShardState> state;
  uint32_t shard;
};

void throwDestroyed(Napi::Env env) {
  Napi::Error e = Napi::Error::New(env, "Dataplane has been destroyed");
  e.Set("code", "DESTROYED");
  e.ThrowAsJavaScriptException();
}

// new ShardSet(threads): the steering side of a threaded Dataplane (lib/dataplane/threads.ts).
class ShardSet : public Napi::ObjectWrap<ShardSet> {
 public:
  explicit ShardSet(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ShardSet>(info) {
    const double t = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(t >= 1 && t <= ShardedDataplane::kMaxShards) || t != std::floor(t)) {
      Napi::RangeError::New(info.Env(), "threads must be an integer 1.." + std::to_string(ShardedDataplane::kMaxShards))
          .ThrowAsJavaScriptException();
      return;
    }
    state_ = std::make_shared<ShardState>();
    state_->threads = uint32_t(t);
  }

  // token(shard): what new DataplaneHandle(config, token) adopts; shard 0's first.
  Napi::Value Token(const Napi::CallbackInfo& info) {
    if (!state_) return throwDestroyed(info.Env()), info.Env().Undefined();
    const uint32_t shard = info[0].As<Napi::Number>().Uint32Value();
    if (shard >= state_->threads) {
      Napi::RangeError::New(info.Env(), "no such shard").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    return Napi::External<ShardToken>::New(info.Env(), new ShardToken{state_, shard},
                                           [](Napi::Env, ShardToken* t) { delete t; });
  }

  // shardOfFlows(flows: Uint8Array in wire::kFlowStride records, count, out: Uint32Array).
  Napi::Value ShardOfFlows(const Napi::CallbackInfo& info) {
    ShardedDataplane* sd = live(info);
    if (!sd) return info.Env().Undefined();
    Napi::Uint8Array in = info[0].As<Napi::Uint8Array>();
    Napi::Uint32Array out = info[2].As<Napi::Uint32Array>();
    const uint32_t n = info[1].As<Napi::Number>().Uint32Value();
    if (uint64_t(n) * wire::kFlowStride > in.ByteLength() || n > out.ElementLength()) {
      Napi::RangeError::New(info.Env(), "shardOfFlows: count exceeds the arrays").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    for (uint32_t i = 0; i < n; ++i) {
      const uint8_t* p = in.Data() + size_t(i) * wire::kFlowStride;
      FlowKey k{};
      std::memcpy(k.src.b, p, 16);
      std::memcpy(k.dst.b, p + 16, 16);
      std::memcpy(&k.sport, p + 32, 2);
      std::memcpy(&k.dport, p + 34, 2);
      k.proto = p[36];
      out[i] = sd->shardOfFlow(k);
    }
    return info.Env().Undefined();
  }

  // shardOfV4(tuple: Uint32Array in wire::V4In slots) -> shard.
  Napi::Value ShardOfV4(const Napi::CallbackInfo& info) {
    ShardedDataplane* sd = live(info);
    if (!sd) return info.Env().Undefined();
    Napi::Uint32Array t = info[0].As<Napi::Uint32Array>();
    if (t.ElementLength() < wire::kV4InSlots) {
      Napi::RangeError::New(info.Env(), "shardOfV4: tuple too short").ThrowAsJavaScriptException();
      return info.Env().Undefined();
    }
    FlowKey k{};
    k.src = IpAddr::v4(t[wire::kV4Src]);
    k.dst = IpAddr::v4(t[wire::kV4Dst]);
    k.sport = uint16_t(t[wire::kV4Ports]);
    k.dport = uint16_t(t[wire::kV4Ports] >> 16);
    k.proto = uint8_t(t[wire::kV4Meta]);
    return Napi::Number::New(info.Env(), sd->shardOfFlow(k));
  }

  // setSteering(masq4: Uint8Array(16) | null, masq6 | null): the masquerade addresses whose
  // ports steer replies (after the shards took the same packet config).
  Napi::Value SetSteering(const Napi::CallbackInfo& info) {
    ShardedDataplane* sd = live(info);
    if (!sd) return info.Env().Undefined();
    PacketConfig c;
    auto take = [&](size_t i, bool& has, IpAddr& a) {
      if (!info[i].IsTypedArray() || info[i].As<Napi::Uint8Array>().ByteLength() < 16) return;
      has = true;
      std::memcpy(a.b, info[i].As<Napi::Uint8Array>().Data(), 16);
    };
    take(0, c.hasMasq4, c.masq4);
    take(1, c.hasMasq6, c.masq6);
    sd->setSteering(c);
    return info.Env().Undefined();
  }

  Napi::Value Destroy(const Napi::CallbackInfo& info) {
    state_.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<ShardState> state_;

 private:
  ShardedDataplane* live(const Napi::CallbackInfo& info) {
    if (!state_ || !state_->sd) {
      throwDestroyed(info.Env());
      return nullptr;
    }
    return state_->sd.get();
  }
};

}  // namespace

std::pair<std::shared_ptr<Dataplane>, std::shared_ptr<Fanout>> adoptShard(Napi::Value token,
                                                                          const DataplaneConfig& cfg) {
  ShardToken* t = token.As<Napi::External<ShardToken>>().Data();
  ShardState& st = *t->state;
  if (!st.sd) {
    if (t->shard != 0) {
      Napi::Error::New(token.Env(), "shard 0's handle comes first").ThrowAsJavaScriptException();
      return {};
    }
    st.sd = std::make_shared<ShardedDataplane>(cfg, st.threads);
    st.fanout = std::make_shared<Fanout>(st.sd);
  }
  Dataplane* dp = st.sd->withShard(t->shard, [](Dataplane& d) { return &d; });
  return {std::shared_ptr<Dataplane>(st.sd, dp), t->shard == 0 ? st.fanout : nullptr};
}

void registerSharded(Napi::Env env, Napi::Object exports) {
  using W = Napi::ObjectWrap<ShardSet>;
  exports.Set("ShardSet", W::DefineClass(env, "ShardSet",
                                         {
                                             W::InstanceMethod<&ShardSet::Token>("token"),
                                             W::InstanceMethod<&ShardSet::ShardOfFlows>("shardOfFlows"),
                                             W::InstanceMethod<&ShardSet::ShardOfV4>("shardOfV4"),
                                             W::InstanceMethod<&ShardSet::SetSteering>("setSteering"),
                                             W::InstanceMethod<&ShardSet::Destroy>("destroy"),
                                         }));
  exports.Set("maxThreads", double(ShardedDataplane::kMaxShards));
}

}  // namespace svcplane::addon

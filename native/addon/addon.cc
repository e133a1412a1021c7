// The Node-API binding: the only file of the package's addon that includes napi.h. It converts
// between the wire layouts of wire.h and the core's structs and turns control-path Results into
// plain values that lib/dataplane turns into typed errors. lib/dataplane validates meaning; raw
// values are checked here by native/bridge, exactly as the C ABI checks them (no coercion).
#include <napi.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <tuple>

#include "bridge/batch.h"
#include "bridge/names.h"
#include "bridge/update_batch.h"
#include "bridge/validate.h"
#include "core/dataplane.h"
#include "sharded.h"
#include "handoff.h"
#include "tun.h"
#include "wire.h"

using namespace svcplane;

namespace {

// The JS object of one Dataplane (a Napi::ObjectWrap): it owns the core instance, freed by
// destroy() or when the object is collected. Its methods live once on the class prototype
// (the method table in DefineHandle), not as closures per instance.
class Holder : public Napi::ObjectWrap<Holder> {
 public:
  explicit Holder(const Napi::CallbackInfo& info);  // new Dataplane(config): see below
  // A method of the table: the binding function F, which finds this instance through `this`.
  template <Napi::Value (*F)(const Napi::CallbackInfo&)>
  Napi::Value call(const Napi::CallbackInfo& info) {
    return F(info);
  }
  std::shared_ptr<Dataplane> dp;
  std::shared_ptr<addon::Fanout> fanout;  // a threaded Dataplane's shard 0: processPackets on every shard
  Napi::ObjectReference scratchIn, scratchOut;
  uint8_t* in = nullptr;
  uint8_t* out = nullptr;
  // decideV4's registered tuple and decision (SetScratchV4).
  Napi::ObjectReference v4InRef, v4OutRef;
  uint32_t* v4In = nullptr;
  uint32_t* v4Out = nullptr;
  // processPackets' registered PacketCall (SetPacketCall).
  Napi::ObjectReference packetParams;
  Napi::ObjectReference packetArrays[wire::kPacketArrays];
};

uint64_t toNs(double seconds) {
  if (!(seconds > 0)) return 0;
  if (seconds > 1.8e10) return UINT64_MAX / 2;
  return uint64_t(std::llround(seconds * 1e9));
}

// RFC 5952, exactly as lib/dataplane/address.ts formatAddress spells it: IPv4-mapped as the
// dotted quad; otherwise lower-case hex words without leading zeros, the longest run of two or
// more zero words (the first on ties) as "::". inet_ntop differs (it prints ::a.b.c.d for
// IPv4-compatible addresses), so dumps and decisions would disagree.
std::string formatAddr(const IpAddr& a) {
  char buf[48];
  if (a.isV4()) {
    snprintf(buf, sizeof buf, "%u.%u.%u.%u", a.b[12], a.b[13], a.b[14], a.b[15]);
    return buf;
  }
  uint16_t w[8];
  for (int i = 0; i < 8; ++i) w[i] = uint16_t(a.b[2 * i] << 8 | a.b[2 * i + 1]);
  int bestStart = -1, bestLen = 1;
  for (int i = 0; i < 8;) {
    if (w[i]) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && w[j] == 0) ++j;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == bestStart) {
      out += "::";
      i += bestLen - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    snprintf(buf, sizeof buf, "%x", w[i]);
    out += buf;
  }
  return out;
}

template <class T>
T rd(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
void wr(uint8_t* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

void readFlow(const uint8_t* p, FlowInput& in) {
  in = FlowInput{};
  std::memcpy(in.key.src.b, p, 16);
  std::memcpy(in.key.dst.b, p + 16, 16);
  // Ports and protocol as one word, as the key's hash reads them: written as three fields,
  // that load would stall on store forwarding.
  static_assert(offsetof(FlowKey, sport) == 32 && offsetof(FlowKey, proto) == 36 && sizeof(FlowKey) == 40);
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the low five bytes are sport, dport, proto");
  const uint64_t tail = rd<uint64_t>(p + 32) & 0xffffffffffull;
  std::memcpy(reinterpret_cast<uint8_t*>(&in.key) + 32, &tail, 8);
  in.scope = p[37] ? Scope::External : Scope::Internal;
  in.tcpFlags = p[38];
  in.bytes = rd<uint32_t>(p + 40);
}

void writeDecision(uint8_t* p, const Decision& d) {
  std::memset(p, 0, wire::kDecisionStride);
  p[0] = uint8_t(d.verdict);
  p[1] = uint8_t(d.reason);
  p[2] = uint8_t((d.established ? 1 : 0) | (d.affinityHit ? 2 : 0));
  wr<uint16_t>(p + 4, d.port);
  wr<uint32_t>(p + 8, d.serviceId);
  wr<uint32_t>(p + 12, d.backendId);
  std::memcpy(p + 16, d.addr.b, 16);
}

Holder* unwrap(const Napi::CallbackInfo& info) {
  if (!info.This().IsObject()) {
    Napi::TypeError::New(info.Env(), "not a Dataplane handle").ThrowAsJavaScriptException();
    return nullptr;
  }
  return Napi::ObjectWrap<Holder>::Unwrap(info.This().As<Napi::Object>());
}

Holder* holderOf(const Napi::CallbackInfo& info) {
  Holder* h = unwrap(info);
  if (!h) return nullptr;
  if (!h->dp) {
    Napi::Error e = Napi::Error::New(info.Env(), "Dataplane has been destroyed");
    e.Set("code", "DESTROYED");
    e.ThrowAsJavaScriptException();
    return nullptr;
  }
  return h;
}

// The core instance of a handle given as an argument (flow handoff: handoff.cc).
Dataplane* dataplaneOfArg(const Napi::CallbackInfo& info, const Napi::Value& v) {
  Napi::Env env = info.Env();
  bool ours = v.IsObject() && v.As<Napi::Object>().InstanceOf(env.GetInstanceData<Napi::FunctionReference>()->Value());
  Holder* h = ours ? Napi::ObjectWrap<Holder>::Unwrap(v.As<Napi::Object>()) : nullptr;
  if (h && h->dp) return h->dp.get();
  if (h) {
    Napi::Error e = Napi::Error::New(env, "Dataplane has been destroyed");
    e.Set("code", "DESTROYED");
    e.ThrowAsJavaScriptException();
  } else if (!env.IsExceptionPending()) {
    Napi::TypeError::New(env, "not a Dataplane handle").ThrowAsJavaScriptException();
  }
  return nullptr;
}

// Borrowed bytes of a Uint8Array / Uint32Array argument, with its length in bytes.
template <class T>
bool typed(const Napi::CallbackInfo& info, size_t i, T*& data, size_t& bytes) {
  if (!info[i].IsTypedArray()) {
    Napi::TypeError::New(info.Env(), "argument " + std::to_string(i) + " must be a typed array")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::TypedArray ta = info[i].As<Napi::TypedArray>();
  data = reinterpret_cast<T*>(static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
  bytes = ta.ByteLength();
  return true;
}

Napi::Value result(Napi::Env env, const Result& r) {
  if (r.ok()) return env.Undefined();
  Napi::Array a = Napi::Array::New(env, 2);
  a.Set(uint32_t(0), Napi::Number::New(env, double(r.status)));
  a.Set(uint32_t(1), Napi::String::New(env, r.message));
  return a;
}

// A refused raw value: `out` becomes the [status, message] pair lib/dataplane raises; false.
bool check(Napi::Env env, const Result& r, Napi::Value& out) {
  if (r.ok()) return true;
  out = result(env, r);
  return false;
}

// The wire's CIDRs carry the prefix in IPv4-mapped form (IPv4 /n is 96 + n): the family's
// own length is what the bridge checks.
Result checkWireCidr(const std::string& field, const IpAddr& net, uint8_t bits) {
  if (net.isV4())
    return bits < 96 ? Result{Status::Invalid, field + " IPv4 prefix is below 96 in mapped form"}
                     : bridge::checkPrefix(field, net, bits - 96u);
  return bridge::checkPrefix(field, net, bits);
}

Napi::Object statsObject(Napi::Env env, const MapStats& s) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("hits", double(s.hits));
  o.Set("misses", double(s.misses));
  o.Set("inserts", double(s.inserts));
  o.Set("updates", double(s.updates));
  o.Set("deletes", double(s.deletes));
  o.Set("evictions", double(s.evictions));
  o.Set("refusals", double(s.refusals));
  o.Set("expirations", double(s.expirations));
  return o;
}

template <class M>
Napi::Object mapInfo(Napi::Env env, const char* name, M& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("name", name);
  o.Set("size", double(m.size()));
  o.Set("capacity", double(m.capacity()));
  o.Set("bytes", double(m.bytes()));
  o.Set("stats", statsObject(env, m.stats()));
  return o;
}

const char* protoName(uint8_t p) {
  switch (p) {
    case 6: return "TCP";
    case 17: return "UDP";
    case 132: return "SCTP";
    default: return "OTHER";
  }
}

Napi::Object flowObject(Napi::Env env, const Flow& f) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("src", formatAddr(f.orig.src));
  o.Set("sport", f.orig.sport);
  o.Set("dst", formatAddr(f.orig.dst));
  o.Set("dport", f.orig.dport);
  o.Set("protocol", protoName(f.orig.proto));
  o.Set("backendAddress", formatAddr(f.reply.src));
  o.Set("backendPort", f.reply.sport);
  o.Set("serviceId", double(f.serviceId));
  o.Set("backendId", double(f.backendId));
  o.Set("revNatId", double(f.revNatId));
  o.Set("state", bridge::nameAt(bridge::kConntrackStateNames, size_t(f.state)));
  o.Set("created", double(f.created) / 1e9);
  o.Set("lastSeen", double(f.lastSeen) / 1e9);
  o.Set("expires", double(f.expires) / 1e9);
  o.Set("packets", double(f.packets[0]));
  o.Set("bytes", double(f.bytes[0]));
  o.Set("replyPackets", double(f.packets[1]));
  o.Set("replyBytes", double(f.bytes[1]));
  return o;
}

// ---------------------------------------------------------------------------------------

Napi::Value SetScratch(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  size_t inBytes, outBytes;
  uint8_t *in, *out;
  if (!typed(info, 0, in, inBytes) || !typed(info, 1, out, outBytes)) return info.Env().Undefined();
  if (inBytes < wire::kFlowStride || outBytes < wire::kDecisionStride) {
    Napi::RangeError::New(info.Env(), "scratch buffers too small").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  h->scratchIn = Napi::Persistent(info[0].As<Napi::Object>());
  h->scratchOut = Napi::Persistent(info[1].As<Napi::Object>());
  h->in = in;
  h->out = out;
  return info.Env().Undefined();
}

// The single-flow call: its tuple is already in the scratch buffer registered once, so the
// call carries one number and costs little more than a bare function call.
Napi::Value DecideScratch(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h || !h->in) return info.Env().Undefined();
  FlowInput in;
  readFlow(h->in, in);
  Decision d;
  h->dp->decide(in, toNs(info[0].As<Napi::Number>().DoubleValue()), d);
  writeDecision(h->out, d);
  return info.Env().Undefined();
}

// setScratchV4(in: Uint32Array of kV4InSlots, out: Uint32Array of kV4OutSlots), once.
Napi::Value SetScratchV4(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  uint32_t *in, *out;
  size_t inBytes, outBytes;
  if (!typed(info, 0, in, inBytes) || !typed(info, 1, out, outBytes)) return env.Undefined();
  if (inBytes < wire::kV4InSlots * 4 || outBytes < wire::kV4OutSlots * 4) {
    Napi::RangeError::New(env, "decideV4 scratch arrays too small").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  h->v4InRef = Napi::Persistent(info[0].As<Napi::Object>());
  h->v4OutRef = Napi::Persistent(info[1].As<Napi::Object>());
  h->v4In = in;
  h->v4Out = out;
  return env.Undefined();
}

// decideV4(now): the IPv4 tuple already in the registered array (lib/dataplane checked it), the
// decision into the other. A raw Node-API callback: this call is the one a proxy makes per
// packet from JS, and node-addon-api's CallbackInfo and ObjectWrap trampoline cost as much as
// the decision itself (issue 18). `this` is the handle, unwrapped as ObjectWrap stores it.
napi_value DecideV4(napi_env env, napi_callback_info cb) {
  size_t argc = 1;
  napi_value argv[1], self;
  double now = 0;
  void* wrapped = nullptr;
  if (napi_get_cb_info(env, cb, &argc, argv, &self, nullptr) != napi_ok || argc < 1 ||
      napi_get_value_double(env, argv[0], &now) != napi_ok || napi_unwrap(env, self, &wrapped) != napi_ok) {
    napi_throw_type_error(env, nullptr, "decideV4(now) on a Dataplane handle");
    return nullptr;
  }
  Holder* h = static_cast<Holder*>(wrapped);  // ObjectWrap<Holder> wraps the Holder itself
  if (!h->dp || !h->v4In) {
    napi_throw_error(env, "DESTROYED", "Dataplane has been destroyed");
    return nullptr;
  }
  const uint32_t* t = h->v4In;
  FlowInput in{};
  in.key.src = IpAddr::v4(t[wire::kV4Src]);
  in.key.dst = IpAddr::v4(t[wire::kV4Dst]);
  in.key.sport = uint16_t(t[wire::kV4Ports]);
  in.key.dport = uint16_t(t[wire::kV4Ports] >> 16);
  in.key.proto = uint8_t(t[wire::kV4Meta]);
  in.scope = (t[wire::kV4Meta] >> 8) & 1 ? Scope::External : Scope::Internal;
  in.tcpFlags = uint8_t(t[wire::kV4Meta] >> 16);
  Decision d;
  h->dp->decide(in, toNs(now), d);
  uint32_t* o = h->v4Out;
  o[wire::kV4Verdict] = uint32_t(d.verdict);
  o[wire::kV4Reason] = uint32_t(d.reason);
  o[wire::kV4Flags] = (d.established ? 1u : 0u) | (d.affinityHit ? 2u : 0u);
  o[wire::kV4ServiceId] = d.serviceId;
  o[wire::kV4BackendId] = d.backendId;
  o[wire::kV4Port] = d.port;
  const bool hasAddr = (d.verdict == Verdict::Forward || d.verdict == Verdict::Reply) && d.addr.isV4();
  o[wire::kV4Address] =
      hasAddr ? uint32_t(d.addr.b[12]) << 24 | uint32_t(d.addr.b[13]) << 16 | uint32_t(d.addr.b[14]) << 8 | d.addr.b[15]
              : 0;
  return nullptr;
}

Napi::Value DecideBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  uint8_t *in, *out;
  size_t inBytes, outBytes;
  if (!typed(info, 0, in, inBytes) || !typed(info, 3, out, outBytes)) return env.Undefined();
  uint32_t n = info[1].As<Napi::Number>().Uint32Value();
  uint64_t now = toNs(info[2].As<Napi::Number>().DoubleValue());
  if (uint64_t(n) * wire::kFlowStride > inBytes || uint64_t(n) * wire::kDecisionStride > outBytes) {
    Napi::RangeError::New(env, "batch count exceeds the buffers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  bridge::decideChunked(
      *h->dp, n, now, [&](uint32_t i, FlowInput& f) { readFlow(in + size_t(i) * wire::kFlowStride, f); },
      [&](uint32_t i, const Decision& d) { writeDecision(out + size_t(i) * wire::kDecisionStride, d); });
  return Napi::Number::New(env, n);
}

Napi::Value UpsertBackend(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  uint8_t* addr;
  size_t len;
  if (!typed(info, 1, addr, len) || len < 16) return info.Env().Undefined();
  BackendSpec s{};
  Napi::Value out;
  s.id = info[0].As<Napi::Number>().Uint32Value();
  std::memcpy(s.addr.b, addr, 16);
  s.port = uint16_t(info[2].As<Napi::Number>().Uint32Value());
  if (!check(info.Env(), bridge::checkBackendState(s.id, info[3].As<Napi::Number>().Uint32Value()), out)) return out;
  s.state = BackendState(info[3].As<Napi::Number>().Uint32Value());
  s.weight = info[4].As<Napi::Number>().Uint32Value();
  s.nodeLocal = info[5].ToBoolean();
  s.zone = uint16_t(info[6].As<Napi::Number>().Uint32Value());
  return result(info.Env(), h->dp->upsertBackend(s));
}

Napi::Value DeleteBackend(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  return result(info.Env(), h->dp->deleteBackend(info[0].As<Napi::Number>().Uint32Value()));
}

Napi::Value UpsertService(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  ServiceSpec s{};
  Napi::Value out;
  s.id = info[0].As<Napi::Number>().Uint32Value();
  const std::string who = "service " + std::to_string(s.id);
  uint32_t kind = info[1].As<Napi::Number>().Uint32Value(), empty = info[3].As<Napi::Number>().Uint32Value();
  if (!check(info.Env(), bridge::checkScheduler(who, kind), out) ||
      !check(info.Env(), bridge::checkEmptyVerdict(who, empty), out))
    return out;
  s.kind = SchedulerKind(kind);
  s.affinityTimeoutNs = toNs(info[2].As<Napi::Number>().DoubleValue());
  s.emptyVerdict = Verdict(empty);
  uint8_t *fe, *ranges;
  uint32_t* ids;
  size_t feBytes, idBytes, rangeBytes;
  if (!typed(info, 4, fe, feBytes) || !typed(info, 5, ids, idBytes) || !typed(info, 6, ranges, rangeBytes))
    return info.Env().Undefined();
  for (size_t off = 0; off + wire::kFrontendStride <= feBytes; off += wire::kFrontendStride) {
    if (!check(info.Env(),
               bridge::checkFrontend(who, off / wire::kFrontendStride, fe[off + 18], fe[off + 19], fe[off + 21]), out))
      return out;
    FrontendSpec f{};
    std::memcpy(f.key.addr.b, fe + off, 16);
    f.key.port = rd<uint16_t>(fe + off + 16);
    f.key.proto = fe[off + 18];
    f.key.scope = fe[off + 19];
    f.checkSourceRanges = fe[off + 20] != 0;
    f.masquerade = MasqPolicy(fe[off + 21]);
    s.frontends.push_back(f);
  }
  s.backendIds.assign(ids, ids + idBytes / 4);
  for (size_t off = 0; off + wire::kCidrStride <= rangeBytes; off += wire::kCidrStride) {
    Cidr c{};
    std::memcpy(c.net.b, ranges + off, 16);
    if (!check(info.Env(),
               checkWireCidr(who + " source ranges[" + std::to_string(off / wire::kCidrStride) + "]", c.net,
                             ranges[off + 16]),
               out))
      return out;
    c.bits = ranges[off + 16];
    s.sourceRanges.push_back(c);
  }
  return result(info.Env(), h->dp->upsertService(s));
}

// The bytes of typed array `name` of `o`; false (a TypeError thrown) when it is not one.
bool typedField(Napi::Env env, const Napi::Object& o, const char* name, uint8_t*& data, size_t& bytes) {
  Napi::Value v = o.Get(name);
  if (!v.IsTypedArray()) {
    Napi::TypeError::New(env, std::string("upsertBatch: ") + name + " must be a typed array")
        .ThrowAsJavaScriptException();
    return false;
  }
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  data = static_cast<uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset();
  bytes = ta.ByteLength();
  return true;
}

// upsertBatch(batch, backends, services): the first `backends` backends and `services`
// services of an UpdateBatch (lib/dataplane/update-batch.ts; wire.h layouts), applied all or
// nothing by the bridge. -> undefined, or [status, message, 1 if a service else 0, index].
Napi::Value UpsertBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  if (!info[0].IsObject() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "upsertBatch(batch, backends, services)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object o = info[0].As<Napi::Object>();
  const uint32_t nb = info[1].As<Napi::Number>().Uint32Value(), ns = info[2].As<Napi::Number>().Uint32Value();
  uint8_t *be, *sv, *aff, *fe, *idb, *rg;
  size_t beB, svB, affB, feB, idB, rgB;
  if (!typedField(env, o, "backends", be, beB) || !typedField(env, o, "services", sv, svB) ||
      !typedField(env, o, "affinity", aff, affB) || !typedField(env, o, "frontends", fe, feB) ||
      !typedField(env, o, "backendIds", idb, idB) || !typedField(env, o, "ranges", rg, rgB))
    return env.Undefined();
  if (uint64_t(nb) * wire::kBatchBackendStride > beB || uint64_t(ns) * wire::kServiceSlots * 4 > svB ||
      uint64_t(ns) * 8 > affB) {
    Napi::RangeError::New(env, "upsertBatch: counts exceed the batch's arrays").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto refused = [&](const Result& r, bool service, size_t index) {
    Napi::Array a = Napi::Array::New(env, 4);
    a.Set(uint32_t(0), Napi::Number::New(env, double(r.status)));
    a.Set(uint32_t(1), Napi::String::New(env, r.message));
    a.Set(uint32_t(2), Napi::Number::New(env, service ? 1 : 0));
    a.Set(uint32_t(3), Napi::Number::New(env, double(index)));
    return a;
  };
  bridge::UpdateBatch batch;
  batch.backends.resize(nb);
  for (uint32_t i = 0; i < nb; ++i) {
    const uint8_t* p = be + size_t(i) * wire::kBatchBackendStride;
    BackendSpec& b = batch.backends[i];
    std::memcpy(b.addr.b, p, 16);
    b.id = rd<uint32_t>(p + 16);
    b.port = rd<uint16_t>(p + 20);
    if (Result r = bridge::checkBackendState(b.id, p[22]); !r.ok()) return refused(r, false, i);
    b.state = BackendState(p[22]);
    b.nodeLocal = p[23] != 0;
    b.weight = rd<uint32_t>(p + 24);
    b.zone = rd<uint16_t>(p + 28);
  }
  batch.services.resize(ns);
  size_t feOff = 0, idOff = 0, rgOff = 0;
  for (uint32_t i = 0; i < ns; ++i) {
    const uint8_t* slots = sv + size_t(i) * wire::kServiceSlots * 4;
    auto slot = [&](size_t k) { return rd<uint32_t>(slots + k * 4); };
    ServiceSpec& s = batch.services[i];
    s.id = slot(wire::kSvcId);
    const std::string who = "service " + std::to_string(s.id);
    if (Result r = bridge::checkScheduler(who, slot(wire::kSvcScheduler)); !r.ok()) return refused(r, true, i);
    if (Result r = bridge::checkEmptyVerdict(who, slot(wire::kSvcEmptyVerdict)); !r.ok()) return refused(r, true, i);
    s.kind = SchedulerKind(slot(wire::kSvcScheduler));
    s.emptyVerdict = Verdict(slot(wire::kSvcEmptyVerdict));
    s.affinityTimeoutNs = toNs(rd<double>(aff + size_t(i) * 8));
    const uint64_t nf = slot(wire::kSvcFrontends), nids = slot(wire::kSvcBackends), nr = slot(wire::kSvcRanges);
    if ((feOff + nf) * wire::kFrontendStride > feB || (idOff + nids) * 4 > idB ||
        (rgOff + nr) * wire::kCidrStride > rgB) {
      Napi::RangeError::New(env, "upsertBatch: " + who + " lists more than the batch's arrays hold")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    s.frontends.resize(nf);
    for (size_t f = 0; f < nf; ++f, ++feOff) {
      const uint8_t* p = fe + feOff * wire::kFrontendStride;
      if (Result r = bridge::checkFrontend(who, f, p[18], p[19], p[21]); !r.ok()) return refused(r, true, i);
      FrontendSpec& x = s.frontends[f];
      std::memcpy(x.key.addr.b, p, 16);
      x.key.port = rd<uint16_t>(p + 16);
      x.key.proto = p[18];
      x.key.scope = p[19];
      x.checkSourceRanges = p[20] != 0;
      x.masquerade = MasqPolicy(p[21]);
    }
    s.backendIds.resize(nids);
    std::memcpy(s.backendIds.data(), idb + idOff * 4, nids * 4);
    idOff += nids;
    s.sourceRanges.resize(nr);
    for (size_t k = 0; k < nr; ++k, ++rgOff) {
      const uint8_t* p = rg + rgOff * wire::kCidrStride;
      Cidr& c = s.sourceRanges[k];
      std::memcpy(c.net.b, p, 16);
      if (Result r = checkWireCidr(who + " source ranges[" + std::to_string(k) + "]", c.net, p[16]); !r.ok())
        return refused(r, true, i);
      c.bits = p[16];
    }
  }
  bridge::BatchOutcome out = bridge::applyUpdateBatch(*h->dp, batch);
  if (out.result.ok()) return env.Undefined();
  return refused(out.result, out.service, out.index);
}

Napi::Value DeleteService(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  return result(info.Env(), h->dp->deleteService(info[0].As<Napi::Number>().Uint32Value()));
}

Napi::Value Reserve(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  auto u32 = [&](size_t i) { return info[i].As<Napi::Number>().Uint32Value(); };
  return result(info.Env(), h->dp->reserve(u32(0), u32(1), u32(2)));
}

Napi::Value DeleteFlowsByBackend(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), h->dp->deleteFlowsByBackend(info[0].As<Napi::Number>().Uint32Value()));
}

Napi::Value DeleteFlowsByService(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  return Napi::Number::New(info.Env(), h->dp->deleteFlowsByService(info[0].As<Napi::Number>().Uint32Value()));
}

Napi::Value FlushConntrack(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  uint32_t before = h->dp->conntrack().size();
  h->dp->flushConntrack();
  return Napi::Number::New(info.Env(), before);
}

Napi::Value Gc(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  uint64_t now = toNs(info[0].As<Napi::Number>().DoubleValue());
  uint32_t budget = info[1].As<Napi::Number>().Uint32Value();
  uint32_t flows = h->dp->gc(now, budget);
  uint32_t aff = h->dp->gcAffinity(now, budget);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("flows", flows);
  o.Set("affinity", aff);
  return o;
}

Napi::Value PeekFlowScratch(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h || !h->in) return info.Env().Undefined();
  FlowInput in;
  readFlow(h->in, in);
  CtHit hit = h->dp->conntrack().peek(in.key);
  if (hit.flow == Conntrack::kNone) return info.Env().Null();
  Napi::Object o = flowObject(info.Env(), h->dp->conntrack().at(hit.flow));
  o.Set("direction", hit.dir == Dir::Original ? "original" : "reply");
  return o;
}

Napi::Value DumpConntrack(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  uint32_t start = info[0].As<Napi::Number>().Uint32Value();
  uint32_t max = info[1].As<Napi::Number>().Uint32Value();
  Conntrack& ct = h->dp->conntrack();
  Napi::Array entries = Napi::Array::New(env);
  uint32_t i = start, n = 0;
  for (; i < ct.capacity() && n < max; ++i)
    if (ct.at(i).used) entries.Set(n++, flowObject(env, ct.at(i)));
  Napi::Object o = Napi::Object::New(env);
  o.Set("entries", entries);
  o.Set("next", i < ct.capacity() ? double(i) : -1.0);
  return o;
}

// Every used entry of a fixed map as an array of objects (like `bpftool map dump`).
template <class M, class Fill>
Napi::Array dumpEntries(Napi::Env env, M& m, Fill&& fill) {
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t i = 0; i < m.capacity(); ++i) {
    auto& e = m.at(i);
    if (!e.used) continue;
    Napi::Object o = Napi::Object::New(env);
    fill(o, e);
    out.Set(n++, o);
  }
  return out;
}

Napi::Value DumpServices(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  auto& m = h->dp->services();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t i = 0; i < m.capacity(); ++i) {
    auto& e = m.at(i);
    if (!e.used) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", double(e.key));
    o.Set("scheduler", double(uint32_t(e.value.kind)));
    o.Set("affinityTimeout", double(e.value.affinityTimeoutNs) / 1e9);
    o.Set("emptyVerdict", e.value.emptyVerdict == Verdict::Drop ? "drop" : "reject");
    Napi::Array all = Napi::Array::New(env), active = Napi::Array::New(env);
    if (e.value.set) {
      for (size_t k = 0; k < e.value.set->allIds.size(); ++k) all.Set(uint32_t(k), double(e.value.set->allIds[k]));
      for (size_t k = 0; k < e.value.set->active.size(); ++k)
        active.Set(uint32_t(k), double(e.value.set->active[k].backendId));
    }
    o.Set("backends", all);
    o.Set("activeBackends", active);
    Napi::Array fes = Napi::Array::New(env);
    for (size_t k = 0; k < e.value.frontends.size(); ++k) {
      const FrontendKey& fk = e.value.frontends[k];
      Napi::Object f = Napi::Object::New(env);
      f.Set("address", formatAddr(fk.addr));
      f.Set("port", fk.port);
      f.Set("protocol", protoName(fk.proto));
      f.Set("scope", fk.scope ? "external" : "internal");
      fes.Set(uint32_t(k), f);
    }
    o.Set("frontends", fes);
    Napi::Array ranges = Napi::Array::New(env);
    for (size_t k = 0; k < e.value.sourceRanges.size(); ++k) {
      const Cidr& c = e.value.sourceRanges[k];
      bool v4 = c.net.isV4() && c.bits >= 96;
      ranges.Set(uint32_t(k), formatAddr(c.net) + "/" + std::to_string(v4 ? c.bits - 96 : c.bits));
    }
    o.Set("sourceRanges", ranges);
    out.Set(n++, o);
  }
  return out;
}

Napi::Value DumpBackends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  return dumpEntries(env, h->dp->backends(), [&](Napi::Object& o, auto& e) {
    o.Set("id", double(e.key));
    o.Set("address", formatAddr(e.value.addr));
    o.Set("port", e.value.port);
    o.Set("state", bridge::nameAt(bridge::kBackendStateNames, size_t(e.value.state)));
    o.Set("weight", double(e.value.weight));
    o.Set("nodeLocal", e.value.nodeLocal);
    o.Set("zone", double(e.value.zone));
    o.Set("activeConnections", double(e.value.activeConns));
    Napi::Array svcs = Napi::Array::New(env);
    for (size_t k = 0; k < e.value.services.size(); ++k) svcs.Set(uint32_t(k), double(e.value.services[k]));
    o.Set("services", svcs);
  });
}

Napi::Value DumpFrontends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  return dumpEntries(env, h->dp->frontends(), [&](Napi::Object& o, auto& e) {
    o.Set("address", formatAddr(e.key.addr));
    o.Set("port", e.key.port);
    o.Set("protocol", protoName(e.key.proto));
    o.Set("scope", e.key.scope ? "external" : "internal");
    o.Set("serviceId", double(e.value.serviceId));
    o.Set("revNatId", double(e.value.revNatId));
    o.Set("checkSourceRanges", e.value.checkSourceRanges);
  });
}

Napi::Value DumpRevnat(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  return dumpEntries(env, h->dp->revnat(), [&](Napi::Object& o, auto& e) {
    o.Set("id", double(e.key));
    o.Set("address", formatAddr(e.value.addr));
    o.Set("port", e.value.port);
  });
}

Napi::Value DumpAffinity(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  return dumpEntries(env, h->dp->affinity(), [&](Napi::Object& o, auto& e) {
    o.Set("client", formatAddr(e.key.client));
    o.Set("serviceId", double(e.key.serviceId));
    o.Set("backendId", double(e.value.backendId));
    o.Set("lastUsed", double(e.value.lastUsed) / 1e9);
  });
}

Napi::Value MaglevTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  std::vector<uint32_t> table;
  if (!h->dp->schedulerTable(info[0].As<Napi::Number>().Uint32Value(), table)) return env.Null();
  Napi::Uint32Array out = Napi::Uint32Array::New(env, table.size());
  if (!table.empty()) std::memcpy(out.Data(), table.data(), table.size() * sizeof(uint32_t));
  return out;
}

Napi::Value MapInfos(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  Dataplane& dp = *h->dp;
  Napi::Array out = Napi::Array::New(env, 6);
  out.Set(uint32_t(0), mapInfo(env, "services", dp.services()));
  out.Set(uint32_t(1), mapInfo(env, "frontends", dp.frontends()));
  out.Set(uint32_t(2), mapInfo(env, "backends", dp.backends()));
  out.Set(uint32_t(3), mapInfo(env, "revnat", dp.revnat()));
  out.Set(uint32_t(4), mapInfo(env, "affinity", dp.affinity()));
  out.Set(uint32_t(5), mapInfo(env, "conntrack", dp.conntrack()));
  return out;
}

Napi::Value Counters(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  const DataplaneCounters& c = h->dp->counters();
  Napi::Object o = Napi::Object::New(env);
  o.Set("packets", double(c.packets));
  Napi::Array v = Napi::Array::New(env, kVerdicts), r = Napi::Array::New(env, kReasons);
  for (int i = 0; i < kVerdicts; ++i) v.Set(uint32_t(i), double(c.verdicts[i]));
  for (int i = 0; i < kReasons; ++i) r.Set(uint32_t(i), double(c.reasons[i]));
  o.Set("verdicts", v);
  o.Set("reasons", r);
  return o;
}

Napi::Value SetTimeouts(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  double* secs;
  size_t bytes;
  if (!typed(info, 0, secs, bytes)) return info.Env().Undefined();
  CtTimeouts& t = h->dp->conntrack().timeouts();
  for (size_t i = 0; i < bytes / 8 && i < size_t(CtState::Count); ++i) t.ns[i] = toNs(secs[i]);
  return info.Env().Undefined();
}

// ---------------------------------------------------------------------------------------
// Packet path

// processPackets' arguments are one struct built once per Dataplane in TypeScript
// (lib/dataplane/packet-call.ts PacketCall), registered with setPacketCall when its arrays
// change: `params`, a Float64Array of the scalars (PacketParam order, wire.h), and the arrays
// below (PacketArray order). A call then carries no argument: it resolves the registered
// arrays again (so a detached or shrunk buffer is seen, never a stale pointer) and reads the
// scalars from `params`.
constexpr const char* kPacketArrayNames[wire::kPacketArrays] = {"buffer",  "offsets", "lengths",      "verdicts",
                                                                "reasons", "replies", "replyOffsets", "replyLengths"};

// The bytes of a registered array now; false when it is absent (null at registration).
bool resolve(Napi::Env env, const Napi::ObjectReference& ref, uint8_t*& data, size_t& bytes) {
  data = nullptr;
  bytes = 0;
  if (ref.IsEmpty()) return false;
  napi_typedarray_type type;
  size_t length, offset;
  void* p;
  napi_value ab;
  if (napi_get_typedarray_info(env, ref.Value(), &type, &length, &p, &ab, &offset) != napi_ok) return false;
  static constexpr size_t kElement[] = {1, 1, 1, 2, 2, 4, 4, 4, 8, 8, 8};  // by napi_typedarray_type
  data = static_cast<uint8_t*>(p);
  bytes = data ? length * (size_t(type) < std::size(kElement) ? kElement[type] : 1) : 0;
  return true;
}

// setPacketCall(call): registers call.params and call's arrays (a Uint8Array / Uint32Array
// each; the three replies* fields may be null).
Napi::Value SetPacketCall(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  if (!info[0].IsObject()) {
    Napi::TypeError::New(env, "setPacketCall: the argument must be an object").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Object call = info[0].As<Napi::Object>();
  Napi::Value params = call.Get("params");
  if (!params.IsTypedArray() || params.As<Napi::TypedArray>().TypedArrayType() != napi_float64_array ||
      params.As<Napi::TypedArray>().ElementLength() < wire::kPacketParams) {
    Napi::TypeError::New(
        env, "setPacketCall: params must be a Float64Array of " + std::to_string(wire::kPacketParams) + " numbers")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::ObjectReference refs[wire::kPacketArrays];
  for (size_t k = 0; k < wire::kPacketArrays; ++k) {
    Napi::Value v = call.Get(kPacketArrayNames[k]);
    if (k >= wire::kReplies && v.IsNull()) continue;
    if (!v.IsTypedArray()) {
      Napi::TypeError::New(env, std::string("setPacketCall: ") + kPacketArrayNames[k] + " must be a typed array")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    refs[k] = Napi::Persistent(v.As<Napi::Object>());
  }
  h->packetParams = Napi::Persistent(params.As<Napi::Object>());
  for (size_t k = 0; k < wire::kPacketArrays; ++k) h->packetArrays[k] = std::move(refs[k]);
  return env.Undefined();
}

// processPackets() over the registered PacketCall -> bytes of replies used. Every
// offset/length is checked against the buffer before any packet is touched, so a bad batch
// changes nothing.
Napi::Value ProcessPackets(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  uint8_t* p[wire::kPacketArrays];
  size_t bytes[wire::kPacketArrays];
  uint8_t* paramBytes;
  size_t paramLen;
  if (!resolve(env, h->packetParams, paramBytes, paramLen) || paramLen < wire::kPacketParams * sizeof(double)) {
    Napi::Error::New(env, "processPackets: no PacketCall registered (setPacketCall)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  for (size_t k = 0; k < wire::kPacketArrays; ++k) resolve(env, h->packetArrays[k], p[k], bytes[k]);
  double params[wire::kPacketParams];
  std::memcpy(params, paramBytes, sizeof params);
  const double count = params[wire::kCount];
  if (!(count >= 0 && count <= UINT32_MAX)) {
    Napi::RangeError::New(env, "processPackets: count must be 0..2^32-1").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const uint32_t n = uint32_t(count);
  uint8_t *buf = p[wire::kBuffer], *verdicts = p[wire::kVerdicts], *reasons = p[wire::kReasons];
  auto* offsets = reinterpret_cast<uint32_t*>(p[wire::kOffsets]);
  auto* lengths = reinterpret_cast<uint32_t*>(p[wire::kLengths]);
  if (uint64_t(n) * 4 > bytes[wire::kOffsets] || uint64_t(n) * 4 > bytes[wire::kLengths] ||
      n > bytes[wire::kVerdicts] || n > bytes[wire::kReasons]) {
    Napi::RangeError::New(env, "count exceeds offsets, lengths, verdicts or reasons").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  const size_t bufBytes = bytes[wire::kBuffer];
  for (uint32_t i = 0; i < n; ++i)
    if (uint64_t(offsets[i]) + lengths[i] > bufBytes) {
      Napi::RangeError::New(env, "packet " + std::to_string(i) + " (offset " + std::to_string(offsets[i]) +
                                     ", length " + std::to_string(lengths[i]) + ") lies outside the buffer of " +
                                     std::to_string(bufBytes) + " bytes")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
  PacketOptions opt;
  opt.dir = params[wire::kDirection] != 0 ? PacketDirection::FromBackend : PacketDirection::ToService;
  const uint64_t now = toNs(params[wire::kNow]);
  opt.link = params[wire::kLink] != 0 ? LinkType::Raw : LinkType::Ethernet;
  opt.fromNode = params[wire::kFromNode] != 0;
  const double reject = params[wire::kReject];
  if (Result r = bridge::checkRejectMode(reject >= 0 && reject < 256 ? uint64_t(reject) : UINT64_MAX); !r.ok()) {
    Napi::RangeError::New(env, r.message).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  opt.reject = RejectMode(uint8_t(reject));
  ReplySink sink;
  if (p[wire::kReplies]) {
    if (uint64_t(n) * 4 > bytes[wire::kReplyOffsets] || uint64_t(n) * 4 > bytes[wire::kReplyLengths]) {
      Napi::RangeError::New(env, "count exceeds the reply offsets or lengths").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    sink.data = p[wire::kReplies];
    sink.offsets = reinterpret_cast<uint32_t*>(p[wire::kReplyOffsets]);
    sink.lengths = reinterpret_cast<uint32_t*>(p[wire::kReplyLengths]);
    sink.capacity = uint32_t(bytes[wire::kReplies] > UINT32_MAX ? UINT32_MAX : bytes[wire::kReplies]);
  }
  if (h->fanout) {
    addon::fanOut(*h->fanout, n, opt, now, buf, offsets, lengths, verdicts, reasons, sink.data ? &sink : nullptr);
    return Napi::Number::New(env, sink.used);
  }
  bridge::processChunked(
      *h->dp, n, opt, now,
      [&](uint32_t base, uint32_t m, PacketRef* scratch) {
        for (uint32_t i = 0; i < m; ++i) scratch[i] = PacketRef{buf + offsets[base + i], lengths[base + i]};
        return scratch;
      },
      verdicts, reasons, sink.data ? &sink : nullptr);
  return Napi::Number::New(env, sink.used);
}

// setPacketConfig(nodeAddrs (n x 16 bytes), podCidrs (n x 20 bytes), masq4 | null, masq6 | null,
//                 masqueradeAll, natPortLow, natPortHigh, fragmentTimeoutSeconds)
Napi::Value SetPacketConfig(const Napi::CallbackInfo& info) {
  Holder* h = holderOf(info);
  if (!h) return info.Env().Undefined();
  uint8_t *nodes, *cidrs;
  size_t nb, cb;
  if (!typed(info, 0, nodes, nb) || !typed(info, 1, cidrs, cb)) return info.Env().Undefined();
  PacketConfig c;
  for (size_t off = 0; off + 16 <= nb; off += 16) {
    IpAddr a;
    std::memcpy(a.b, nodes + off, 16);
    c.nodeAddrs.push_back(a);
  }
  Napi::Value out;
  for (size_t off = 0; off + wire::kCidrStride <= cb; off += wire::kCidrStride) {
    Cidr x{};
    std::memcpy(x.net.b, cidrs + off, 16);
    if (!check(info.Env(),
               checkWireCidr("pod CIDRs[" + std::to_string(off / wire::kCidrStride) + "]", x.net, cidrs[off + 16]),
               out))
      return out;
    x.bits = cidrs[off + 16];
    c.podCidrs.push_back(x);
  }
  uint8_t* a;
  size_t ab;
  if (info[2].IsTypedArray() && typed(info, 2, a, ab) && ab >= 16) {
    c.hasMasq4 = true;
    std::memcpy(c.masq4.b, a, 16);
  }
  if (info[3].IsTypedArray() && typed(info, 3, a, ab) && ab >= 16) {
    c.hasMasq6 = true;
    std::memcpy(c.masq6.b, a, 16);
  }
  c.masqueradeAll = info[4].ToBoolean();
  c.natPortLow = uint16_t(info[5].As<Napi::Number>().Uint32Value());
  c.natPortHigh = uint16_t(info[6].As<Napi::Number>().Uint32Value());
  Result r = h->dp->setPacketConfig(c);
  if (r.ok()) h->dp->setFragmentTimeout(toNs(info[7].As<Napi::Number>().DoubleValue()));
  return result(info.Env(), r);
}

Napi::Value PacketCountersOf(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  const PacketCounters& c = h->dp->packetCounters();
  Napi::Object o = Napi::Object::New(env);
  o.Set("packets", double(c.packets));
  Napi::Array v = Napi::Array::New(env, kVerdicts), r = Napi::Array::New(env, kPacketReasons),
              k = Napi::Array::New(env, kPktCounters);
  for (int i = 0; i < kVerdicts; ++i) v.Set(uint32_t(i), double(c.verdicts[i]));
  for (int i = 0; i < kPacketReasons; ++i) r.Set(uint32_t(i), double(c.reasons[i]));
  for (int i = 0; i < kPktCounters; ++i) k.Set(uint32_t(i), double(c.counts[i]));
  o.Set("verdicts", v);
  o.Set("reasons", r);
  o.Set("counts", k);
  return o;
}

Napi::Value PacketMapInfos(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(uint32_t(0), mapInfo(env, "nat", h->dp->natPorts().map()));
  out.Set(uint32_t(1), mapInfo(env, "fragments", h->dp->fragments().map()));
  return out;
}

Napi::Value DumpNatPorts(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Holder* h = holderOf(info);
  if (!h) return env.Undefined();
  auto& m = h->dp->natPorts().map();
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (uint32_t i = 0; i < m.capacity(); ++i) {
    auto& e = m.at(i);
    if (!e.used) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("address", formatAddr(e.key.nat));
    o.Set("port", e.key.natPort);
    o.Set("peerAddress", formatAddr(e.key.peer));
    o.Set("peerPort", e.key.peerPort);
    o.Set("protocol", protoName(e.key.proto));
    const Flow& f = h->dp->conntrack().at(e.value.flow);
    if (f.used && f.snat) {
      o.Set("client", formatAddr(f.orig.src));
      o.Set("clientPort", f.orig.sport);
    }
    out.Set(n++, o);
  }
  return out;
}

Napi::Value Destroy(const Napi::CallbackInfo& info) {
  Holder* h = unwrap(info);
  if (!h) return info.Env().Undefined();
  h->dp.reset();
  h->fanout.reset();
  h->in = h->out = nullptr;
  h->scratchIn.Reset();
  h->scratchOut.Reset();
  h->v4In = h->v4Out = nullptr;
  h->v4InRef.Reset();
  h->v4OutRef.Reset();
  h->packetParams.Reset();
  for (auto& r : h->packetArrays) r.Reset();
  return info.Env().Undefined();
}

uint64_t bigintOr(const Napi::Object& o, const char* key, uint64_t fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsBigInt()) {
    bool lossless;
    return v.As<Napi::BigInt>().Uint64Value(&lossless);
  }
  if (v.IsNumber()) return uint64_t(v.As<Napi::Number>().DoubleValue());
  return fallback;
}

uint32_t u32Or(const Napi::Object& o, const char* key, uint32_t fallback) {
  Napi::Value v = o.Get(key);
  return v.IsNumber() ? v.As<Napi::Number>().Uint32Value() : fallback;
}

}  // namespace

Holder::Holder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Holder>(info) {
  Napi::Env env = info.Env();
  if (!info[0].IsObject()) {
    Napi::TypeError::New(env, "config must be an object").ThrowAsJavaScriptException();
    return;
  }
  Napi::Object c = info[0].As<Napi::Object>();
  DataplaneConfig cfg;
  struct Field {
    const char* name;
    uint32_t* into;
  } caps[] = {{"services", &cfg.maxServices},  {"frontends", &cfg.maxFrontends}, {"backends", &cfg.maxBackends},
              {"conntrack", &cfg.maxFlows},    {"affinity", &cfg.maxAffinity},   {"natPorts", &cfg.maxNatPorts},
              {"fragments", &cfg.maxFragments}};
  auto refuse = [&](const Result& r) { Napi::RangeError::New(env, r.message).ThrowAsJavaScriptException(); };
  for (const Field& f : caps) {
    double v = c.Get(f.name).IsNumber() ? c.Get(f.name).As<Napi::Number>().DoubleValue() : double(*f.into);
    if (Result r = bridge::checkCapacity(f.name, v >= 0 && v < 1e10 ? uint64_t(v) : UINT64_MAX); !r.ok()) {
      refuse(r);
      return;
    }
    *f.into = uint32_t(v);
  }
  uint32_t ctPolicy = u32Or(c, "conntrackPolicy", 0), affPolicy = u32Or(c, "affinityPolicy", 0);
  if (Result r = bridge::checkFullPolicy("conntrackPolicy", ctPolicy); !r.ok()) {
    refuse(r);
    return;
  }
  if (Result r = bridge::checkFullPolicy("affinityPolicy", affPolicy); !r.ok()) {
    refuse(r);
    return;
  }
  cfg.conntrackPolicy = FullPolicy(ctPolicy);
  cfg.affinityPolicy = FullPolicy(affPolicy);
  cfg.seed = bigintOr(c, "seed", 0);
  cfg.rngSeed = bigintOr(c, "rngSeed", 0);
  cfg.sched.maglevTableSize = u32Or(c, "maglevTableSize", cfg.sched.maglevTableSize);
  if (Result r = bridge::checkMaglevTableSize("maglevTableSize", cfg.sched.maglevTableSize); !r.ok()) {
    refuse(r);
    return;
  }
  cfg.sched.maglevSeed = bigintOr(c, "maglevSeed", cfg.sched.maglevSeed);
  Napi::Value t = c.Get("timeouts");
  if (t.IsTypedArray()) {
    Napi::Float64Array ta = t.As<Napi::Float64Array>();
    for (size_t i = 0; i < ta.ElementLength() && i < size_t(CtState::Count); ++i) cfg.timeouts.ns[i] = toNs(ta[i]);
  }

  // new DataplaneHandle(config, token): a shard of a threaded Dataplane (sharded.h).
  if (info[1].IsExternal())
    std::tie(dp, fanout) = addon::adoptShard(info[1], cfg);
  else
    dp = std::make_unique<Dataplane>(cfg);
}

namespace {

// The class with its method table (on the prototype, once per environment); each entry calls
// a binding function that finds its instance through `this` (holderOf).
Napi::Function DefineHandle(Napi::Env env) {
  using W = Napi::ObjectWrap<Holder>;
  return W::DefineClass(env, "DataplaneHandle",
                        {
                            W::InstanceMethod<&Holder::call<SetScratch>>("setScratch"),
                            W::InstanceMethod<&Holder::call<DecideScratch>>("decideScratch"),
                            W::InstanceMethod<&Holder::call<SetScratchV4>>("setScratchV4"),
                            W::InstanceMethod<&Holder::call<DecideBatch>>("decideBatch"),
                            W::InstanceMethod<&Holder::call<UpsertBackend>>("upsertBackend"),
                            W::InstanceMethod<&Holder::call<DeleteBackend>>("deleteBackend"),
                            W::InstanceMethod<&Holder::call<UpsertService>>("upsertService"),
                            W::InstanceMethod<&Holder::call<DeleteService>>("deleteService"),
                            W::InstanceMethod<&Holder::call<UpsertBatch>>("upsertBatch"),
                            W::InstanceMethod<&Holder::call<Reserve>>("reserve"),
                            W::InstanceMethod<&Holder::call<DeleteFlowsByBackend>>("deleteFlowsByBackend"),
                            W::InstanceMethod<&Holder::call<DeleteFlowsByService>>("deleteFlowsByService"),
                            W::InstanceMethod<&Holder::call<FlushConntrack>>("flushConntrack"),
                            W::InstanceMethod<&Holder::call<Gc>>("gc"),
                            W::InstanceMethod<&Holder::call<PeekFlowScratch>>("peekFlowScratch"),
                            W::InstanceMethod<&Holder::call<DumpConntrack>>("dumpConntrack"),
                            W::InstanceMethod<&Holder::call<DumpServices>>("dumpServices"),
                            W::InstanceMethod<&Holder::call<DumpBackends>>("dumpBackends"),
                            W::InstanceMethod<&Holder::call<DumpFrontends>>("dumpFrontends"),
                            W::InstanceMethod<&Holder::call<DumpRevnat>>("dumpRevnat"),
                            W::InstanceMethod<&Holder::call<DumpAffinity>>("dumpAffinity"),
                            W::InstanceMethod<&Holder::call<MaglevTable>>("maglevTable"),
                            W::InstanceMethod<&Holder::call<MapInfos>>("mapInfos"),
                            W::InstanceMethod<&Holder::call<Counters>>("counters"),
                            W::InstanceMethod<&Holder::call<SetTimeouts>>("setTimeouts"),
                            W::InstanceMethod<&Holder::call<Destroy>>("destroy"),
                            W::InstanceMethod<&Holder::call<SetPacketCall>>("setPacketCall"),
                            W::InstanceMethod<&Holder::call<ProcessPackets>>("processPackets"),
                            W::InstanceMethod<&Holder::call<SetPacketConfig>>("setPacketConfig"),
                            W::InstanceMethod<&Holder::call<PacketCountersOf>>("packetCounters"),
                            W::InstanceMethod<&Holder::call<PacketMapInfos>>("packetMapInfos"),
                            W::InstanceMethod<&Holder::call<DumpNatPorts>>("dumpNatPorts"),
                        });
}

// create(config): new DataplaneHandle(config), for callers that hold no class reference.
Napi::Value Create(const Napi::CallbackInfo& info) {
  return info.Env().GetInstanceData<Napi::FunctionReference>()->New({info[0]});
}

template <size_t N>
Napi::Array nameArray(Napi::Env env, const char* const (&table)[N]) {
  Napi::Array a = Napi::Array::New(env, N);
  for (size_t i = 0; i < N; ++i) a.Set(uint32_t(i), table[i]);
  return a;
}

// The core's name tables (native/bridge/names.h), for TypeScript to check its unions against.
Napi::Object nameTables(Napi::Env env) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("verdicts", nameArray(env, bridge::kVerdictNames));
  o.Set("reasons", nameArray(env, bridge::kReasonNames));
  o.Set("tupleReasons", Napi::Number::New(env, kReasons));
  o.Set("schedulers", nameArray(env, bridge::kSchedulerNames));
  o.Set("backendStates", nameArray(env, bridge::kBackendStateNames));
  o.Set("masqueradePolicies", nameArray(env, bridge::kMasqueradeNames));
  o.Set("rejectWith", nameArray(env, bridge::kRejectNames));
  o.Set("conntrackStates", nameArray(env, bridge::kConntrackStateNames));
  o.Set("timeouts", nameArray(env, bridge::kTimeoutNames));
  o.Set("packetCounters", nameArray(env, bridge::kPacketCountNames));
  o.Set("statuses", nameArray(env, bridge::kStatusNames));
  return o;
}

Napi::Object capacityObject(Napi::Env env, std::initializer_list<std::pair<const char*, uint32_t>> caps) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [name, value] : caps) o.Set(name, double(value));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  Napi::Function handle = DefineHandle(env);
  // decideV4 sits on the prototype as a plain Node-API function (see DecideV4).
  napi_value decideV4;
  if (napi_create_function(env, "decideV4", NAPI_AUTO_LENGTH, DecideV4, nullptr, &decideV4) != napi_ok) return exports;
  handle.Get("prototype").As<Napi::Object>().Set("decideV4", Napi::Value(env, decideV4));
  env.SetInstanceData(new Napi::FunctionReference(Napi::Persistent(handle)));
  exports.Set("DataplaneHandle", handle);
  exports.Set("create", Napi::Function::New(env, Create, "create"));
  exports.Set("flowStride", double(wire::kFlowStride));
  exports.Set("decisionStride", double(wire::kDecisionStride));
  exports.Set("frontendStride", double(wire::kFrontendStride));
  exports.Set("cidrStride", double(wire::kCidrStride));
  exports.Set("batchBackendStride", double(wire::kBatchBackendStride));
  exports.Set("batchServiceSlots", double(wire::kServiceSlots));
  exports.Set("maxCapacity", double(kMaxCapacity));
  exports.Set("names", nameTables(env));
  static constexpr const char* kPacketParamNames[wire::kPacketParams] = {"count", "direction", "now",
                                                                         "link",  "fromNode",  "reject"};
  exports.Set("packetParams", nameArray(env, kPacketParamNames));
  exports.Set("packetArrays", nameArray(env, kPacketArrayNames));
  exports.Set("defaultCapacity", capacityObject(env, {{"services", DataplaneConfig{}.maxServices},
                                                      {"frontends", DataplaneConfig{}.maxFrontends},
                                                      {"backends", DataplaneConfig{}.maxBackends},
                                                      {"conntrack", DataplaneConfig{}.maxFlows},
                                                      {"affinity", DataplaneConfig{}.maxAffinity},
                                                      {"natPorts", DataplaneConfig{}.maxNatPorts},
                                                      {"fragments", DataplaneConfig{}.maxFragments}}));
  exports.Set("initialCapacity", capacityObject(env, {{"services", kInitialServices},
                                                      {"frontends", kInitialFrontends},
                                                      {"backends", kInitialBackends}}));
  Napi::Object timeouts = Napi::Object::New(env);
  const CtTimeouts t = CtTimeouts::defaults();
  for (size_t i = 1; i < size_t(CtState::Count); ++i) timeouts.Set(bridge::kTimeoutNames[i], double(t.ns[i]) / 1e9);
  exports.Set("defaultTimeouts", timeouts);
  exports.Set("defaultMaglevTableSize", double(SchedulerConfig{}.maglevTableSize));
  addon::registerTun(env, exports);
  addon::registerSharded(env, exports);
  addon::registerHandoff(env, exports, dataplaneOfArg);
  return exports;
}

}  // namespace

NODE_API_MODULE(svcplane, Init)

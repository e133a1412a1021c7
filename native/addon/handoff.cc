// exportFlows(handle, now) -> Uint8Array and importFlows(handle, blob, now) -> { imported,
// dropped, affinityImported, affinityDropped }, or { error } naming what is wrong with a refused
// blob (nothing applied; lib/dataplane/flow-handoff.ts throws it as a RangeError). Times are
// seconds, as every binding call takes them.
#include "handoff.h"

#include <cmath>

#include "core/flow_handoff.h"

namespace svcplane::addon {

namespace {

DataplaneOf gDataplaneOf = nullptr;

bool nowArg(const Napi::CallbackInfo& info, size_t i, uint64_t& out) {
  double s = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
  if (!(s >= 0) || !std::isfinite(s) || s > 1.8e10) {
    Napi::RangeError::New(info.Env(), "now must be a finite number of seconds >= 0").ThrowAsJavaScriptException();
    return false;
  }
  out = uint64_t(std::llround(s * 1e9));
  return true;
}

Napi::Value ExportFlows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Dataplane* dp = gDataplaneOf(info, info[0]);
  uint64_t now;
  if (!dp || !nowArg(info, 1, now)) return env.Undefined();
  std::vector<uint8_t> blob = exportFlows(*dp, now);
  Napi::Uint8Array out = Napi::Uint8Array::New(env, blob.size());
  if (!blob.empty()) std::memcpy(out.Data(), blob.data(), blob.size());
  return out;
}

Napi::Value ImportFlows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Dataplane* dp = gDataplaneOf(info, info[0]);
  uint64_t now;
  if (!dp || !nowArg(info, 2, now)) return env.Undefined();
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, "blob must be a Uint8Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint8Array blob = info[1].As<Napi::Uint8Array>();
  HandoffCounts n;
  Result r = importFlows(*dp, blob.Data(), blob.ByteLength(), now, n);
  Napi::Object o = Napi::Object::New(env);
  if (!r.ok()) {
    o.Set("error", r.message);
    return o;
  }
  o.Set("imported", double(n.imported));
  o.Set("dropped", double(n.dropped));
  o.Set("affinityImported", double(n.affinityImported));
  o.Set("affinityDropped", double(n.affinityDropped));
  return o;
}

}  // namespace

void registerHandoff(Napi::Env env, Napi::Object exports, DataplaneOf dataplaneOf) {
  gDataplaneOf = dataplaneOf;
  exports.Set("exportFlows", Napi::Function::New(env, ExportFlows, "exportFlows"));
  exports.Set("importFlows", Napi::Function::New(env, ImportFlows, "importFlows"));
}

}  // namespace svcplane::addon

// Node binding of the C++ linear rule walker (native/linear), used by the benchmark's
// `cpp-linear` implementation only: its own addon, svcplane_linear.node, built by
// native/linear/binding.gyp for the benchmark and never shipped in the package.
#include <napi.h>

#include <memory>

#include "linear_rules.h"

namespace svcplane {

namespace {

std::span<const uint32_t> words(const Napi::Value& v) {
  if (!v.IsTypedArray()) return {};
  Napi::TypedArray ta = v.As<Napi::TypedArray>();
  if (ta.TypedArrayType() != napi_uint32_array) return {};
  auto* p = reinterpret_cast<const uint32_t*>(static_cast<const uint8_t*>(ta.ArrayBuffer().Data()) + ta.ByteOffset());
  return {p, ta.ElementLength()};
}

// evaluateBatch(packets: Uint32Array (10 words each), n, out: Uint32Array (8 words each))
Napi::Value EvaluateBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto* prog = static_cast<linear::Program*>(info.Data());
  auto in = words(info[0]);
  uint32_t n = info[1].IsNumber() ? info[1].As<Napi::Number>().Uint32Value() : 0;
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    Napi::TypeError::New(env, "out must be a Uint32Array").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  Napi::Uint32Array outArr = info[2].As<Napi::Uint32Array>();
  if (uint64_t(n) * 10 > in.size() || uint64_t(n) * 8 > outArr.ElementLength()) {
    Napi::RangeError::New(env, "count exceeds the buffers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uint32_t* out = outArr.Data();
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t* w = &in[size_t(i) * 10];
    linear::Packet p{{w[0], w[1], w[2], w[3]}, {w[4], w[5], w[6], w[7]}, w[8], w[9]};
    linear::Result r;
    prog->evaluate(p, r);
    uint32_t* o = out + size_t(i) * 8;
    o[0] = r.action;
    o[1] = r.dnat[0];
    o[2] = r.dnat[1];
    o[3] = r.dnat[2];
    o[4] = r.dnat[3];
    o[5] = r.dnatPort;
    o[6] = r.masquerade ? 1 : 0;
    o[7] = r.visited;
  }
  return Napi::Number::New(env, n);
}

// createLinear(rules, chains, localAddrs, prerouting, postrouting, seed) -> { evaluateBatch }
Napi::Value CreateLinear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (int i = 0; i < 3; ++i)
    if (!info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
      Napi::TypeError::New(env, "rules, chains and localAddrs must be Uint32Arrays").ThrowAsJavaScriptException();
      return env.Undefined();
    }
  auto prog = std::make_unique<linear::Program>(
      words(info[0]), words(info[1]), words(info[2]), info[3].As<Napi::Number>().Uint32Value(),
      info[4].As<Napi::Number>().Uint32Value(), uint64_t(info[5].As<Napi::Number>().DoubleValue()));
  if (!prog->valid()) {
    Napi::RangeError::New(env, "linear program is malformed (a chain or jump out of range)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  linear::Program* raw = prog.release();
  Napi::Object o = Napi::Object::New(env);
  o.Set("evaluateBatch", Napi::Function::New(env, EvaluateBatch, "evaluateBatch", raw));
  o.AddFinalizer([](Napi::Env, linear::Program* p) { delete p; }, raw);
  return o;
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createLinear", Napi::Function::New(env, CreateLinear, "createLinear"));
  return exports;
}

}  // namespace svcplane

static Napi::Object InitLinear(Napi::Env env, Napi::Object exports) { return svcplane::Init(env, exports); }

NODE_API_MODULE(svcplane_linear, InitLinear)

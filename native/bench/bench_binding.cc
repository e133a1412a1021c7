// The benchmark-only addon (svcplane_bench.node, built by bench/floor.ts on first use): the
// memory floor measured in C++, in the same process and run as the hot paths it is compared to.
#include <napi.h>

#include <algorithm>
#include <vector>

#include "bench/memory_floor.h"
#include "core/conntrack.h"

namespace {

using svcplane::Conntrack;
using svcplane::bench::MemoryFloor;

// memoryFloor(bytes, reads, runs) -> { bytes, runs: number[] } (ns per read of each run).
Napi::Value MemoryFloorRuns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
    Napi::TypeError::New(env, "memoryFloor(bytes, reads, runs): three numbers").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double bytes = info[0].As<Napi::Number>().DoubleValue(), reads = info[1].As<Napi::Number>().DoubleValue();
  uint32_t runs = info[2].As<Napi::Number>().Uint32Value();
  if (!(bytes >= 64 && bytes <= double(uint64_t(1) << 36)) || !(reads >= 1 && reads <= 1e10) || runs < 1 ||
      runs > 1000) {
    Napi::RangeError::New(env, "memoryFloor: bytes in [64, 64 GiB], reads in [1, 1e10], runs in [1, 1000]")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  MemoryFloor table{size_t(bytes)};
  table.measure(uint64_t(reads) / 4, 99);  // warm: pages and TLB entries in place
  Napi::Array out = Napi::Array::New(env, runs);
  for (uint32_t r = 0; r < runs; ++r) out.Set(r, table.measure(uint64_t(reads), 1234567 + r));
  Napi::Object o = Napi::Object::New(env);
  o.Set("bytes", double(table.bytes()));
  o.Set("runs", out);
  o.Set("sink", double(table.sink() & 1));
  return o;
}

// conntrackBytes(capacity): what a conntrack of that many flows allocates (flows and index).
Napi::Value ConntrackBytes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "conntrackBytes(capacity): a number").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, double(Conntrack::bytesFor(info[0].As<Napi::Number>().Uint32Value())));
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("memoryFloor", Napi::Function::New(env, MemoryFloorRuns));
  exports.Set("conntrackBytes", Napi::Function::New(env, ConntrackBytes));
  return exports;
}

}  // namespace

NODE_API_MODULE(svcplane_bench, Init)

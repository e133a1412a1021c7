// The benchmark-only addon (svcplane_bench.node, built by bench/floor.ts on first use): the
// memory floor measured in C++, in the same process and run as the hot paths it is compared to.
#include <napi.h>

#include <algorithm>
#include <vector>

#include "bench/memory_floor.h"
#include "bench/packet_workload.h"
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

// packetThreads(hit, flows, batch, threads, packets, freshFlows, runs) -> { runs, cpuRuns,
// perThread, perThreadCpu, forwarded }: the packet-path workload on `threads` threads, each on
// its own shard of a ShardedDataplane (packet_workload.h). runs / cpuRuns: the aggregate ns per
// packet of each run, from elapsed and from CPU time; perThread(Cpu): every thread's own figure
// of every run; forwarded: the smallest share of packets forwarded in a run (1 expected).
Napi::Value PacketThreads(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 7 || !info[0].IsBoolean()) {
    Napi::TypeError::New(env, "packetThreads(hit, flows, batch, threads, packets, freshFlows, runs)")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  double v[6];
  for (int i = 0; i < 6; ++i) {
    if (!info[i + 1].IsNumber()) {
      Napi::TypeError::New(env, "packetThreads: flows, batch, threads, packets, freshFlows, runs are numbers")
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    v[i] = info[i + 1].As<Napi::Number>().DoubleValue();
  }
  const double flows = v[0], batch = v[1], threads = v[2], packets = v[3], fresh = v[4], runs = v[5];
  if (!(flows >= 256 && flows <= 4e6) || !(batch >= 1 && batch <= 4096) ||
      !(threads >= 1 && threads <= svcplane::ShardedDataplane::kMaxShards) || !(packets >= 1 && packets <= 1e9) ||
      !(fresh >= batch * threads && fresh <= 4e6) || !(runs >= 1 && runs <= 100)) {
    Napi::RangeError::New(env,
                          "packetThreads: flows in [256, 4e6], batch in [1, 4096], threads in [1, 64], packets in "
                          "[1, 1e9], freshFlows in [batch x threads, 4e6], runs in [1, 100]")
        .ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto results = svcplane::bench::measureThreads(info[0].As<Napi::Boolean>().Value(), uint32_t(flows), uint32_t(batch),
                                                 uint32_t(threads), uint64_t(packets), uint32_t(fresh), int(runs));
  Napi::Array agg = Napi::Array::New(env), cpu = Napi::Array::New(env), per = Napi::Array::New(env),
              perCpu = Napi::Array::New(env);
  double forwarded = 1;
  for (const auto& r : results) {
    agg.Set(agg.Length(), r.aggregateNs);
    cpu.Set(cpu.Length(), r.aggregateCpuNs);
    for (double x : r.perThreadNs) per.Set(per.Length(), x);
    for (double x : r.perThreadCpuNs) perCpu.Set(perCpu.Length(), x);
    forwarded = std::min(forwarded, r.forwardedShare);
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("runs", agg);
  o.Set("cpuRuns", cpu);
  o.Set("perThread", per);
  o.Set("perThreadCpu", perCpu);
  o.Set("forwarded", forwarded);
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("packetThreads", Napi::Function::New(env, PacketThreads));
  exports.Set("memoryFloor", Napi::Function::New(env, MemoryFloorRuns));
  exports.Set("conntrackBytes", Napi::Function::New(env, ConntrackBytes));
  return exports;
}

}  // namespace

NODE_API_MODULE(svcplane_bench, Init)

// Packets per second of Dataplane::processPackets alone (no JS), on the workload of
// bench/packets.ts: 64-byte IPv4/TCP Ethernet frames, 100 services of 2 backends, conntrack
// hits (established flows) and new flows, batches of 64 and 256, 1,000 and 1,000,000 flows.
// Each figure is the median of `runs` runs (min and max beside it) and its ratio to the memory
// floor (memory_floor.h) measured first, in the same process. A measurement, not a test; run
// it under `perf record` to see where the time goes. Then the same workloads on 1 and 2 packet
// threads, each serving one shard of a ShardedDataplane (packet_workload.h): per-thread and
// aggregate figures, batch 256.
//
//   cmake --build native/build/release --target bench_packets && native/build/release/bench_packets [runs] [hit|new] [1000|1000000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/memory_floor.h"
#include "bench/packet_workload.h"
#include "core/dataplane.h"

using namespace svcplane;

namespace {

using namespace svcplane::bench;

std::unique_ptr<Dataplane> makeDataplane(uint32_t flows) {
  auto dp = std::make_unique<Dataplane>(workloadConfig(flows));
  addServices(*dp);
  return dp;
}

// ns per packet of processPackets over `packets` packets in batches of `batch`, cycling
// through `pristine` (restored before each batch, outside the timed part).
double measure(Dataplane& dp, const std::vector<uint8_t>& pristine, uint32_t count, uint32_t batch, uint64_t packets,
               uint64_t& clock) {
  std::vector<uint8_t> work(size_t(batch) * kFrame);
  std::vector<PacketRef> refs(batch);
  for (uint32_t i = 0; i < batch; ++i) refs[i] = PacketRef{work.data() + size_t(i) * kFrame, kFrame};
  std::vector<uint8_t> verdicts(batch), reasons(batch);
  PacketOptions opt;
  uint64_t batches = (packets + batch - 1) / batch, perPass = count / batch;
  double ns = 0;
  for (uint64_t b = 0; b < batches; ++b) {
    std::memcpy(work.data(), pristine.data() + size_t(b % perPass) * batch * kFrame, size_t(batch) * kFrame);
    clock += 1000;
    double t0 = nowNs();
    dp.processPackets(refs.data(), batch, opt, clock, verdicts.data(), reasons.data());
    ns += nowNs() - t0;
  }
  if (verdicts[0] != uint8_t(Verdict::Forward))
    std::fprintf(stderr, "unexpected verdict %u reason %u\n", verdicts[0], reasons[0]);
  return ns / double(batches * batch);
}

void fill(Dataplane& dp, std::vector<uint8_t> buf, uint32_t count, uint64_t now) {
  std::vector<PacketRef> refs(count);
  for (uint32_t i = 0; i < count; ++i) refs[i] = PacketRef{buf.data() + size_t(i) * kFrame, kFrame};
  std::vector<uint8_t> v(count), r(count);
  dp.processPackets(refs.data(), count, PacketOptions{}, now, v.data(), r.data());
}

struct Summary {
  double median, min, max;
};

Summary summarize(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return {v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2, v.front(), v.back()};
}

void print(const char* what, uint32_t flows, uint32_t batch, const std::vector<double>& ns, double floor) {
  Summary s = summarize(ns);
  std::printf("%-13s %7u  %5u   %8.1f (%6.1f-%6.1f)  %9.2f  %6.2f\n", what, flows, batch, s.median, s.min, s.max,
              1e3 / s.median, s.median / floor);
}

}  // namespace

int main(int argc, char** argv) {
  int runs = argc > 1 ? std::atoi(argv[1]) : 5;
  if (runs < 1) runs = 1;
  std::string only = argc > 2 ? argv[2] : "";                        // hit | new | (both)
  uint32_t onlyFlows = argc > 3 ? uint32_t(std::atoi(argv[3])) : 0;  // 1000 | 1000000 | (both)
  std::vector<double> floorRuns;
  {
    svcplane::bench::MemoryFloor table(Conntrack::bytesFor(1000000));
    table.measure(5000000, 99);
    for (int r = 0; r < runs; ++r) floorRuns.push_back(table.measure(20000000, 1234567 + r));
  }
  const double floor = summarize(floorRuns).median;
  std::printf("workload        flows  batch   median ns/pkt (min-max)      Mpps  x floor\n");
  print("floor", 1000000, 0, floorRuns, floor);
  for (uint32_t flows : {1000u, 1000000u}) {
    if (onlyFlows && flows != onlyFlows) continue;
    if (only != "new") {
      auto dp = makeDataplane(flows);
      auto pristine = frames(flows, 0);
      uint64_t clock = 1000000000ull;
      fill(*dp, pristine, flows, clock);
      for (uint32_t batch : {64u, 256u}) {
        std::vector<double> ns;
        for (int r = 0; r < runs; ++r) ns.push_back(measure(*dp, pristine, flows, batch, 2000000, clock));
        print("conntrack-hit", flows, batch, ns, floor);
      }
    }
    if (only != "hit") {
      for (uint32_t batch : {64u, 256u}) {
        std::vector<double> ns;
        for (int r = 0; r < runs; ++r) {
          auto dp = makeDataplane(flows);
          fill(*dp, frames(flows, 0), flows, 1000000000ull);
          uint32_t fresh = 500000;
          auto newFrames = frames(fresh, 5000000);
          uint64_t clock = 2000000000ull;
          ns.push_back(measure(*dp, newFrames, fresh, batch, fresh, clock));
        }
        print("new-flow", flows, batch, ns, floor);
      }
    }
  }
  {
    // Steering (ShardedDataplane::shardOfPacket: parse, frontend lookup, hash) per packet, on one
    // thread: the work of a software dispatcher, or of each thread handing packets off.
    ShardedDataplane dp(workloadConfig(1024), 2);
    addServices(dp);
    auto buf = frames(1000000, 0);
    std::vector<PacketRef> refs;
    for (size_t off = 0; off < buf.size(); off += kFrame) refs.push_back(PacketRef{buf.data() + off, kFrame});
    std::vector<uint32_t> out(256);
    std::vector<double> one, batched;
    uint64_t sink = 0;
    for (int r = 0; r < runs; ++r) {
      double t0 = threadCpuNs();
      for (const PacketRef& p : refs) sink += dp.shardOfPacket(p.data, p.len, {});
      double t1 = threadCpuNs();
      for (size_t i = 0; i + 256 <= refs.size(); i += 256) {
        dp.shardsOfPackets(refs.data() + i, 256, {}, out.data());
        sink += out[0];
      }
      double t2 = threadCpuNs();
      one.push_back((t1 - t0) / double(refs.size()));
      batched.push_back((t2 - t1) / double(refs.size() / 256 * 256));
    }
    Summary s = summarize(one), b = summarize(batched);
    std::printf(
        "\nsteering, 2 shards, CPU ns/pkt: one by one %.1f (%.1f-%.1f), batches of 256 %.1f (%.1f-%.1f)  [%llu]\n",
        s.median, s.min, s.max, b.median, b.min, b.max, (unsigned long long)(sink & 1));
  }
  std::printf(
      "\nthreads  workload        flows   aggregate ns/pkt (min-max)   Mpps  scaling   per thread: ns/pkt  cpu "
      "ns/pkt\n");
  for (uint32_t flows : {1000u, 1000000u}) {
    if (onlyFlows && flows != onlyFlows) continue;
    for (bool hit : {true, false}) {
      if ((hit && only == "new") || (!hit && only == "hit")) continue;
      double one = 0;
      for (uint32_t threads : {1u, 2u}) {
        std::vector<double> agg, per, cpu;
        for (const ThreadsRun& t : measureThreads(hit, flows, 256, threads, 2000000, 500000, runs)) {
          agg.push_back(t.aggregateNs);
          for (double v : t.perThreadNs) per.push_back(v);
          for (double v : t.perThreadCpuNs) cpu.push_back(v);
          if (t.forwardedShare < 0.999) std::fprintf(stderr, "only %.3f forwarded\n", t.forwardedShare);
        }
        Summary s = summarize(agg), p = summarize(per), c = summarize(cpu);
        if (threads == 1) one = s.median;
        std::printf("%7u  %-13s %7u   %8.1f (%6.1f-%6.1f)  %6.2f  %5.2fx   %18.1f  %10.1f\n", threads,
                    hit ? "conntrack-hit" : "new-flow", flows, s.median, s.min, s.max, 1e3 / s.median, one / s.median,
                    p.median, c.median);
      }
    }
  }
  return 0;
}

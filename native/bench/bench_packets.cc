// Packets per second of Dataplane::processPackets alone (no JS), on the workload of
// bench/packets.ts: 64-byte IPv4/TCP Ethernet frames, 100 services of 2 backends, conntrack
// hits (established flows) and new flows, batches of 64 and 256, 1,000 and 1,000,000 flows.
// Each figure is the median of `runs` runs (min and max beside it) and its ratio to the memory
// floor (memory_floor.h) measured first, in the same process. A measurement, not a test; run
// it under `perf record` to see where the time goes.
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
#include "core/dataplane.h"

using namespace svcplane;

namespace {

constexpr uint32_t kFrame = 64, kServices = 100;

void ipChecksum(uint8_t* p) {
  uint32_t s = 0;
  for (int i = 0; i < 20; i += 2)
    if (i != 10) s += uint32_t(p[i] << 8 | p[i + 1]);
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  uint16_t c = uint16_t(~s);
  p[10] = uint8_t(c >> 8);
  p[11] = uint8_t(c);
}

void writeFrame(uint8_t* p, uint32_t k) {
  std::memset(p, 0, kFrame);
  const uint8_t eth[14] = {2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00};
  std::memcpy(p, eth, 14);
  uint8_t* ip = p + 14;
  ip[0] = 0x45;
  ip[3] = kFrame - 14;
  ip[8] = 64;
  ip[9] = 6;
  uint32_t client = 0x0b000000 + k / 50000;
  ip[12] = uint8_t(client >> 24);
  ip[13] = uint8_t(client >> 16);
  ip[14] = uint8_t(client >> 8);
  ip[15] = uint8_t(client);
  uint32_t svc = k % kServices;
  ip[16] = 172;
  ip[17] = 30;
  ip[18] = uint8_t(svc >> 8);
  ip[19] = uint8_t(svc);
  ipChecksum(ip);
  uint8_t* tcp = ip + 20;
  uint32_t sport = 10000 + k % 50000;
  tcp[0] = uint8_t(sport >> 8);
  tcp[1] = uint8_t(sport);
  tcp[3] = 80;
  tcp[12] = 0x50;
  tcp[13] = 0x10;  // ACK: picked up mid-stream as established
}

std::unique_ptr<Dataplane> makeDataplane(uint32_t flows) {
  DataplaneConfig c;
  c.maxServices = kServices;
  c.maxFrontends = kServices;
  c.maxBackends = kServices * 2;
  c.maxFlows = flows;
  c.maxAffinity = 16;
  c.maxNatPorts = 16;
  c.maxFragments = 16;
  c.seed = 1;
  auto dp = std::make_unique<Dataplane>(c);
  for (uint32_t s = 0; s < kServices; ++s) {
    for (uint32_t b = 0; b < 2; ++b) {
      BackendSpec be{};
      be.id = 2 * s + 1 + b;
      be.addr = IpAddr::v4((10u << 24) | (180u << 16) | ((s >> 8) << 8) | ((2 * s + b) & 255));
      be.port = 8080;
      be.state = BackendState::Active;
      be.weight = 1;
      dp->upsertBackend(be);
    }
    ServiceSpec sv{};
    sv.id = s + 1;
    sv.kind = SchedulerKind::Random;
    sv.emptyVerdict = Verdict::Reject;
    FrontendSpec fe{};
    fe.key = FrontendKey{IpAddr::v4((172u << 24) | (30u << 16) | ((s >> 8) << 8) | (s & 255)), 80, 6, 1};
    sv.frontends.push_back(fe);
    sv.backendIds = {2 * s + 1, 2 * s + 2};
    dp->upsertService(sv);
  }
  return dp;
}

std::vector<uint8_t> frames(uint32_t count, uint32_t first) {
  std::vector<uint8_t> buf(size_t(count) * kFrame);
  for (uint32_t k = 0; k < count; ++k) writeFrame(buf.data() + size_t(k) * kFrame, first + k);
  return buf;
}

double nowNs() {
  return double(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
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
  return 0;
}

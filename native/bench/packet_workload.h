// The packet-path workload of bench/packets.ts, in C++: 64-byte IPv4/TCP Ethernet frames to
// 100 services of 2 backends, and the measurement of processPackets on N threads, each serving
// its own shard of a ShardedDataplane (bench_packets and the benchmark addon share it).
#pragma once
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <memory>
#include <thread>
#include <vector>

#include "core/sharded_dataplane.h"

namespace svcplane::bench {

constexpr uint32_t kFrame = 64, kServices = 100;

inline void ipChecksum(uint8_t* p) {
  uint32_t s = 0;
  for (int i = 0; i < 20; i += 2)
    if (i != 10) s += uint32_t(p[i] << 8 | p[i + 1]);
  while (s > 0xffff) s = (s & 0xffff) + (s >> 16);
  uint16_t c = uint16_t(~s);
  p[10] = uint8_t(c >> 8);
  p[11] = uint8_t(c);
}

// Frame k: client 11.0.0.(k / 50000), port 10000 + k % 50000, to service k % 100, ACK only.
inline void writeFrame(uint8_t* p, uint32_t k) {
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

inline DataplaneConfig workloadConfig(uint32_t flows) {
  DataplaneConfig c;
  c.maxServices = kServices;
  c.maxFrontends = kServices;
  c.maxBackends = kServices * 2;
  c.maxFlows = flows;
  c.maxAffinity = 16;
  c.maxNatPorts = 16;
  c.maxFragments = 16;
  c.seed = 1;
  return c;
}

// The 100 services (random scheduler) and their 200 backends; DP is a Dataplane or a
// ShardedDataplane.
template <class DP>
void addServices(DP& dp) {
  for (uint32_t s = 0; s < kServices; ++s) {
    for (uint32_t b = 0; b < 2; ++b) {
      BackendSpec be{};
      be.id = 2 * s + 1 + b;
      be.addr = IpAddr::v4((10u << 24) | (180u << 16) | ((s >> 8) << 8) | ((2 * s + b) & 255));
      be.port = 8080;
      be.state = BackendState::Active;
      be.weight = 1;
      dp.upsertBackend(be);
    }
    ServiceSpec sv{};
    sv.id = s + 1;
    sv.kind = SchedulerKind::Random;
    sv.emptyVerdict = Verdict::Reject;
    FrontendSpec fe{};
    fe.key = FrontendKey{IpAddr::v4((172u << 24) | (30u << 16) | ((s >> 8) << 8) | (s & 255)), 80, 6, 1};
    sv.frontends.push_back(fe);
    sv.backendIds = {2 * s + 1, 2 * s + 2};
    dp.upsertService(sv);
  }
}

inline std::vector<uint8_t> frames(uint32_t count, uint32_t first) {
  std::vector<uint8_t> buf(size_t(count) * kFrame);
  for (uint32_t k = 0; k < count; ++k) writeFrame(buf.data() + size_t(k) * kFrame, first + k);
  return buf;
}

// CPU time of the calling thread: what a thread spent, whether or not the (shared) machine let
// it run the whole time.
inline double threadCpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) * 1e9 + double(ts.tv_nsec);
}

inline double nowNs() {
  return double(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// Splits frames by the shard the dataplane steers them to (what a NIC's RSS would do before
// the packets reach a core; not part of any measurement).
inline std::vector<std::vector<uint8_t>> steer(ShardedDataplane& dp, const std::vector<uint8_t>& buf) {
  std::vector<std::vector<uint8_t>> out(dp.shards());
  PacketOptions opt;
  for (size_t off = 0; off + kFrame <= buf.size(); off += kFrame) {
    uint32_t s = dp.shardOfPacket(buf.data() + off, kFrame, opt);
    out[s].insert(out[s].end(), buf.begin() + long(off), buf.begin() + long(off + kFrame));
  }
  return out;
}

inline void fillShard(ShardedDataplane& dp, uint32_t shard, std::vector<uint8_t> buf, uint64_t now) {
  uint32_t count = uint32_t(buf.size() / kFrame);
  std::vector<PacketRef> refs(count);
  for (uint32_t i = 0; i < count; ++i) refs[i] = PacketRef{buf.data() + size_t(i) * kFrame, kFrame};
  std::vector<uint8_t> v(count), r(count);
  dp.processPackets(shard, refs.data(), count, PacketOptions{}, now, v.data(), r.data());
}

struct ShardTime {
  double wallNs, cpuNs;  // per packet
};

// One thread's run: ns per packet of processPackets on its shard over `packets` packets in
// batches of `batch`, cycling through `pristine` (restored before each batch, untimed), as
// elapsed time and as the thread's CPU time. `forwarded` counts the packets forwarded, as a
// check of the workload.
inline ShardTime runShard(ShardedDataplane& dp, uint32_t shard, const std::vector<uint8_t>& pristine, uint32_t batch,
                          uint64_t packets, uint64_t clock, uint64_t& forwarded) {
  const uint32_t count = uint32_t(pristine.size() / kFrame);
  const uint64_t perPass = count / batch ? count / batch : 1;
  std::vector<uint8_t> work(size_t(batch) * kFrame);
  std::vector<PacketRef> refs(batch);
  for (uint32_t i = 0; i < batch; ++i) refs[i] = PacketRef{work.data() + size_t(i) * kFrame, kFrame};
  std::vector<uint8_t> verdicts(batch), reasons(batch);
  PacketOptions opt;
  const uint64_t batches = (packets + batch - 1) / batch;
  double wall = 0, cpu = 0;
  for (uint64_t b = 0; b < batches; ++b) {
    std::memcpy(work.data(), pristine.data() + size_t(b % perPass) * batch * kFrame, size_t(batch) * kFrame);
    clock += 1000;
    double c0 = threadCpuNs(), t0 = nowNs();
    dp.processPackets(shard, refs.data(), batch, opt, clock, verdicts.data(), reasons.data());
    double t1 = nowNs(), c1 = threadCpuNs();
    wall += t1 - t0;
    cpu += c1 - c0;
    for (uint8_t v : verdicts) forwarded += v == uint8_t(Verdict::Forward);
  }
  const double n = double(batches * batch);
  return {wall / n, cpu / n};
}

struct ThreadsRun {
  double aggregateNs;     // ns per packet of all threads together (elapsed): 1 / sum of rates
  double aggregateCpuNs;  // the same from each thread's CPU time
  std::vector<double> perThreadNs, perThreadCpuNs;
  double forwardedShare;  // forwarded / offered packets (1 for these workloads)
};

// One run on `threads` threads, each serving its own shard of dp and offered its own frames;
// the threads start together.
inline ThreadsRun runThreads(ShardedDataplane& dp, const std::vector<std::vector<uint8_t>>& offered, bool hit,
                             uint32_t batch, uint64_t packets, uint64_t clock) {
  const uint32_t threads = dp.shards();
  std::vector<ShardTime> ns(threads);
  std::vector<uint64_t> forwarded(threads, 0), sent(threads, 0);
  std::atomic<uint32_t> ready{0};
  std::vector<std::thread> pool;
  for (uint32_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      ++ready;
      while (ready.load() < threads) std::this_thread::yield();
      // A fresh flow is offered once: `new` runs over each shard's fresh frames once.
      sent[t] = hit ? (packets + batch - 1) / batch * batch : offered[t].size() / kFrame / batch * batch;
      ns[t] = runShard(dp, t, offered[t], batch, sent[t], clock, forwarded[t]);
    });
  for (auto& th : pool) th.join();
  ThreadsRun r{};
  double rate = 0, cpuRate = 0, total = 0, fwd = 0;
  for (uint32_t t = 0; t < threads; ++t) {
    r.perThreadNs.push_back(ns[t].wallNs);
    r.perThreadCpuNs.push_back(ns[t].cpuNs);
    rate += 1 / ns[t].wallNs;
    cpuRate += 1 / ns[t].cpuNs;
    total += double(sent[t]);
    fwd += double(forwarded[t]);
  }
  r.aggregateNs = 1 / rate;
  r.aggregateCpuNs = 1 / cpuRate;
  r.forwardedShare = fwd / total;
  return r;
}

// `runs` runs of the `hit` workload (established flows cycled in order, conntrack holding
// `flows`; `packets` per thread) or the `new` one (`freshFlows` fresh tuples, split among the
// threads, into a conntrack full of `flows`: each evicts the oldest), on `threads` threads.
inline std::vector<ThreadsRun> measureThreads(bool hit, uint32_t flows, uint32_t batch, uint32_t threads,
                                              uint64_t packets, uint32_t freshFlows, int runs) {
  std::vector<ThreadsRun> out;
  std::unique_ptr<ShardedDataplane> dp;
  std::vector<std::vector<uint8_t>> offered;
  for (int r = 0; r < runs; ++r) {
    if (!dp || !hit) {
      // Room for the steering's imbalance between shards, the same for every thread count.
      dp = std::make_unique<ShardedDataplane>(workloadConfig(flows + flows / 16), threads);
      addServices(*dp);
      auto filled = steer(*dp, frames(flows, 0));
      for (uint32_t t = 0; t < threads; ++t) fillShard(*dp, t, filled[t], 1000000000ull);
      offered = hit ? std::move(filled) : steer(*dp, frames(freshFlows, 5000000));
    }
    out.push_back(runThreads(*dp, offered, hit, batch, packets, 2000000000ull * uint64_t(r + 1)));
  }
  return out;
}

}  // namespace svcplane::bench

// A small persistent pool of packet threads for one batch call that fans out over the shards
// of a ShardedDataplane: run(n, job) calls job(0) on the calling thread and job(1..n-1) on
// workers started once (n - 1 of them, one per shard beyond the first), and returns when
// every job has returned. No thread is created per call; a call costs one wakeup of each
// worker it uses (a futex wake after a short spin, since a worker that just finished the
// previous batch is often still spinning) and one wait for the slowest.
//
// One run() at a time (the caller serialises them); jobs must not throw.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace svcplane {

class PacketPool {
 public:
  // `threads` in total, the caller's included: threads - 1 workers.
  explicit PacketPool(uint32_t threads);
  ~PacketPool();
  PacketPool(const PacketPool&) = delete;
  PacketPool& operator=(const PacketPool&) = delete;

  uint32_t threads() const { return uint32_t(workers_.size()) + 1; }

  // job(i) for i in [0, n), n <= threads(): i = 0 on this thread, the rest on workers 1..n-1.
  void run(uint32_t n, const std::function<void(uint32_t)>& job);

 private:
  void serve(uint32_t index);

  std::vector<std::thread> workers_;
  // A new batch: batch_ = sequence * kActiveSpan + jobs, one word so that a worker reads the
  // sequence and the number of jobs together; workers with index < jobs take part.
  static constexpr uint64_t kActiveSpan = 256;
  std::atomic<uint64_t> batch_{0};
  std::atomic<uint32_t> pending_{0};  // jobs of this batch not yet finished by workers
  std::atomic<bool> stop_{false};
  const std::function<void(uint32_t)>* job_ = nullptr;  // published by batch_ (release)
};

}  // namespace svcplane

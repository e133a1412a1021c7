// A small persistent pool of packet threads for one batch call that fans out over the shards
// of a ShardedDataplane: run(n, job) runs job(0..n-1) on the calling thread and on workers
// started once (threads - 1 of them), and returns when every job has returned. No thread is
// created per call. Jobs are claimed, not assigned: the calling thread starts on job 0 and
// takes whatever jobs no worker has claimed when it is done, so a worker that is slow to wake
// (a machine busy with other work, a worker descheduled) costs at most the time the caller
// would have taken alone, never a wait for that worker. A call costs one wakeup of the workers
// (a futex wake unless they are still spinning from the previous batch).
//
// One run() at a time (the caller serialises them); jobs must not throw; any thread may run
// any job (a shard's job takes that shard's mutex).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace svcplane {

class PacketPool {
 public:
  static constexpr uint32_t kMaxJobs = 255;

  // `threads` in total, the caller's included: threads - 1 workers.
  explicit PacketPool(uint32_t threads);
  ~PacketPool();
  PacketPool(const PacketPool&) = delete;
  PacketPool& operator=(const PacketPool&) = delete;

  uint32_t threads() const { return uint32_t(workers_.size()) + 1; }

  // job(i) for every i in [0, n), n <= kMaxJobs, each exactly once, on any of the threads.
  void run(uint32_t n, const std::function<void(uint32_t)>& job);

 private:
  void serve();
  // Claims the next job of run `seq` (false when none is left or a newer run began) and runs it.
  bool claimAndRun(uint64_t seq);

  // claim_ = seq << 16 | jobs << 8 | next job: one word, so that a claim (a CAS on it) names
  // its run and its job together and a late worker can never take a job of a finished run.
  static uint64_t seqOf(uint64_t w) { return w >> 16; }
  static uint32_t jobsOf(uint64_t w) { return uint32_t(w >> 8) & 0xff; }
  static uint32_t nextOf(uint64_t w) { return uint32_t(w) & 0xff; }

  std::vector<std::thread> workers_;
  std::atomic<uint64_t> claim_{0};
  std::atomic<uint32_t> done_{0};  // jobs of the current run finished
  std::atomic<bool> stop_{false};
  const std::function<void(uint32_t)>* job_ = nullptr;  // published by claim_ (release)
};

}  // namespace svcplane

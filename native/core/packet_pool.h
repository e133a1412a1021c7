// A small persistent pool of packet threads for one batch call that fans out over the shards
// of a ShardedDataplane: run(n, job) runs job(0..n-1) on the calling thread and on workers
// started once (threads - 1 of them), and returns when every job has returned. No thread is
// created per call.
//
// Jobs have owners, so that a shard stays on one core from batch to batch: job 0 is the
// caller's, job j >= 1 worker (j - 1) % workers'. A shard's conntrack lines then stay in its
// thread's cache; when whoever was quickest took a job, the shards moved between the cores
// every few batches and a conntrack hit paid for fetching its flow's line from the other core.
// Owners are preferred, not waited for: when its own jobs are done, a thread claims any job
// still unclaimed (the caller too), so a worker slow to wake (a machine busy with other work,
// a worker descheduled) costs at most the time the caller would have taken alone. A call costs
// one wakeup of the workers (a futex wake unless they are still spinning from the last run).
//
// One run() at a time (the caller serialises them); jobs must not throw; any thread may run
// any job (a shard's job takes that shard's mutex).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
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

  uint32_t threads() const { return workerCount_ + 1; }

  // job(i) for every i in [0, n), n <= kMaxJobs, each exactly once, on any of the threads.
  void run(uint32_t n, const std::function<void(uint32_t)>& job);

 private:
  void serve(uint32_t worker);
  // Claims job j of run `seq` of `jobs` jobs (false when it was taken, or a newer run began)
  // and runs it.
  bool claimAndRun(uint32_t j, uint64_t seq, uint32_t jobs);

  // run_ = seq << 8 | jobs: what a worker wakes on. slot_[j] = seq << 1 | taken: a claim is a
  // CAS from (seq, free) to (seq, taken), so it names its run and a late worker can never take
  // a job of a newer run.
  static uint64_t seqOf(uint64_t w) { return w >> 8; }
  static uint32_t jobsOf(uint64_t w) { return uint32_t(w) & 0xff; }

  const uint32_t workerCount_;
  std::vector<std::thread> workers_;
  std::unique_ptr<std::atomic<uint64_t>[]> slot_;
  std::atomic<uint64_t> run_{0};
  std::atomic<uint32_t> done_{0};  // jobs 1.. of the current run finished
  std::atomic<bool> stop_{false};
  const std::function<void(uint32_t)>* job_ = nullptr;  // published by run_ and slot_ (release)
};

}  // namespace svcplane

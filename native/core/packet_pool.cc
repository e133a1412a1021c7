#include "packet_pool.h"

namespace svcplane {

namespace {

// Spins before sleeping: a wakeup through the kernel costs microseconds, a batch of 256
// packets about ten; a worker that finished the last batch a moment ago picks the next one up
// without a syscall. Kept short: on a machine with other work, spinning takes its CPU.
constexpr int kSpins = 1000;

inline void relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

}  // namespace

PacketPool::PacketPool(uint32_t threads)
    : workerCount_(threads > 1 ? threads - 1 : 0), slot_(new std::atomic<uint64_t>[kMaxJobs]) {
  for (uint32_t j = 0; j < kMaxJobs; ++j) slot_[j].store(1, std::memory_order_relaxed);  // run 0, taken
  workers_.reserve(workerCount_);
  for (uint32_t i = 0; i < workerCount_; ++i) workers_.emplace_back([this, i] { serve(i); });
}

PacketPool::~PacketPool() {
  stop_.store(true, std::memory_order_release);
  // A new run of no jobs: every worker wakes, sees stop_ and leaves.
  run_.store((seqOf(run_.load(std::memory_order_relaxed)) + 1) << 8, std::memory_order_release);
  run_.notify_all();
  for (auto& t : workers_) t.join();
}

bool PacketPool::claimAndRun(uint32_t j, uint64_t seq, uint32_t jobs) {
  uint64_t free = seq << 1;
  if (!slot_[j].compare_exchange_strong(free, free | 1, std::memory_order_acq_rel, std::memory_order_relaxed))
    return false;
  (*job_)(j);
  if (done_.fetch_add(1, std::memory_order_acq_rel) + 2 == jobs) done_.notify_one();
  return true;
}

void PacketPool::run(uint32_t n, const std::function<void(uint32_t)>& job) {
  if (n > kMaxJobs) n = kMaxJobs;
  if (n == 0) return;
  if (n == 1 || workers_.empty()) {
    for (uint32_t i = 0; i < n; ++i) job(i);
    return;
  }
  job_ = &job;
  done_.store(0, std::memory_order_relaxed);
  const uint64_t seq = seqOf(run_.load(std::memory_order_relaxed)) + 1;
  for (uint32_t j = 1; j < n; ++j) slot_[j].store(seq << 1, std::memory_order_release);
  run_.store(seq << 8 | n, std::memory_order_release);
  run_.notify_all();
  job(0);
  // Then whatever no worker has claimed yet.
  for (uint32_t j = 1; j < n; ++j) claimAndRun(j, seq, n);
  for (int i = 0; i < kSpins && done_.load(std::memory_order_acquire) != n - 1; ++i) relax();
  for (uint32_t d; (d = done_.load(std::memory_order_acquire)) != n - 1;) done_.wait(d, std::memory_order_acquire);
  job_ = nullptr;
}

void PacketPool::serve(uint32_t worker) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t w = run_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpins && seqOf(w) == seen; ++i) {
      relax();
      w = run_.load(std::memory_order_acquire);
    }
    while (seqOf(w) == seen) {
      run_.wait(w, std::memory_order_acquire);
      w = run_.load(std::memory_order_acquire);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = seqOf(w);
    const uint32_t n = jobsOf(w);
    // Its own jobs first, then any left.
    for (uint32_t j = 1 + worker; j < n; j += workerCount_) claimAndRun(j, seen, n);
    for (uint32_t j = 1; j < n; ++j) claimAndRun(j, seen, n);
  }
}

}  // namespace svcplane

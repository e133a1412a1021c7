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

PacketPool::PacketPool(uint32_t threads) {
  const uint32_t workers = threads > 1 ? threads - 1 : 0;
  workers_.reserve(workers);
  for (uint32_t i = 0; i < workers; ++i) workers_.emplace_back([this] { serve(); });
}

PacketPool::~PacketPool() {
  stop_.store(true, std::memory_order_release);
  // A new run of no jobs: every worker wakes, sees stop_ and leaves.
  claim_.store((seqOf(claim_.load(std::memory_order_relaxed)) + 1) << 16, std::memory_order_release);
  claim_.notify_all();
  for (auto& t : workers_) t.join();
}

bool PacketPool::claimAndRun(uint64_t seq) {
  uint64_t w = claim_.load(std::memory_order_acquire);
  do {
    if (seqOf(w) != seq || nextOf(w) >= jobsOf(w)) return false;
  } while (!claim_.compare_exchange_weak(w, w + 1, std::memory_order_acq_rel, std::memory_order_acquire));
  const uint32_t jobs = jobsOf(w);
  (*job_)(nextOf(w));
  if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == jobs) done_.notify_one();
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
  const uint64_t seq = seqOf(claim_.load(std::memory_order_relaxed)) + 1;
  claim_.store(seq << 16 | uint64_t(n) << 8, std::memory_order_release);
  claim_.notify_all();
  while (claimAndRun(seq)) {}
  for (int i = 0; i < kSpins && done_.load(std::memory_order_acquire) != n; ++i) relax();
  for (uint32_t d; (d = done_.load(std::memory_order_acquire)) != n;) done_.wait(d, std::memory_order_acquire);
  job_ = nullptr;
}

void PacketPool::serve() {
  uint64_t seen = 0;
  for (;;) {
    uint64_t w = claim_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpins && seqOf(w) == seen; ++i) {
      relax();
      w = claim_.load(std::memory_order_acquire);
    }
    while (seqOf(w) == seen) {
      claim_.wait(w, std::memory_order_acquire);
      w = claim_.load(std::memory_order_acquire);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = seqOf(w);
    while (claimAndRun(seen)) {}
  }
}

}  // namespace svcplane

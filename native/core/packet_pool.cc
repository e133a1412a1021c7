#include "packet_pool.h"

namespace svcplane {

namespace {

// Spins before sleeping: a wakeup through the kernel costs microseconds, a batch of 256
// packets about ten; a worker that finished the last batch a moment ago picks the next one
// up without a syscall.
constexpr int kSpins = 4000;

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
  for (uint32_t i = 0; i < workers; ++i) workers_.emplace_back([this, i] { serve(i + 1); });
}

PacketPool::~PacketPool() {
  stop_.store(true, std::memory_order_release);
  batch_.fetch_add(kActiveSpan, std::memory_order_release);
  batch_.notify_all();
  for (auto& t : workers_) t.join();
}

void PacketPool::run(uint32_t n, const std::function<void(uint32_t)>& job) {
  if (n > threads()) n = threads();
  if (n == 0) return;
  if (n > 1) {
    job_ = &job;
    pending_.store(n - 1, std::memory_order_relaxed);
    const uint64_t seq = batch_.load(std::memory_order_relaxed) / kActiveSpan + 1;
    batch_.store(seq * kActiveSpan + n, std::memory_order_release);
    batch_.notify_all();
  }
  job(0);
  if (n == 1) return;
  for (int i = 0; i < kSpins && pending_.load(std::memory_order_acquire) != 0; ++i) relax();
  for (uint32_t left; (left = pending_.load(std::memory_order_acquire)) != 0;) pending_.wait(left);
  job_ = nullptr;
}

void PacketPool::serve(uint32_t index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t b = batch_.load(std::memory_order_acquire);
    for (int i = 0; i < kSpins && b == seen; ++i) {
      relax();
      b = batch_.load(std::memory_order_acquire);
    }
    while (b == seen) {
      batch_.wait(seen, std::memory_order_acquire);
      b = batch_.load(std::memory_order_acquire);
    }
    seen = b;
    if (stop_.load(std::memory_order_acquire)) return;
    if (index >= b % kActiveSpan) continue;
    (*job_)(index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace svcplane

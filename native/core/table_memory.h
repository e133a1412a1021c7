// Memory for the big fixed tables. A conntrack of a million flows is hundreds of MiB, and
// every lookup lands on a random page: with 4 KiB pages nearly each one is a TLB miss (a page
// walk, costlier still under virtualisation). Backing tables with transparent huge pages
// (2 MiB) removes most of those. Allocated and constructed once; never grows.
#pragma once
#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <type_traits>
#include <utility>

namespace svcplane {

// Lazy: a table of plain data whose zeroed pages stay unmapped until first written (only for
// tables big enough to be mmap'd; smaller ones are built as usual).
struct LazyPages {};

template <class T>
class TableArray {
 public:
  TableArray() = default;
  TableArray(size_t n, LazyPages) : TableArray(n, true) {}
  explicit TableArray(size_t n) : TableArray(n, false) {}

 private:
  TableArray(size_t n, bool lazy) : n_(n ? n : 1) {
    size_t bytes = n_ * sizeof(T);
    constexpr size_t kHuge = size_t(2) << 20;
    if (bytes >= kHuge) {
      mapped_ = (bytes + kHuge - 1) / kHuge * kHuge;
      void* p = mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        mapped_ = 0;
      } else {
#ifdef MADV_HUGEPAGE
        madvise(p, mapped_, MADV_HUGEPAGE);
#endif
        data_ = static_cast<T*>(p);
      }
    }
    if (!data_) data_ = static_cast<T*>(::operator new(bytes, std::align_val_t(alignof(T) > 64 ? alignof(T) : 64)));
    // Anonymous pages read as zero: a lazy table of trivially constructible T needs no pass.
    if (!(lazy && mapped_ && std::is_trivially_default_constructible_v<T>))
      for (size_t i = 0; i < n_; ++i) new (&data_[i]) T();
  }

 public:
  ~TableArray() { release(); }
  TableArray(const TableArray&) = delete;
  TableArray& operator=(const TableArray&) = delete;
  TableArray(TableArray&& o) noexcept { *this = std::move(o); }
  TableArray& operator=(TableArray&& o) noexcept {
    if (this != &o) {
      release();
      data_ = std::exchange(o.data_, nullptr);
      n_ = std::exchange(o.n_, 0);
      mapped_ = std::exchange(o.mapped_, 0);
    }
    return *this;
  }

  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T* get() const { return data_; }

 private:
  void release() {
    if (!data_) return;
    for (size_t i = 0; i < n_; ++i) data_[i].~T();
    if (mapped_)
      munmap(data_, mapped_);
    else
      ::operator delete(data_, std::align_val_t(alignof(T) > 64 ? alignof(T) : 64));
    data_ = nullptr;
  }

  T* data_ = nullptr;
  size_t n_ = 0;
  size_t mapped_ = 0;
};

}  // namespace svcplane

// The conntrack index: cache-line buckets of 8 entries, each a 16-bit tag (hash bits the
// bucket number does not use) and a 32-bit reference into the owner's slab. A lookup reads one
// line in the common case and follows only references whose tag matches (1 in 65,535 false
// matches), so it touches the slab once per hit. A full bucket spills into the next one and
// counts the spill in its `overflow`, so a lookup stops at the first bucket with none (no
// tombstones; F14-style). Buckets are sized for a load of at most 0.8: 10 bytes per entry.
#pragma once
#include <cstdint>

#include "table_memory.h"

namespace svcplane {

class BucketIndex {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu;
  static constexpr uint32_t kWays = 8;

  struct alignas(64) Bucket {
    uint16_t tag[kWays];  // 0: the way is free
    uint32_t ref[kWays];
    uint32_t overflow;  // entries whose home is this bucket that live further on
    uint32_t pad[3];
  };
  static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

  explicit BucketIndex(uint32_t maxRefs) : count_(bucketsFor(maxRefs)), buckets_(count_) { clear(); }

  static uint32_t bucketsFor(uint32_t maxRefs) {
    uint64_t n = (uint64_t(maxRefs) * 10 + 63) / 64;  // 8 ways at load 0.8
    return uint32_t(n < 2 ? 2 : n);
  }
  static uint64_t bytesFor(uint32_t maxRefs) { return uint64_t(bucketsFor(maxRefs)) * sizeof(Bucket); }
  uint64_t bytes() const { return uint64_t(count_) * sizeof(Bucket); }

  void clear() {
    for (uint32_t b = 0; b < count_; ++b) buckets_[b] = Bucket{};
  }

  // Home bucket: the hash's high bits (multiply-shift, no division); the tag: its low 16 bits.
  uint32_t home(uint32_t hash) const { return uint32_t((uint64_t(hash) * count_) >> 32); }
  static uint16_t tagOf(uint32_t hash) {
    uint16_t t = uint16_t(hash);
    return t ? t : 1;
  }

  void prefetch(uint32_t hash) const { __builtin_prefetch(&buckets_[home(hash)]); }

  // The first ref with this hash's tag for which eq(ref) holds, or kEmpty.
  template <class Eq>
  uint32_t find(uint32_t hash, Eq&& eq) const {
    const uint16_t tag = tagOf(hash);
    uint32_t b = home(hash);
    for (uint32_t n = 0; n < count_; ++n) {
      const Bucket& k = buckets_[b];
      for (uint32_t m = matches(k, tag); m; m &= m - 1) {
        uint32_t w = uint32_t(__builtin_ctz(m));
        if (eq(k.ref[w])) return k.ref[w];
      }
      if (k.overflow == 0) return kEmpty;
      b = next(b);
    }
    return kEmpty;
  }

  // The ref of the first entry with this hash's tag in its home bucket (unchecked), or kEmpty:
  // the batch paths prefetch what it points to.
  uint32_t firstWithTag(uint32_t hash) const {
    const Bucket& k = buckets_[home(hash)];
    uint32_t m = matches(k, tagOf(hash));
    return m ? k.ref[__builtin_ctz(m)] : kEmpty;
  }

  // The caller guarantees room (its slab holds at most maxRefs refs).
  void insert(uint32_t hash, uint32_t ref) {
    const uint16_t tag = tagOf(hash);
    for (uint32_t b = home(hash);; b = next(b)) {
      Bucket& k = buckets_[b];
      for (uint32_t w = 0; w < kWays; ++w)
        if (k.tag[w] == 0) {
          k.tag[w] = tag;
          k.ref[w] = ref;
          return;
        }
      ++k.overflow;
    }
  }

  // Removes the entry holding exactly (hash, ref); false if it is not there.
  bool erase(uint32_t hash, uint32_t ref) {
    const uint16_t tag = tagOf(hash);
    const uint32_t start = home(hash);
    uint32_t b = start, n = 0;
    for (;; b = next(b), ++n) {
      if (n == count_) return false;
      Bucket& k = buckets_[b];
      uint32_t w = 0;
      while (w < kWays && !(k.tag[w] == tag && k.ref[w] == ref)) ++w;
      if (w < kWays) {
        k.tag[w] = 0;
        k.ref[w] = kEmpty;
        break;
      }
      if (k.overflow == 0) return false;
    }
    // Every bucket the entry spilled past counted it.
    for (uint32_t c = start; c != b; c = next(c)) --buckets_[c].overflow;
    return true;
  }

 private:
  uint32_t next(uint32_t b) const { return b + 1 == count_ ? 0 : b + 1; }

  // Bit w set when way w holds this tag.
  static uint32_t matches(const Bucket& k, uint16_t tag) {
    uint32_t m = 0;
    for (uint32_t w = 0; w < kWays; ++w) m |= uint32_t(k.tag[w] == tag) << w;
    return m;
  }

  uint32_t count_;
  TableArray<Bucket> buckets_;
};

}  // namespace svcplane

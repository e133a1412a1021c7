// The conntrack index: cache-line buckets of 15 slots and a spill count. A slot is one 32-bit
// word, a tag (hash bits the bucket number does not use) above a reference into the owner's
// slab: the reference takes the bits the table's size needs and the tag the rest (11 bits for
// a million flows). A lookup reads one line in the common case and follows only references
// whose tag matches, so it touches the slab about once per hit. A full bucket spills into the
// next one and counts the spill in its `overflow`, so a lookup stops at the first bucket with
// none (no tombstones; F14-style). Buckets are sized for a load of at most 0.86: 4.96 bytes per
// entry.
#pragma once
#include <cstdint>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "table_memory.h"

namespace svcplane {

class BucketIndex {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu;
  static constexpr uint32_t kWays = 15;

  struct alignas(64) Bucket {
    uint32_t slot[kWays];  // tag << refBits | ref; 0: free (tags are never 0)
    uint32_t overflow;     // entries whose home is this bucket that live further on
  };
  static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

  // References are below maxRefs; they get the bits that needs (at most 30, so a tag keeps 2).
  explicit BucketIndex(uint32_t maxRefs)
      : refBits_(refBitsFor(maxRefs)), refMask_((1u << refBits_) - 1), count_(bucketsFor(maxRefs)), buckets_(count_) {
    clear();
  }

  static uint32_t bucketsFor(uint32_t maxRefs) {
    // 12.9 entries a bucket: 15 ways at load 0.86. At 0.9 a full table's misses and inserts
    // walked long spill chains (a new flow through the packet path at 1,000 flows cost 330 ns
    // against 225 ns at 0.86, measured 2026-12-04); 0.86 is the highest load within 96 bytes a flow.
    uint64_t n = (uint64_t(maxRefs) * 10 + 128) / 129;
    return uint32_t(n < 2 ? 2 : n);
  }
  static uint64_t bytesFor(uint32_t maxRefs) { return uint64_t(bucketsFor(maxRefs)) * sizeof(Bucket); }
  uint64_t bytes() const { return uint64_t(count_) * sizeof(Bucket); }

  void clear() {
    for (uint32_t b = 0; b < count_; ++b) buckets_[b] = Bucket{};
  }

  // Home bucket: the hash's high bits (multiply-shift, no division); the tag: its low bits,
  // shifted above the reference.
  uint32_t home(uint32_t hash) const { return uint32_t((uint64_t(hash) * count_) >> 32); }
  uint32_t tagOf(uint32_t hash) const {
    uint32_t t = hash << refBits_;
    return t ? t : refMask_ + 1;
  }

  void prefetch(uint32_t hash) const { __builtin_prefetch(&buckets_[home(hash)]); }

  // The first ref with this hash's tag for which eq(ref) holds, or kEmpty.
  template <class Eq>
  uint32_t find(uint32_t hash, Eq&& eq) const {
    const uint32_t tag = tagOf(hash);
    uint32_t b = home(hash);
    for (uint32_t n = 0; n < count_; ++n) {
      const Bucket& k = buckets_[b];
      for (uint32_t m = matches(k, tag); m; m &= m - 1) {
        uint32_t ref = k.slot[__builtin_ctz(m)] & refMask_;
        if (eq(ref)) return ref;
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
    return m ? k.slot[__builtin_ctz(m)] & refMask_ : kEmpty;
  }

  // The caller guarantees room (its slab holds at most maxRefs refs).
  void insert(uint32_t hash, uint32_t ref) {
    const uint32_t entry = tagOf(hash) | ref;
    for (uint32_t b = home(hash);; b = next(b)) {
      Bucket& k = buckets_[b];
      for (uint32_t w = 0; w < kWays; ++w)
        if (k.slot[w] == 0) {
          k.slot[w] = entry;
          return;
        }
      ++k.overflow;
    }
  }

  // Removes the entry holding exactly (hash, ref); false if it is not there.
  bool erase(uint32_t hash, uint32_t ref) {
    const uint32_t entry = tagOf(hash) | ref;
    const uint32_t start = home(hash);
    uint32_t b = start, n = 0;
    for (;; b = next(b), ++n) {
      if (n == count_) return false;
      Bucket& k = buckets_[b];
      uint32_t w = 0;
      while (w < kWays && k.slot[w] != entry) ++w;
      if (w < kWays) {
        k.slot[w] = 0;
        break;
      }
      if (k.overflow == 0) return false;
    }
    // Every bucket the entry spilled past counted it.
    for (uint32_t c = start; c != b; c = next(c)) --buckets_[c].overflow;
    return true;
  }

 private:
  static uint32_t refBitsFor(uint32_t maxRefs) {
    uint32_t bits = maxRefs > 1 ? 32 - uint32_t(__builtin_clz(maxRefs - 1)) : 1;
    return bits > 30 ? 30 : bits;
  }
  uint32_t next(uint32_t b) const { return b + 1 == count_ ? 0 : b + 1; }

  // Bit w set when way w holds this tag (the overflow word, lane 15, never matches: a tag is
  // never 0 and a count under 2^refBits has none).
  uint32_t matches(const Bucket& k, uint32_t tag) const {
#ifdef __SSE2__
    const __m128i mask = _mm_set1_epi32(int(~refMask_)), want = _mm_set1_epi32(int(tag));
    const __m128i* line = reinterpret_cast<const __m128i*>(&k);
    uint32_t m = 0;
    for (uint32_t q = 0; q < 4; ++q) {
      const __m128i eq = _mm_cmpeq_epi32(_mm_and_si128(_mm_load_si128(line + q), mask), want);
      m |= uint32_t(_mm_movemask_ps(_mm_castsi128_ps(eq))) << (4 * q);
    }
    return m & ((1u << kWays) - 1);
#else
    const uint32_t mask = ~refMask_;
    uint32_t m = 0;
    for (uint32_t w = 0; w < kWays; ++w) m |= uint32_t((k.slot[w] & mask) == tag) << w;
    return m;
#endif
  }

  uint32_t refBits_;
  uint32_t refMask_;
  uint32_t count_;
  TableArray<Bucket> buckets_;
};

}  // namespace svcplane

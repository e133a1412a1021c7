// The open-addressing index under every map: linear probing over 8-byte slots
// {32-bit hash, 32-bit reference into the owner's entry slab}. Load stays <= 0.5 because the
// slot count is the next power of two >= 2 x capacity. Deletion shifts later slots back
// (no tombstones), so probe lengths never degrade under churn. Allocated once.
#pragma once
#include <cstdint>
#include <cstdlib>
#include "table_memory.h"

namespace svcplane {

class HashIndex {
 public:
  static constexpr uint32_t kEmpty = 0xffffffffu;

  struct Slot {
    uint32_t hash;
    uint32_t ref;
  };

  explicit HashIndex(uint32_t maxRefs) {
    uint64_t n = slotsFor(maxRefs);
    mask_ = uint32_t(n - 1);
    slots_ = TableArray<Slot>(n);
    clear();
  }

  void clear() {
    for (uint64_t i = 0; i <= mask_; ++i) slots_[i] = Slot{0, kEmpty};
  }

  // Returns the first ref whose hash matches and for which eq(ref) holds, or kEmpty.
  template <class Eq>
  uint32_t find(uint32_t hash, Eq&& eq) const {
    for (uint32_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.ref == kEmpty) return kEmpty;
      if (s.hash == hash && eq(s.ref)) return s.ref;
    }
  }

  // The caller guarantees the index has room (it sizes its slab to the index's capacity).
  void insert(uint32_t hash, uint32_t ref) {
    uint32_t i = hash & mask_;
    while (slots_[i].ref != kEmpty) i = (i + 1) & mask_;
    slots_[i] = Slot{hash, ref};
  }

  // Removes the slot holding exactly (hash, ref). Returns false if it is not there.
  bool erase(uint32_t hash, uint32_t ref) {
    uint32_t i = hash & mask_;
    for (;; i = (i + 1) & mask_) {
      if (slots_[i].ref == kEmpty) return false;
      if (slots_[i].ref == ref && slots_[i].hash == hash) break;
    }
    // Backward-shift deletion: move each following slot into the hole when its home position
    // does not lie (cyclically) between the hole and itself.
    uint32_t hole = i;
    for (uint32_t j = (hole + 1) & mask_;; j = (j + 1) & mask_) {
      const Slot s = slots_[j];
      if (s.ref == kEmpty) break;
      uint32_t home = s.hash & mask_;
      if (((j - home) & mask_) >= ((j - hole) & mask_)) {
        slots_[hole] = s;
        hole = j;
      }
    }
    slots_[hole] = Slot{0, kEmpty};
    return true;
  }

  // The ref of the first slot holding this hash (without checking its key), or kEmpty.
  uint32_t firstWithHash(uint32_t hash) const {
    for (uint32_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.ref == kEmpty || s.hash == hash) return s.ref;
    }
  }

  // Brings the first probe slot of a hash into cache ahead of a lookup (batch paths).
  void prefetch(uint32_t hash) const { __builtin_prefetch(&slots_[hash & mask_]); }

  static uint64_t slotsFor(uint32_t maxRefs) {
    uint64_t want = uint64_t(maxRefs) * 2, n = 16;
    while (n < want) n <<= 1;
    return n;
  }
  uint64_t slotCount() const { return uint64_t(mask_) + 1; }
  uint64_t bytes() const { return slotCount() * sizeof(Slot); }

 private:
  uint32_t mask_ = 0;
  TableArray<Slot> slots_;
};

}  // namespace svcplane

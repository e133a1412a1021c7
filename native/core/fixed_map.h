// A fixed-capacity hash map, the core's equivalent of a BPF hash / LRU hash map: capacity is
// set at construction, all memory is allocated then, and a full map either evicts its oldest
// entry or refuses the insert, as its policy says, and counts it.
//
// Entries live in a slab (stable indices, so other maps can refer to them); a HashIndex finds
// them; an intrusive doubly-linked list keeps them in age order for eviction.
#pragma once
#include <cstdint>
#include <memory>

#include "hash.h"
#include "hash_index.h"
#include "map_stats.h"
#include "table_memory.h"

namespace svcplane {

template <class Key, class Value>
class FixedMap {
 public:
  static constexpr uint32_t kNone = 0xffffffffu;

  struct Entry {
    Key key;
    Value value;
    uint32_t hash;
    uint32_t older;  // towards the head (oldest), or the free-list link
    uint32_t newer;
    bool used;
  };

  FixedMap(uint32_t capacity, uint64_t seed, FullPolicy policy)
      : capacity_(capacity), seed_(seed), policy_(policy), index_(capacity), entries_(capacity ? capacity : 1) {
    clear();
  }

  uint32_t capacity() const { return capacity_; }
  uint32_t size() const { return size_; }
  FullPolicy policy() const { return policy_; }
  const MapStats& stats() const { return stats_; }
  MapStats& stats() { return stats_; }
  uint64_t bytes() const { return index_.bytes() + uint64_t(capacity_) * sizeof(Entry); }

  uint32_t hashOf(const Key& k) const { return uint32_t(keyedHash(&k, sizeof(Key), seed_)); }

  uint32_t findIndex(const Key& k) const { return findIndex(k, hashOf(k)); }
  uint32_t findIndex(const Key& k, uint32_t h) const {
    uint32_t ref = index_.find(h, [&](uint32_t r) { return entries_[r].key == k; });
    return ref == HashIndex::kEmpty ? kNone : ref;
  }

  // Counted lookup (hits/misses), for the packet path.
  Value* lookup(const Key& k) { return lookup(k, hashOf(k)); }
  Value* lookup(const Key& k, uint32_t h) {
    uint32_t i = findIndex(k, h);
    if (i == kNone) {
      ++stats_.misses;
      return nullptr;
    }
    ++stats_.hits;
    return &entries_[i].value;
  }
  // Uncounted lookup, for the control path and inspection.
  Value* peek(const Key& k) {
    uint32_t i = findIndex(k);
    return i == kNone ? nullptr : &entries_[i].value;
  }

  struct InsertResult {
    uint32_t index;  // kNone when refused
    bool inserted;   // false: the key was already there
    bool evicted;    // an old entry made room
    Key evictedKey;
    Value evictedValue;
  };

  // Finds or creates the entry for k. A new entry's value is default-constructed.
  InsertResult insert(const Key& k) {
    InsertResult r{kNone, false, false, Key{}, Value{}};
    uint32_t h = hashOf(k);
    uint32_t i = findIndex(k, h);
    if (i != kNone) {
      ++stats_.updates;
      r.index = i;
      return r;
    }
    if (size_ == capacity_) {
      if (policy_ == FullPolicy::Refuse || head_ == kNone) {
        ++stats_.refusals;
        return r;
      }
      r.evicted = true;
      r.evictedKey = entries_[head_].key;
      r.evictedValue = std::move(entries_[head_].value);
      ++stats_.evictions;
      unlinkAndFree(head_);
    }
    i = free_;
    Entry& e = entries_[i];
    free_ = e.older;
    e.key = k;
    e.value = Value{};
    e.hash = h;
    e.used = true;
    linkNewest(i);
    index_.insert(h, i);
    ++size_;
    ++stats_.inserts;
    r.index = i;
    r.inserted = true;
    return r;
  }

  bool erase(const Key& k) {
    uint32_t i = findIndex(k);
    if (i == kNone) return false;
    eraseAt(i);
    return true;
  }

  void eraseAt(uint32_t i) {
    ++stats_.deletes;
    unlinkAndFree(i);
  }
  // An expired entry removed by its owner: counted as an expiration, not a delete.
  void expireAt(uint32_t i) {
    ++stats_.expirations;
    unlinkAndFree(i);
  }

  void prefetch(uint32_t h) const { index_.prefetch(h); }
  // Second stage of a batch lookup, once prefetch(h) has brought the index slot in: the lines
  // of the entry the first slot with this hash refers to that hold its key and the first
  // `valueBytes` of its value (an entry may straddle lines). Only a hint: the key is not checked.
  void prefetchEntry(uint32_t h, size_t valueBytes = sizeof(Value)) const {
    uint32_t ref = index_.firstWithHash(h);
    if (ref == HashIndex::kEmpty) return;
    const char* p = reinterpret_cast<const char*>(&entries_[ref]);
    const char* end = reinterpret_cast<const char*>(&entries_[ref].value) + valueBytes;
    for (const char* c = p; c < end; c += 64) __builtin_prefetch(c);
    __builtin_prefetch(end - 1);
  }

  // Moves an entry to the young end (LRU use).
  void touch(uint32_t i) {
    if (tail_ == i) return;
    unlink(i);
    linkNewest(i);
  }

  void clear() {
    index_.clear();
    for (uint32_t i = 0; i < capacity_; ++i) {
      entries_[i].used = false;
      entries_[i].value = Value{};
      entries_[i].older = i + 1 < capacity_ ? i + 1 : kNone;
      entries_[i].newer = kNone;
    }
    free_ = capacity_ ? 0 : kNone;
    head_ = tail_ = kNone;
    size_ = 0;
  }

  // Rebuilds the map aside with room for `capacity` entries and swaps it in whole: keys,
  // values, age order and stats carry over; slab indices do not (callers that keep pointers
  // into values refresh them). For the control-plane maps, which grow with the cluster.
  void grow(uint32_t capacity) {
    if (capacity <= capacity_) return;
    FixedMap next(capacity, seed_, policy_);
    for (uint32_t i = head_; i != kNone; i = entries_[i].newer) {
      Entry& e = entries_[i];
      uint32_t j = next.free_;
      Entry& n = next.entries_[j];
      next.free_ = n.older;
      n.key = e.key;
      n.value = std::move(e.value);
      n.hash = e.hash;
      n.used = true;
      next.linkNewest(j);
      next.index_.insert(e.hash, j);
      ++next.size_;
    }
    next.stats_ = stats_;
    *this = std::move(next);
  }

  // Slab access for iteration (index < capacity(); check used).
  Entry& at(uint32_t i) { return entries_[i]; }
  const Entry& at(uint32_t i) const { return entries_[i]; }
  uint32_t oldest() const { return head_; }

 private:
  void linkNewest(uint32_t i) {
    Entry& e = entries_[i];
    e.older = tail_;
    e.newer = kNone;
    if (tail_ != kNone) entries_[tail_].newer = i;
    tail_ = i;
    if (head_ == kNone) head_ = i;
  }
  void unlink(uint32_t i) {
    Entry& e = entries_[i];
    if (e.older != kNone)
      entries_[e.older].newer = e.newer;
    else
      head_ = e.newer;
    if (e.newer != kNone)
      entries_[e.newer].older = e.older;
    else
      tail_ = e.older;
  }
  void unlinkAndFree(uint32_t i) {
    Entry& e = entries_[i];
    index_.erase(e.hash, i);
    unlink(i);
    e.used = false;
    e.value = Value{};
    e.older = free_;
    e.newer = kNone;
    free_ = i;
    --size_;
  }

  uint32_t capacity_;
  uint64_t seed_;
  FullPolicy policy_;
  HashIndex index_;
  TableArray<Entry> entries_;
  uint32_t free_ = kNone, head_ = kNone, tail_ = kNone, size_ = 0;
  MapStats stats_;
};

}  // namespace svcplane

#include <random>
#include <unordered_map>

#include "check.h"
#include "core/fixed_map.h"

using namespace svcplane;

TEST_CASE("fixed_map: insert, find, erase") {
  FixedMap<uint32_t, uint64_t> m(8, 1, FullPolicy::Refuse);
  CHECK_EQ(m.size(), 0u);
  auto r = m.insert(5);
  CHECK(r.inserted);
  m.at(r.index).value = 55;
  CHECK(m.lookup(5) != nullptr);
  CHECK_EQ(*m.lookup(5), 55u);
  CHECK(m.lookup(6) == nullptr);
  CHECK_EQ(m.stats().hits, 2u);
  CHECK_EQ(m.stats().misses, 1u);
  auto again = m.insert(5);
  CHECK(!again.inserted);
  CHECK_EQ(again.index, r.index);
  CHECK(m.erase(5));
  CHECK(!m.erase(5));
  CHECK_EQ(m.size(), 0u);
}

TEST_CASE("fixed_map: a full map refuses under Refuse") {
  FixedMap<uint32_t, uint32_t> m(4, 2, FullPolicy::Refuse);
  for (uint32_t k = 1; k <= 4; ++k) CHECK(m.insert(k).inserted);
  auto r = m.insert(99);
  CHECK_EQ(r.index, (FixedMap<uint32_t, uint32_t>::kNone));
  CHECK_EQ(m.stats().refusals, 1u);
  CHECK_EQ(m.size(), 4u);
  CHECK(m.peek(99) == nullptr);
}

TEST_CASE("fixed_map: a full map evicts the oldest under EvictOldest, touch makes young") {
  FixedMap<uint32_t, uint32_t> m(3, 3, FullPolicy::EvictOldest);
  m.insert(1);
  m.insert(2);
  m.insert(3);
  m.touch(m.findIndex(1));  // 2 is now the oldest
  auto r = m.insert(4);
  CHECK(r.inserted);
  CHECK(r.evicted);
  CHECK_EQ(r.evictedKey, 2u);
  CHECK(m.peek(2) == nullptr);
  CHECK(m.peek(1) != nullptr);
  CHECK_EQ(m.stats().evictions, 1u);
  CHECK_EQ(m.size(), 3u);
}

TEST_CASE("fixed_map: random churn matches std::unordered_map (backward-shift deletion)") {
  FixedMap<uint32_t, uint32_t> m(1000, 4, FullPolicy::Refuse);
  std::unordered_map<uint32_t, uint32_t> ref;
  std::mt19937 rng(7);
  for (int step = 0; step < 200000; ++step) {
    uint32_t k = rng() % 1500;
    if (rng() % 2 && ref.size() < 1000) {
      auto r = m.insert(k);
      CHECK(r.index != (FixedMap<uint32_t, uint32_t>::kNone));
      m.at(r.index).value = uint32_t(step);
      ref[k] = uint32_t(step);
    } else {
      CHECK_EQ(m.erase(k), ref.erase(k) == 1);
    }
    if (step % 5000 == 0) {
      for (uint32_t q = 0; q < 1500; ++q) {
        auto it = ref.find(q);
        uint32_t* v = m.peek(q);
        CHECK_EQ(v != nullptr, it != ref.end());
        if (v && it != ref.end()) CHECK_EQ(*v, it->second);
      }
    }
  }
  CHECK_EQ(m.size(), uint32_t(ref.size()));
}

TEST_CASE("fixed_map: different seeds give different hashes") {
  FixedMap<uint32_t, uint32_t> a(8, 1, FullPolicy::Refuse), b(8, 2, FullPolicy::Refuse);
  int same = 0;
  for (uint32_t k = 0; k < 100; ++k) same += a.hashOf(k) == b.hashOf(k);
  CHECK(same < 3);
}

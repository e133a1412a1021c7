// Unit tests for backend selection (native/core/scheduler.h and sched_*.cc).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <numeric>
#include <string>
#include <vector>

#include "check.h"
#include "core/hash.h"
#include "core/sched_impl.h"
#include "core/scheduler.h"

// Counts heap allocations so the tests can prove pick() never allocates. Replacing the global
// operator new is binary-wide; it only counts and forwards to malloc.
static std::atomic<long> gAllocations{0};
void* operator new(std::size_t n) {
  gAllocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  std::abort();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

using namespace svcplane;

constexpr SchedulerKind kAllKinds[] = {
    SchedulerKind::Random,     SchedulerKind::Maglev,
    SchedulerKind::RoundRobin, SchedulerKind::WeightedRoundRobin,
    SchedulerKind::LeastConn,  SchedulerKind::WeightedLeastConn,
    SchedulerKind::SourceHash, SchedulerKind::DestinationHash,
};
static_assert(sizeof kAllKinds / sizeof kAllKinds[0] == kSchedulerKinds);

// A backend set plus the connection counters conntrack would own. Addresses are 10.0.x.y in
// input order i, ids 100 + i, so tests can shuffle the input and still tell backends apart.
struct Backends {
  std::vector<SchedBackend> list;
  std::vector<uint32_t> conns;

  explicit Backends(size_t n, std::vector<uint32_t> weights = {}) : conns(n, 0) {
    for (size_t i = 0; i < n; ++i) {
      SchedBackend b{};
      b.backendId = uint32_t(100 + i);
      b.weight = weights.empty() ? 1 : weights[i];
      b.addr = IpAddr::v4(0x0a000000u + uint32_t(i) * 7 + 1);
      b.port = 8080;
      list.push_back(b);
    }
    relink();
  }
  // conns is reallocated only here, so the pointers stay valid between calls.
  void relink() {
    for (size_t i = 0; i < list.size(); ++i) list[i].activeConns = &conns[i];
  }
  void erase(size_t i) {
    list.erase(list.begin() + long(i));
    conns.erase(conns.begin() + long(i));
    relink();
  }
};

std::unique_ptr<Scheduler> make(SchedulerKind kind, SchedulerConfig cfg = {}) {
  auto s = makeScheduler(kind, cfg);
  CHECK(s != nullptr);
  return s;
}

PickInput flow(uint64_t h) { return PickInput{h, h, h, h}; }

// Backend id chosen for each slot of a Maglev table, found through pick() so the mapping from
// canonical order back to the caller's order is exercised too.
std::vector<uint32_t> slotOwners(Scheduler& s, const std::vector<SchedBackend>& list, uint32_t m) {
  std::vector<uint32_t> owners(m);
  for (uint32_t slot = 0; slot < m; ++slot) {
    PickInput in{};
    in.flowHash = slot;
    owners[slot] = list[size_t(s.pick(in))].backendId;
  }
  return owners;
}

// Maglev straight from the paper's Pseudocode 1 (NSDI'16, section 3.4): full permutation
// matrix, unweighted, backends in the order given.
std::vector<int32_t> referenceMaglev(const std::vector<SchedBackend>& ordered, uint32_t m, uint64_t seed) {
  const size_t n = ordered.size();
  std::vector<std::vector<uint32_t>> permutation(n, std::vector<uint32_t>(m));
  for (size_t i = 0; i < n; ++i) {
    uint32_t offset, skip;
    sched::maglevOffsetSkip(ordered[i].addr, ordered[i].port, seed, m, &offset, &skip);
    for (uint32_t j = 0; j < m; ++j) permutation[i][j] = uint32_t((offset + uint64_t(j) * skip) % m);
  }
  std::vector<uint32_t> next(n, 0);
  std::vector<int32_t> entry(m, -1);
  uint32_t filled = 0;
  for (;;) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t c = permutation[i][next[i]];
      while (entry[c] >= 0) c = permutation[i][++next[i]];
      entry[c] = int32_t(i);
      ++next[i];
      if (++filled == m) return entry;
    }
  }
}

std::vector<SchedBackend> sortedByAddrPort(std::vector<SchedBackend> list) {
  std::sort(list.begin(), list.end(), [](const SchedBackend& a, const SchedBackend& b) {
    int c = std::memcmp(a.addr.b, b.addr.b, 16);
    return c != 0 ? c < 0 : a.port < b.port;
  });
  return list;
}

// Pearson's chi-square statistic of observed counts against expected probabilities.
double chiSquare(const std::vector<long>& observed, const std::vector<double>& p, long total) {
  double x2 = 0;
  for (size_t i = 0; i < observed.size(); ++i) {
    double e = p[i] * double(total);
    x2 += (double(observed[i]) - e) * (double(observed[i]) - e) / e;
  }
  return x2;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// isPrime and the factory

TEST_CASE("isPrime: agrees with a sieve below 200000") {
  const uint32_t limit = 200000;
  std::vector<bool> composite(limit, false);
  composite[0] = composite[1] = true;
  for (uint32_t i = 2; i * i < limit; ++i)
    if (!composite[i])
      for (uint32_t j = i * i; j < limit; j += i) composite[j] = true;
  int mismatches = 0;
  for (uint32_t n = 0; n < limit; ++n) mismatches += isPrime(n) != !composite[n];
  CHECK_EQ(mismatches, 0);
}

TEST_CASE("isPrime: Cilium's Maglev sizes and values near 2^32") {
  for (uint32_t m : {251u, 509u, 1021u, 2039u, 4093u, 8191u, 16381u, 32749u, 65521u, 131071u}) CHECK(isPrime(m));
  CHECK(isPrime(2147483647u));       // 2^31 - 1
  CHECK(isPrime(4294967291u));       // largest prime below 2^32
  CHECK(!isPrime(4294967295u));      // 3 * 5 * 17 * 257 * 65537
  CHECK(!isPrime(65521u * 65521u));  // a prime squared: the loop bound must include sqrt(n)
  CHECK(!isPrime(65519u * 65521u));  // two large prime factors
  CHECK(!isPrime(16383u));
}

TEST_CASE("makeScheduler: every kind exists; a non-prime Maglev size or unknown kind is refused") {
  for (SchedulerKind k : kAllKinds) CHECK(makeScheduler(k, {}) != nullptr);
  SchedulerConfig bad;
  bad.maglevTableSize = 16383;
  CHECK(makeScheduler(SchedulerKind::Maglev, bad) == nullptr);
  bad.maglevTableSize = 1;
  CHECK(makeScheduler(SchedulerKind::Maglev, bad) == nullptr);
  CHECK(makeScheduler(SchedulerKind(kSchedulerKinds), {}) == nullptr);
}

// ---------------------------------------------------------------------------------------------
// Properties every scheduler shares

TEST_CASE("all schedulers: -1 and no table when rebuilt empty, also after having backends") {
  for (SchedulerKind k : kAllKinds) {
    auto s = make(k);
    CHECK_EQ(s->pick(flow(1)), -1);
    Backends b(5);
    s->rebuild(b.list);
    CHECK(s->pick(flow(1)) >= 0);
    s->rebuild({});
    for (uint64_t h = 0; h < 100; ++h) CHECK_EQ(s->pick(flow(h * 0x9e3779b97f4a7c15ull)), -1);
    CHECK(s->table().empty());
  }
}

TEST_CASE("all schedulers: picks are indices into the span given to rebuild") {
  Backends b(7, {3, 1, 4, 1, 5, 9, 2});
  for (SchedulerKind k : kAllKinds) {
    auto s = make(k);
    s->rebuild(b.list);
    uint64_t rng = 42;
    int outOfRange = 0;
    for (int i = 0; i < 5000; ++i) {
      int32_t p = s->pick(flow(splitmix64(rng)));
      outOfRange += p < 0 || p >= 7;
      if (p >= 0 && p < 7) ++b.conns[size_t(p)];  // let lc / wlc move on
    }
    CHECK_EQ(outOfRange, 0);
  }
}

TEST_CASE("all schedulers: pick() does not allocate") {
  Backends b(50);
  for (SchedulerKind k : kAllKinds) {
    auto s = make(k);
    s->rebuild(b.list);
    uint64_t rng = 7;
    long before = gAllocations.load();
    for (int i = 0; i < 10000; ++i) s->pick(flow(splitmix64(rng)));
    CHECK_EQ(gAllocations.load() - before, 0);
  }
}

TEST_CASE("all schedulers: a single backend always gets the flow") {
  Backends b(1, {3});
  for (SchedulerKind k : kAllKinds) {
    auto s = make(k);
    s->rebuild(b.list);
    uint64_t rng = 3;
    int other = 0;
    for (int i = 0; i < 1000; ++i) other += s->pick(flow(splitmix64(rng))) != 0;
    CHECK_EQ(other, 0);
  }
}

// ---------------------------------------------------------------------------------------------
// random

TEST_CASE("random: equal weights are uniform (chi-square, 4 dof, p=0.001 bound 18.47)") {
  Backends b(5);
  auto s = make(SchedulerKind::Random);
  s->rebuild(b.list);
  const long n = 1000000;
  std::vector<long> counts(5, 0);
  uint64_t rng = 1;
  PickInput in{};
  for (long i = 0; i < n; ++i) {
    in.random = splitmix64(rng);
    ++counts[size_t(s->pick(in))];
  }
  CHECK(chiSquare(counts, std::vector<double>(5, 0.2), n) < 18.47);
}

TEST_CASE("random: weights {1,2,3,4} give shares w/10 (chi-square, 3 dof, p=0.001 bound 16.27)") {
  Backends b(4, {1, 2, 3, 4});
  auto s = make(SchedulerKind::Random);
  s->rebuild(b.list);
  const long n = 1000000;
  std::vector<long> counts(4, 0);
  uint64_t rng = 2;
  PickInput in{};
  for (long i = 0; i < n; ++i) {
    in.random = splitmix64(rng);
    ++counts[size_t(s->pick(in))];
  }
  std::printf("  # random weighted counts: %ld %ld %ld %ld\n", counts[0], counts[1], counts[2], counts[3]);
  CHECK(chiSquare(counts, {0.1, 0.2, 0.3, 0.4}, n) < 16.27);
}

TEST_CASE("random: the weighted draw splits [0, 2^64) exactly at the cumulative weights") {
  Backends b(2, {1, 3});  // backend 0 owns [0, 2^62), backend 1 owns [2^62, 2^64)
  auto s = make(SchedulerKind::Random);
  s->rebuild(b.list);
  PickInput in{};
  in.random = 0;
  CHECK_EQ(s->pick(in), 0);
  in.random = (1ull << 62) - 1;
  CHECK_EQ(s->pick(in), 0);
  in.random = 1ull << 62;
  CHECK_EQ(s->pick(in), 1);
  in.random = ~0ull;
  CHECK_EQ(s->pick(in), 1);
  // Uses only the random bits: the flow hashes do not matter.
  in = PickInput{~0ull, ~0ull, ~0ull, 0};
  CHECK_EQ(s->pick(in), 0);
}

TEST_CASE("random: uniform fast path covers the ends of the range") {
  Backends b(3);
  auto s = make(SchedulerKind::Random);
  s->rebuild(b.list);
  PickInput in{};
  in.random = 0;
  CHECK_EQ(s->pick(in), 0);
  in.random = ~0ull;
  CHECK_EQ(s->pick(in), 2);
  in.random = ~0ull / 3 + 1;
  CHECK_EQ(s->pick(in), 1);
}

// ---------------------------------------------------------------------------------------------
// maglev

TEST_CASE("maglev: offset and skip are in range and depend on address, port and seed") {
  const uint32_t m = 16381;
  IpAddr a = IpAddr::v4(0x0a000001);
  uint32_t o1, s1, o2, s2, o3, s3, o4, s4;
  sched::maglevOffsetSkip(a, 80, 1, m, &o1, &s1);
  sched::maglevOffsetSkip(a, 81, 1, m, &o2, &s2);
  sched::maglevOffsetSkip(a, 80, 2, m, &o3, &s3);
  sched::maglevOffsetSkip(IpAddr::v4(0x0a000002), 80, 1, m, &o4, &s4);
  for (uint32_t v : {o1, o2, o3, o4}) CHECK(v < m);
  for (uint32_t v : {s1, s2, s3, s4}) CHECK(v >= 1 && v < m);
  CHECK(o1 != o2 || s1 != s2);
  CHECK(o1 != o3 || s1 != s3);
  CHECK(o1 != o4 || s1 != s4);
  CHECK(o1 != s1);  // two derived secrets, not one hash used twice
}

TEST_CASE("maglev: unweighted table equals the paper's pseudocode over the canonical order") {
  for (uint32_t m : {251u, 1021u, 16381u}) {
    for (size_t n : {1u, 2u, 7u, 40u}) {
      Backends b(n);
      std::reverse(b.list.begin(), b.list.end());  // canonical order != input order
      SchedulerConfig cfg;
      cfg.maglevTableSize = m;
      cfg.maglevSeed = 0x1234 + n;
      auto s = make(SchedulerKind::Maglev, cfg);
      s->rebuild(b.list);
      std::vector<SchedBackend> ordered = sortedByAddrPort(b.list);
      std::vector<int32_t> ref = referenceMaglev(ordered, m, cfg.maglevSeed);
      auto table = s->table();
      CHECK_EQ(table.size(), size_t(m));
      int diffs = 0;
      for (uint32_t i = 0; i < m && i < table.size(); ++i) diffs += int32_t(table[i]) != ref[i];
      CHECK_EQ(diffs, 0);
      // Equal weights other than 1 change nothing.
      for (auto& x : b.list) x.weight = 3;
      s->rebuild(b.list);
      diffs = 0;
      for (uint32_t i = 0; i < m; ++i) diffs += int32_t(s->table()[i]) != ref[i];
      CHECK_EQ(diffs, 0);
      // pick() goes through the table and back to the caller's index.
      std::vector<uint32_t> owners = slotOwners(*s, b.list, m);
      diffs = 0;
      for (uint32_t i = 0; i < m; ++i) diffs += owners[i] != ordered[size_t(ref[i])].backendId;
      CHECK_EQ(diffs, 0);
    }
  }
}

TEST_CASE("maglev: the same set in another order and the same seed build the same table") {
  Backends b(30, std::vector<uint32_t>(30, 1));
  for (size_t i = 0; i < 30; i += 4) b.list[i].weight = 2;
  std::vector<SchedBackend> shuffled = b.list;
  uint64_t rng = 99;
  for (size_t i = shuffled.size() - 1; i > 0; --i) std::swap(shuffled[i], shuffled[splitmix64(rng) % (i + 1)]);
  CHECK(shuffled[0].backendId != b.list[0].backendId);

  auto s1 = make(SchedulerKind::Maglev);
  auto s2 = make(SchedulerKind::Maglev);
  s1->rebuild(b.list);
  s2->rebuild(shuffled);
  const uint32_t m = SchedulerConfig{}.maglevTableSize;
  CHECK(std::equal(s1->table().begin(), s1->table().end(), s2->table().begin(), s2->table().end()));
  CHECK(slotOwners(*s1, b.list, m) == slotOwners(*s2, shuffled, m));
  // pick() reduces flowHash modulo M.
  PickInput in{};
  in.flowHash = 12345;
  int32_t p = s1->pick(in);
  in.flowHash = 12345 + uint64_t(m) * 1000003;
  CHECK_EQ(s1->pick(in), p);

  // A different seed is a different table.
  SchedulerConfig other;
  other.maglevSeed = 1;
  auto s3 = make(SchedulerKind::Maglev, other);
  s3->rebuild(b.list);
  std::vector<uint32_t> a = slotOwners(*s1, b.list, m), c = slotOwners(*s3, b.list, m);
  long same = 0;
  for (uint32_t i = 0; i < m; ++i) same += a[i] == c[i];
  CHECK(same < long(m) / 10);  // unrelated tables agree on ~1/30 of the slots
}

TEST_CASE("maglev, sh, dh: the table depends on (addr, port), not on node-local backend ids") {
  // Nodes number backends independently; the same endpoints must still give the same table.
  // Pairs share an address and differ by port, so the port must take part in the order too.
  std::vector<SchedBackend> a, b;
  for (uint32_t i = 0; i < 12; ++i) {
    SchedBackend x{};
    x.addr = IpAddr::v4(0xc0a80000u + (i / 2) * 3);
    x.port = uint16_t(i % 2 ? 8080 : 9090);
    x.weight = 1 + i % 3;
    x.backendId = i;
    a.push_back(x);
    x.backendId = 1000 - i;  // the other node numbered them in the opposite direction
    b.push_back(x);
  }
  std::reverse(b.begin(), b.end());
  for (SchedulerKind k : {SchedulerKind::Maglev, SchedulerKind::SourceHash, SchedulerKind::DestinationHash}) {
    auto s1 = make(k);
    auto s2 = make(k);
    s1->rebuild(a);
    s2->rebuild(b);
    CHECK(!s1->table().empty());
    CHECK(std::equal(s1->table().begin(), s1->table().end(), s2->table().begin(), s2->table().end()));
    int diffs = 0;
    for (uint64_t h = 0; h < 4096; ++h) {
      const SchedBackend& x = a[size_t(s1->pick(flow(h)))];
      const SchedBackend& y = b[size_t(s2->pick(flow(h)))];
      diffs += x.addr != y.addr || x.port != y.port;
    }
    CHECK_EQ(diffs, 0);
  }
}

TEST_CASE("maglev: with M > 100 x backends each backend's share is within 1% of ideal") {
  for (size_t n : {3u, 10u, 100u, 163u}) {
    Backends b(n);
    auto s = make(SchedulerKind::Maglev);
    s->rebuild(b.list);
    const uint32_t m = SchedulerConfig{}.maglevTableSize;
    std::vector<long> counts(n, 0);
    for (uint32_t slot : s->table()) ++counts[slot];
    const double ideal = double(m) / double(n);
    double worst = 0;
    for (long c : counts) worst = std::max(worst, std::fabs(double(c) - ideal) / ideal);
    CHECK(worst < 0.01);
  }
}

TEST_CASE("maglev: weights are honoured (weight 2 gets twice the share; {1,2,3,4} -> w/10)") {
  const uint32_t m = SchedulerConfig{}.maglevTableSize;
  {
    Backends b(10);
    b.list[4].weight = 2;
    auto s = make(SchedulerKind::Maglev);
    s->rebuild(b.list);
    std::vector<long> counts(10, 0);
    for (uint32_t id : slotOwners(*s, b.list, m)) ++counts[id - 100];
    double others = double(m - uint32_t(counts[4])) / 9;
    double ratio = double(counts[4]) / others;
    std::printf("  # maglev weight-2 share ratio: %.4f\n", ratio);
    CHECK(ratio > 1.98 && ratio < 2.02);
  }
  {
    Backends b(4, {1, 2, 3, 4});
    auto s = make(SchedulerKind::Maglev);
    s->rebuild(b.list);
    std::vector<long> counts(4, 0);
    for (uint32_t id : slotOwners(*s, b.list, m)) ++counts[id - 100];
    for (size_t i = 0; i < 4; ++i) {
      double share = double(counts[i]) / m, ideal = double(i + 1) / 10;
      CHECK(std::fabs(share - ideal) / ideal < 0.01);
    }
  }
}

namespace {
struct Disruption {
  double total;      // fraction of all slots whose backend changed
  double survivors;  // among slots whose old backend is still present, fraction changed
};
Disruption compareTables(const std::vector<uint32_t>& before, const std::vector<uint32_t>& after,
                         const std::vector<SchedBackend>& present) {
  std::vector<uint32_t> ids;
  for (auto& b : present) ids.push_back(b.backendId);
  std::sort(ids.begin(), ids.end());
  long changed = 0, survived = 0, survivedChanged = 0;
  for (size_t i = 0; i < before.size(); ++i) {
    bool moved = before[i] != after[i];
    changed += moved;
    if (std::binary_search(ids.begin(), ids.end(), before[i])) {
      ++survived;
      survivedChanged += moved;
    }
  }
  return {double(changed) / double(before.size()), double(survivedChanged) / double(survived)};
}
}  // namespace

TEST_CASE("maglev: removing one of N backends remaps ~1/N of the slots, survivors stay") {
  const uint32_t m = SchedulerConfig{}.maglevTableSize;
  for (size_t n : {3u, 10u, 50u, 100u}) {
    Backends b(n);
    auto s = make(SchedulerKind::Maglev);
    s->rebuild(b.list);
    std::vector<uint32_t> before = slotOwners(*s, b.list, m);
    b.erase(n / 2);
    s->rebuild(b.list);
    std::vector<uint32_t> after = slotOwners(*s, b.list, m);
    Disruption d = compareTables(before, after, b.list);
    std::printf("  # maglev remove 1 of %zu: total %.4f (1/N %.4f), survivors %.4f\n", n, d.total, 1.0 / double(n),
                d.survivors);
    CHECK(d.survivors < 0.02);
    CHECK(d.total > 0.99 / double(n) && d.total < 1.0 / double(n) + 0.02);
    // Nothing maps to the removed backend any more.
    CHECK(std::count(after.begin(), after.end(), uint32_t(100 + n / 2)) == 0);
  }
}

TEST_CASE("maglev: adding a backend takes ~1/(N+1) of the slots, others barely move") {
  const uint32_t m = SchedulerConfig{}.maglevTableSize;
  const size_t n = 20;
  Backends all(n + 1);
  std::vector<SchedBackend> fewer(all.list.begin(), all.list.begin() + n);
  auto s = make(SchedulerKind::Maglev);
  s->rebuild(fewer);
  std::vector<uint32_t> before = slotOwners(*s, fewer, m);
  s->rebuild(all.list);
  std::vector<uint32_t> after = slotOwners(*s, all.list, m);
  long changed = 0, toNew = 0;
  for (uint32_t i = 0; i < m; ++i) {
    changed += before[i] != after[i];
    toNew += after[i] == all.list[n].backendId;
  }
  // Slots that changed hands between two old backends: the churn Maglev keeps small.
  const double betweenOld = double(changed - toNew) / m;
  std::printf("  # maglev add 1 to %zu: changed %.4f (1/(N+1) %.4f), between old backends %.4f\n", n,
              double(changed) / m, 1.0 / double(n + 1), betweenOld);
  CHECK(double(toNew) / m > 0.99 / double(n + 1) && double(toNew) / m < 1.01 / double(n + 1));
  CHECK(betweenOld < 0.02);
}

TEST_CASE("maglev: removing a weighted backend keeps the survivors mostly in place") {
  const uint32_t m = SchedulerConfig{}.maglevTableSize;
  Backends b(12, {1, 2, 1, 3, 1, 1, 2, 1, 4, 1, 1, 2});
  auto s = make(SchedulerKind::Maglev);
  s->rebuild(b.list);
  std::vector<uint32_t> before = slotOwners(*s, b.list, m);
  b.erase(3);  // weight 3 of 20
  s->rebuild(b.list);
  Disruption d = compareTables(before, slotOwners(*s, b.list, m), b.list);
  std::printf("  # maglev weighted remove: total %.4f (ideal %.4f), survivors %.4f\n", d.total, 3.0 / 20, d.survivors);
  CHECK(d.total > 0.99 * 3 / 20 && d.total < 3.0 / 20 + 0.05);
  CHECK(d.survivors < 0.05);
}

TEST_CASE("maglev: more backends than slots still fills every slot") {
  SchedulerConfig cfg;
  cfg.maglevTableSize = 5;
  Backends b(8);
  auto s = make(SchedulerKind::Maglev, cfg);
  s->rebuild(b.list);
  CHECK_EQ(s->table().size(), size_t(5));
  std::vector<uint32_t> seen(s->table().begin(), s->table().end());
  std::sort(seen.begin(), seen.end());
  CHECK(std::unique(seen.begin(), seen.end()) == seen.end());  // one slot each, 5 distinct
  for (uint32_t v : seen) CHECK(v < 8);
  cfg.maglevTableSize = 2;
  auto t = make(SchedulerKind::Maglev, cfg);
  t->rebuild(b.list);
  CHECK_EQ(t->table().size(), size_t(2));
}

TEST_CASE("maglev: table for a fixed set and seed is pinned (nodes on different versions agree)") {
  // A regression pin, not a correctness proof: if this changes, nodes running the old and new
  // code build different tables for the same service and move flows between backends.
  Backends b(5, {1, 1, 2, 1, 3});
  SchedulerConfig cfg;
  cfg.maglevTableSize = 251;
  auto s = make(SchedulerKind::Maglev, cfg);
  s->rebuild(b.list);
  auto t = s->table();
  uint64_t digest = keyedHash(t.data(), t.size_bytes(), 0);
  std::printf("  # maglev pinned digest: 0x%016llx, first slots %u %u %u %u\n", (unsigned long long)digest, t[0], t[1],
              t[2], t[3]);
  CHECK_EQ(digest, 0xb2663a7b5792ff41ull);
}

// ---------------------------------------------------------------------------------------------
// rr

TEST_CASE("rr: cycles through the backends in the order given") {
  Backends b(4, {5, 1, 1, 1});  // weights are ignored
  auto s = make(SchedulerKind::RoundRobin);
  s->rebuild(b.list);
  std::vector<int32_t> seq;
  for (int i = 0; i < 10; ++i) seq.push_back(s->pick(flow(uint64_t(i))));
  CHECK(seq == (std::vector<int32_t>{0, 1, 2, 3, 0, 1, 2, 3, 0, 1}));
}

TEST_CASE("rr: a rebuild keeps the place (IPVS rr add/del semantics)") {
  Backends b(5);
  auto s = make(SchedulerKind::RoundRobin);
  s->rebuild(b.list);
  CHECK_EQ(s->pick({}), 0);
  CHECK_EQ(s->pick({}), 1);
  s->rebuild(b.list);  // same set: continue after backend 1
  CHECK_EQ(s->pick({}), 2);
  // Delete the backend just picked (id 102): continue with its successor (id 103, now index 2).
  b.erase(2);
  s->rebuild(b.list);
  CHECK_EQ(b.list[size_t(s->pick({}))].backendId, 103u);
  // Add a backend at the head: the place is kept by id, not by index.
  Backends extra(6);
  std::vector<SchedBackend> withNew = {extra.list[5]};
  withNew.insert(withNew.end(), b.list.begin(), b.list.end());  // 105, 100, 101, 103, 104
  s->rebuild(withNew);
  CHECK_EQ(withNew[size_t(s->pick({}))].backendId, 104u);
  CHECK_EQ(withNew[size_t(s->pick({}))].backendId, 105u);
  // Delete the current one and everything before it: restart at the head.
  std::vector<SchedBackend> tail(withNew.begin() + 1, withNew.end());  // 100, 101, 103, 104
  s->rebuild(tail);
  CHECK_EQ(tail[size_t(s->pick({}))].backendId, 100u);
}

// ---------------------------------------------------------------------------------------------
// wrr

namespace {
std::string wrrSequence(Scheduler& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += char('A' + s.pick({}));
  return out;
}
}  // namespace

TEST_CASE("wrr: weights {4,3,2} interleave as IPVS does: AABABCABC") {
  Backends b(3, {4, 3, 2});
  auto s = make(SchedulerKind::WeightedRoundRobin);
  s->rebuild(b.list);
  std::string seq = wrrSequence(*s, 27);
  CHECK(seq ==
        "AABABCABC"
        "AABABCABC"
        "AABABCABC");
}

TEST_CASE("wrr: each backend appears weight/gcd times per cycle") {
  Backends b(4, {6, 9, 3, 12});  // gcd 3: cycle of 2 + 3 + 1 + 4 = 10
  auto s = make(SchedulerKind::WeightedRoundRobin);
  s->rebuild(b.list);
  std::string first = wrrSequence(*s, 10);
  for (int cycle = 0; cycle < 5; ++cycle) {
    std::string seq = cycle == 0 ? first : wrrSequence(*s, 10);
    CHECK(seq == first);  // the cycle repeats exactly
    CHECK_EQ(std::count(seq.begin(), seq.end(), 'A'), 2);
    CHECK_EQ(std::count(seq.begin(), seq.end(), 'B'), 3);
    CHECK_EQ(std::count(seq.begin(), seq.end(), 'C'), 1);
    CHECK_EQ(std::count(seq.begin(), seq.end(), 'D'), 4);
  }
  // cw steps 10, 7, 4, 1 (mw = 12 - (3 - 1)): D; B D; A B D; A B C D.
  CHECK(first == "DBDABDABCD");
}

TEST_CASE("wrr: equal weights are plain round robin") {
  Backends b(3, {5, 5, 5});
  auto s = make(SchedulerKind::WeightedRoundRobin);
  s->rebuild(b.list);
  CHECK(wrrSequence(*s, 7) == "ABCABCA");
}

TEST_CASE("wrr: a rebuild returns to the list head and keeps cw (ip_vs_wrr_dest_changed)") {
  Backends b(3, {4, 3, 2});
  auto s = make(SchedulerKind::WeightedRoundRobin);
  s->rebuild(b.list);
  CHECK(wrrSequence(*s, 2) == "AA");  // now cw = 3, cursor at A
  s->rebuild(b.list);
  // From the head at cw 3: A B; then cw 2: A B C; cw 1: A B C; cw 4: A ...
  CHECK(wrrSequence(*s, 11) == "ABABCABCAAB");
  // A lower maximum pulls cw down to it: weights {2,1}, cw 4 > mw 2 -> 2.
  Backends c(2, {2, 1});
  s->rebuild(c.list);
  CHECK(wrrSequence(*s, 6) == "AABAAB");
  // Back to {4,3,2}: cw 1 is in range and kept.
  s->rebuild(b.list);
  CHECK(wrrSequence(*s, 7) == "ABCAABA");  // cw 1: A B C; 4: A; 3: A B; 2: A (cw stays 2)
  // A gcd > 1 puts cw back on its grid: {6,2} has gcd 2, mw 5, and cw 2 -> (2/2)*2+1 = 3 (not
  // mw 5, not 2).
  Backends d(2, {6, 2});
  s->rebuild(d.list);
  CHECK(wrrSequence(*s, 7) == "AABAAAB");  // cw 3: A; 1: A B; 5: A; 3: A; 1: A B
}

// ---------------------------------------------------------------------------------------------
// lc / wlc

TEST_CASE("lc: picks the fewest active connections, first on a tie, reading live counters") {
  Backends b(4);
  b.conns = {5, 3, 3, 7};
  auto s = make(SchedulerKind::LeastConn);
  s->rebuild(b.list);
  CHECK_EQ(s->pick({}), 1);
  b.conns[1] = 9;  // conntrack moved on; no rebuild needed
  CHECK_EQ(s->pick({}), 2);
  b.conns = {0, 0, 0, 0};
  CHECK_EQ(s->pick({}), 0);
  b.conns = {4, 4, 4, 0};
  CHECK_EQ(s->pick({}), 3);
  b.list[0].weight = 100;  // lc ignores weights
  b.conns = {1, 0, 0, 0};
  s->rebuild(b.list);
  CHECK_EQ(s->pick({}), 1);
}

TEST_CASE("lc: new flows even out the connection counts") {
  Backends b(3);
  b.conns = {10, 0, 4};
  auto s = make(SchedulerKind::LeastConn);
  s->rebuild(b.list);
  for (int i = 0; i < 86; ++i) ++b.conns[size_t(s->pick({}))];
  CHECK((b.conns == std::vector<uint32_t>{34, 33, 33}));
}

TEST_CASE("wlc: minimises conns/weight by cross multiplication, first on a tie") {
  Backends b(3, {1, 2, 3});
  auto s = make(SchedulerKind::WeightedLeastConn);
  s->rebuild(b.list);
  b.conns = {1, 2, 3};  // 1, 1, 1: tie
  CHECK_EQ(s->pick({}), 0);
  b.conns = {2, 3, 3};  // 2, 1.5, 1
  CHECK_EQ(s->pick({}), 2);
  b.conns = {1, 3, 6};  // 1, 1.5, 2
  CHECK_EQ(s->pick({}), 0);
  b.conns = {0, 0, 0};
  CHECK_EQ(s->pick({}), 0);
  b.conns = {1, 1, 0};
  CHECK_EQ(s->pick({}), 2);
}

TEST_CASE("wlc: products of 32-bit counts and weights do not overflow") {
  Backends b(2, {4000000000u, 2000000000u});
  auto s = make(SchedulerKind::WeightedLeastConn);
  s->rebuild(b.list);
  b.conns = {4000000000u, 3000000000u};  // 1.0 vs 1.5
  CHECK_EQ(s->pick({}), 0);
  b.conns = {4000000000u, 1999999999u};  // 1.0 vs 0.99999...
  CHECK_EQ(s->pick({}), 1);
}

TEST_CASE("wlc: new flows split in proportion to the weights") {
  Backends b(3, {1, 3, 2});
  auto s = make(SchedulerKind::WeightedLeastConn);
  s->rebuild(b.list);
  for (int i = 0; i < 600; ++i) ++b.conns[size_t(s->pick({}))];
  CHECK((b.conns == std::vector<uint32_t>{100, 300, 200}));
}

// ---------------------------------------------------------------------------------------------
// sh / dh

TEST_CASE("sh: 256 buckets filled round-robin, weight consecutive buckets per turn") {
  Backends b(3, {2, 1, 3});
  std::reverse(b.list.begin(), b.list.end());  // the canonical order is the address order
  auto s = make(SchedulerKind::SourceHash);
  s->rebuild(b.list);
  auto t = s->table();
  CHECK_EQ(t.size(), size_t(256));
  const uint32_t pattern[6] = {0, 0, 1, 2, 2, 2};  // A A B C C C in address order
  int diffs = 0;
  for (size_t i = 0; i < t.size(); ++i) diffs += t[i] != pattern[i % 6];
  CHECK_EQ(diffs, 0);
  // pick(): bucket = srcHash & 255, mapped back to the caller's index.
  PickInput in{};
  for (uint64_t h = 0; h < 256; ++h) {
    in.srcHash = h | (h * 0x9e3779b97f4a7c15ull << 8);  // high bits must not matter
    CHECK_EQ(b.list[size_t(s->pick(in))].backendId, 100 + pattern[h % 6]);
  }
}

TEST_CASE("sh: same source, same backend; only srcHash matters; spread across backends") {
  Backends b(4);
  auto s = make(SchedulerKind::SourceHash);
  s->rebuild(b.list);
  uint64_t rng = 5;
  std::vector<long> counts(4, 0);
  const long n = 400000;
  int unstable = 0;
  for (long i = 0; i < n; ++i) {
    PickInput in{};
    in.srcHash = splitmix64(rng);
    int32_t p = s->pick(in);
    ++counts[size_t(p)];
    in.flowHash = in.dstHash = in.random = splitmix64(rng);  // another flow, same source
    unstable += s->pick(in) != p;
  }
  CHECK_EQ(unstable, 0);
  for (long c : counts) CHECK(std::fabs(double(c) / n - 0.25) < 0.01);
}

TEST_CASE("sh: the table depends on the set, not the caller's order") {
  Backends b(9, {1, 2, 3, 1, 2, 3, 1, 2, 3});
  std::vector<SchedBackend> rotated(b.list.begin() + 4, b.list.end());
  rotated.insert(rotated.end(), b.list.begin(), b.list.begin() + 4);
  auto s1 = make(SchedulerKind::SourceHash);
  auto s2 = make(SchedulerKind::SourceHash);
  s1->rebuild(b.list);
  s2->rebuild(rotated);
  int diffs = 0;
  PickInput in{};
  for (uint64_t h = 0; h < 256; ++h) {
    in.srcHash = h;
    diffs += b.list[size_t(s1->pick(in))].backendId != rotated[size_t(s2->pick(in))].backendId;
  }
  CHECK_EQ(diffs, 0);
}

TEST_CASE("sh: weights are bucket counts as in IPVS (sum > 256 starves the tail)") {
  Backends b(2, {200, 200});
  auto s = make(SchedulerKind::SourceHash);
  s->rebuild(b.list);
  auto t = s->table();
  CHECK_EQ(std::count(t.begin(), t.end(), 0u), 200);
  CHECK_EQ(std::count(t.begin(), t.end(), 1u), 56);
  Backends many(300);
  s->rebuild(many.list);
  t = s->table();
  CHECK_EQ(*std::max_element(t.begin(), t.end()), 255u);  // backends past 256 get no bucket
}

TEST_CASE("dh: one bucket per backend per turn (weights ignored), indexed by dstHash") {
  Backends b(2, {5, 1});
  auto s = make(SchedulerKind::DestinationHash);
  s->rebuild(b.list);
  auto t = s->table();
  CHECK_EQ(t.size(), size_t(256));
  int diffs = 0;
  for (size_t i = 0; i < t.size(); ++i) diffs += t[i] != i % 2;
  CHECK_EQ(diffs, 0);
  PickInput in{};
  in.dstHash = 3;
  in.srcHash = in.flowHash = in.random = 0;
  CHECK_EQ(s->pick(in), 1);
  in.srcHash = in.flowHash = in.random = 1;  // only dstHash matters
  CHECK_EQ(s->pick(in), 1);
  in.dstHash = 256 + 2;
  CHECK_EQ(s->pick(in), 0);
}

TEST_CASE("dh: same destination, same backend; destinations spread across backends") {
  Backends b(3);
  auto s = make(SchedulerKind::DestinationHash);
  s->rebuild(b.list);
  uint64_t rng = 11;
  std::vector<long> counts(3, 0);
  const long n = 300000;
  int unstable = 0;
  for (long i = 0; i < n; ++i) {
    PickInput in{};
    in.dstHash = splitmix64(rng);
    int32_t p = s->pick(in);
    ++counts[size_t(p)];
    in.srcHash = in.flowHash = in.random = splitmix64(rng);
    unstable += s->pick(in) != p;
  }
  CHECK_EQ(unstable, 0);
  // 256 buckets over 3 backends: 86/85/85 buckets.
  const double expected[3] = {86.0 / 256, 85.0 / 256, 85.0 / 256};
  for (size_t i = 0; i < 3; ++i) CHECK(std::fabs(double(counts[i]) / n - expected[i]) < 0.01);
}

// Dataplane::decideBatch: the tuple API's batch path. Each group of flows goes through stages
// that only prefetch, each over the whole group, so that the cache misses of one flow overlap
// those of the others instead of being paid one after another: the conntrack side (bucket,
// then flow line) and, for flows that look new, the service side (frontend slot, frontend
// entry, service record, backend set, affinity entry, then the backend the scheduler will
// choose, its connection count and the reply tuple's conntrack bucket). Then the group is decided in order,
// one flow at a time, exactly as decide() would: the stages read and never write, so a wrong
// guess (a flow that turns out tracked, a draw that lands elsewhere) costs a wasted prefetch,
// never a different decision.
#include <algorithm>

#include "dataplane.h"

namespace svcplane {

namespace {

constexpr uint32_t kGroup = 32;

// What a new flow reads of a ServiceRec: its first fields (set, affinityTimeoutNs, emptyVerdict).
// How much of a backend set's array the look-ahead brings in before the choice is known.
constexpr size_t kActivePrefetchBytes = 192;
constexpr size_t kServiceHotBytes = sizeof(std::unique_ptr<BackendSet>) + sizeof(uint64_t) + sizeof(Verdict);

}  // namespace

struct Dataplane::LookAhead {
  const ServiceRec* svc;  // null: the flow looks tracked, or has no service with backends
  uint32_t serviceId;
  uint32_t affHash;
};

void Dataplane::lookAheadServices(const FlowInput* in, uint32_t m, const uint32_t* ctHash, uint32_t* feHash,
                                  uint64_t now, LookAhead* la) const {
  constexpr uint32_t kNoEntry = 0xffffffffu;
  bool fresh[kGroup];
  // 1. The flow line a bucket's tag points to; a bucket without the tag means a new flow,
  //    whose frontend is hashed (only then: a hit never needs it) and its slot fetched.
  for (uint32_t i = 0; i < m; ++i) {
    la[i] = LookAhead{nullptr, 0, 0};
    fresh[i] = !ct_.prefetchFlowTagged(ctHash[i]);
    feHash[i] = 0;
    if (fresh[i]) {
      feHash[i] = frontends_.hashOf(frontendKeyOf(in[i]));
      frontends_.prefetch(feHash[i]);
    }
  }
  // 1b. The frontend entry its slot points to.
  for (uint32_t i = 0; i < m; ++i)
    if (fresh[i]) frontends_.prefetchEntry(feHash[i]);
  // 2. The frontend's service record.
  for (uint32_t i = 0; i < m; ++i) {
    if (!fresh[i]) continue;
    uint32_t f = frontends_.findIndex(frontendKeyOf(in[i]), feHash[i]);
    const FrontendRec* fe = f == kNoEntry ? nullptr : &frontends_.at(f).value;
    if (!fe || !fe->service) {
      fresh[i] = false;
      continue;
    }
    la[i].serviceId = fe->serviceId;
    la[i].svc = fe->service;
    const char* svc = reinterpret_cast<const char*>(fe->service);
    __builtin_prefetch(svc);
    __builtin_prefetch(svc + kServiceHotBytes - 1);
  }
  // 3. The backend set; the affinity slot of an affinity service.
  for (uint32_t i = 0; i < m; ++i) {
    if (!fresh[i]) continue;
    const ServiceRec& svc = *la[i].svc;
    if (!svc.set) {
      la[i].svc = nullptr;
      continue;
    }
    __builtin_prefetch(svc.set.get());  // its first line: active and scheduler
    if (svc.affinityTimeoutNs) {
      la[i].affHash = affinity_.hashOf(AffinityKey{in[i].key.src, la[i].serviceId});
      affinity_.prefetch(la[i].affHash);
    }
  }
  // 4. The eligible backends and the scheduler; the affinity entry (only of a map of its own:
  //    a shared one is read under its mutex, at decision time).
  for (uint32_t i = 0; i < m; ++i) {
    if (!la[i].svc) continue;
    const BackendSet& set = *la[i].svc->set;
    // The backends a small set holds, all of them (a backend may straddle two lines).
    if (!set.active.empty()) {
      const char* a = reinterpret_cast<const char*>(set.active.data());
      const size_t bytes = std::min<size_t>(set.active.size() * sizeof(SchedBackend), kActivePrefetchBytes);
      for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(a + off);
      __builtin_prefetch(a + bytes - 1);
    }
    __builtin_prefetch(set.scheduler.get());
    if (la[i].svc->affinityTimeoutNs && !sharedAffinity_) affinity_.prefetchEntry(la[i].affHash);
  }
  // 5. The backend the flow will get, as far as it can be told now: a live affinity entry's, or
  //    the scheduler's prediction with the draw the flow will be given (each new flow before it
  //    in the group draws once); then its connection count and the reply tuple's bucket, which
  //    creating the flow writes.
  uint32_t draws = 0;
  for (uint32_t i = 0; i < m; ++i) {
    if (!la[i].svc) continue;
    const ServiceRec& svc = *la[i].svc;
    const BackendSet& set = *svc.set;
    if (set.active.empty()) continue;
    int32_t idx = -1;
    if (svc.affinityTimeoutNs && !sharedAffinity_) {
      uint32_t a = affinity_.findIndex(AffinityKey{in[i].key.src, la[i].serviceId}, la[i].affHash);
      if (a != kNoEntry && affinity_.at(a).value.lastUsed + svc.affinityTimeoutNs > now) {
        const uint32_t id = affinity_.at(a).value.backendId;
        auto it = std::find_if(set.active.begin(), set.active.end(),
                               [&](const SchedBackend& b) { return b.backendId == id; });
        if (it != set.active.end()) idx = int32_t(it - set.active.begin());
      }
    }
    if (idx < 0) idx = set.scheduler->predict(pickInputOf(svc, in[i].key, peekRandom(draws++)));
    if (idx < 0 || size_t(idx) >= set.active.size()) continue;
    const SchedBackend& b = set.active[size_t(idx)];
    ct_.prefetch(ct_.hashOf(replyKeyOf(in[i].key, b)));
    if (b.activeConns) __builtin_prefetch(b.activeConns, 1);
  }
}

// Creating each new flow before the next lookup keeps the batch exactly equal to a sequence of
// decide() calls: a flow seen twice, or its reply, later in the group finds it, and lc/wlc see
// the connections counted so far.
void Dataplane::decideBatch(const FlowInput* in, uint32_t n, uint64_t now, Decision* out) {
  uint32_t ctHash[kGroup], feHash[kGroup];
  LookAhead la[kGroup];
  for (uint32_t base = 0; base < n; base += kGroup) {
    uint32_t m = std::min(kGroup, n - base);
    // 0. Hash; the conntrack bucket.
    for (uint32_t i = 0; i < m; ++i) {
      ctHash[i] = ct_.hashOf(in[base + i].key);
      ct_.prefetch(ctHash[i]);
    }
    lookAheadServices(in + base, m, ctHash, feHash, now, la);
    for (uint32_t i = 0; i < m; ++i) {
      NewFlow nf;
      if (!decideLookup(in[base + i], ctHash[i], feHash[i], now, out[base + i], nf))
        commitNewFlow(in[base + i], ctHash[i], nf, now, out[base + i]);
    }
  }
}

}  // namespace svcplane

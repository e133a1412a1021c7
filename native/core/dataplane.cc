#include "dataplane.h"

#include <algorithm>
#include <cstring>

#include "sched_impl.h"

namespace svcplane {

namespace {

uint64_t derive(uint64_t seed, uint64_t salt) {
  uint64_t s = seed ^ (salt * 0x9e3779b97f4a7c15ull);
  return splitmix64(s);
}

std::string num(uint64_t v) { return std::to_string(v); }

uint32_t initialSize(uint32_t initial, uint32_t ceiling) { return ceiling < initial ? ceiling : initial; }

// The next size of a growing map that must hold `need`: doubled (so n inserts cost O(n)),
// at least `need`, at most `ceiling`.
uint32_t grownSize(uint32_t current, uint64_t need, uint32_t ceiling) {
  uint64_t next = std::max<uint64_t>(uint64_t(current) * 2, need);
  return uint32_t(std::min<uint64_t>(next, ceiling));
}

}  // namespace

bool BackendSet::isActive(uint32_t id) const {
  return std::binary_search(activeSorted.begin(), activeSorted.end(), id);
}

Dataplane::Dataplane(const DataplaneConfig& cfg, SharedAffinity* shared, bool affinityOwner)
    : cfg_(cfg),
      rngState_(cfg.rngSeed ? cfg.rngSeed : derive(cfg.seed, 7)),
      services_(initialSize(kInitialServices, cfg.maxServices), derive(cfg.seed, 1), FullPolicy::Refuse),
      frontends_(initialSize(kInitialFrontends, cfg.maxFrontends), derive(cfg.seed, 2), FullPolicy::Refuse),
      backends_(initialSize(kInitialBackends, cfg.maxBackends), derive(cfg.seed, 3), FullPolicy::Refuse),
      revnat_(initialSize(kInitialFrontends, cfg.maxFrontends), derive(cfg.seed, 4), FullPolicy::Refuse),
      ownAffinity_(shared ? 0 : cfg.maxAffinity, derive(cfg.seed, 5), cfg.affinityPolicy),
      sharedAffinity_(shared),
      affinityOwner_(affinityOwner),
      affinity_(shared ? shared->map : ownAffinity_),
      ct_(cfg.maxFlows, derive(cfg.seed, 6), cfg.conntrackPolicy, cfg.timeouts),
      nat_(cfg.maxNatPorts, derive(cfg.seed, 8)),
      frags_(cfg.maxFragments, derive(cfg.seed, 9)) {
  nat_.setClass(cfg.natPortClass, cfg.natPortClasses);
}

uint64_t Dataplane::nextRandom() { return splitmix64(rngState_); }

uint64_t Dataplane::peekRandom(uint32_t ahead) const {
  uint64_t s = rngState_ + uint64_t(ahead) * 0x9e3779b97f4a7c15ull;  // splitmix64's step, `ahead` times
  return splitmix64(s);
}

void Dataplane::onFlowRemoved(const Flow& f) {
  if (BackendRec* b = backends_.peek(f.backendId); b && b->activeConns) --b->activeConns;
  if (f.snat) {
    NatKey k{};
    k.nat = f.reply.dst;
    k.natPort = f.reply.dport;
    k.peer = f.reply.src;
    k.peerPort = f.reply.sport;
    k.proto = f.reply.proto;
    nat_.release(k);
  }
}

// ---------------------------------------------------------------------------------------
// Packet path

FrontendKey Dataplane::frontendKeyOf(const FlowInput& in) {
  return frontendKey(in.key.dst, in.key.dport, in.key.proto, uint8_t(in.scope));
}

void Dataplane::decide(const FlowInput& in, uint64_t now, Decision& out) {
  NewFlow nf;
  if (!decideLookup(in, ct_.hashOf(in.key), frontends_.hashOf(frontendKeyOf(in)), now, out, nf))
    commitNewFlow(in, ct_.hashOf(in.key), nf, now, out);
}

void Dataplane::fillFromFlow(uint32_t flow, Dir dir, Decision& out) {
  const FlowHot& f = ct_.hot(flow);
  out.established = true;
  out.flow = flow;
  out.dir = dir;
  out.serviceId = f.serviceId;
  out.backendId = f.backendId;
  if (dir == Dir::Original) {
    out.verdict = Verdict::Forward;
    ct_.replySource(flow, out.addr, out.port);
  } else {
    out.verdict = Verdict::Reply;
    if (const RevNatRec* r = revnat_.lookup(ct_.revNatIdOf(flow))) {
      out.addr = r->addr;
      out.port = r->port;
    } else {
      const FlowKey orig = ct_.key(flow, Dir::Original);
      out.addr = orig.dst;
      out.port = orig.dport;
    }
  }
  ++counters_.verdicts[size_t(out.verdict)];
}

bool Dataplane::decideLookup(const FlowInput& in, uint32_t ctHash, uint32_t feHash, uint64_t now, Decision& out,
                             NewFlow& nf) {
  out = Decision{};
  ++counters_.packets;
  const FlowKey& key = in.key;

  CtHit hit = ct_.lookup(key, ctHash, now, in.tcpFlags);
  if (hit.expired) {
    ct_.remove(
        hit.flow, [this](const Flow& f) { onFlowRemoved(f); }, true);
  } else if (hit.flow != Conntrack::kNone) {
    ct_.update(hit.flow, hit.dir, in.tcpFlags, in.bytes, now);
    fillFromFlow(hit.flow, hit.dir, out);
    return true;
  }
  return decideMiss(in, feHash, now, out, nf);
}

bool Dataplane::decideMiss(const FlowInput& in, uint32_t feHash, uint64_t now, Decision& out, NewFlow& nf) {
  const FlowKey& key = in.key;
  auto finish = [&](Verdict v, Reason r) {
    out.verdict = v;
    out.reason = r;
    ++counters_.verdicts[size_t(v)];
    ++counters_.reasons[size_t(r)];
    return true;
  };
  FrontendKey fk = frontendKeyOf(in);
  // The packet path hashes the frontend only on a conntrack miss (0: not hashed yet).
  const FrontendRec* fe = frontends_.lookup(fk, feHash ? feHash : frontends_.hashOf(fk));
  if (!fe) {
    fk.scope = uint8_t(in.scope == Scope::Internal ? Scope::External : Scope::Internal);
    fe = frontends_.lookup(fk);
  }
  if (!fe) return finish(Verdict::Pass, Reason::NoFrontend);
  out.serviceId = fe->serviceId;
  const ServiceRec* svc = fe->service;
  if (!svc || !svc->set) return finish(Verdict::Reject, Reason::NoBackends);

  if (fe->checkSourceRanges && !svc->sourceRanges.empty()) {
    bool allowed = false;
    for (const Cidr& c : svc->sourceRanges)
      if (c.contains(key.src)) {
        allowed = true;
        break;
      }
    if (!allowed) return finish(Verdict::Drop, Reason::SourceRange);
  }
  if (svc->set->active.empty()) return finish(svc->emptyVerdict, Reason::NoBackends);

  int32_t idx = choose(*svc, key, fe->serviceId, now, out);
  if (idx < 0) return finish(svc->emptyVerdict, Reason::NoBackends);
  const SchedBackend& b = svc->set->active[size_t(idx)];
  nf.reply = replyKeyOf(key, b);
  nf.replyHash = ct_.hashOf(nf.reply);
  ct_.prefetch(nf.replyHash);  // the insert's second slot, while the rest is decided
  nf.serviceId = fe->serviceId;
  nf.backendId = b.backendId;
  nf.revNatId = fe->revNatId;
  nf.activeConns = const_cast<uint32_t*>(b.activeConns);
  nf.addr = b.addr;
  nf.port = b.port;
  nf.emptyVerdict = svc->emptyVerdict;
  nf.masquerade = (in.packet & kInPacket) && wantsMasquerade(in, *fe, b.addr);
  return false;
}

void Dataplane::commitNewFlow(const FlowInput& in, uint32_t ctHash, NewFlow& nf, uint64_t now, Decision& out) {
  bool snat = false;
  if (nf.masquerade) {
    if (!masquerade(in, nf, out)) {
      out.verdict = Verdict::Drop;
      out.reason = Reason::NatPortsExhausted;
      ++counters_.verdicts[size_t(Verdict::Drop)];
      return;
    }
    snat = out.packetReason == Reason::None;
  }
  uint32_t flow = ct_.create(in.key, ctHash, nf.reply, nf.replyHash, nf.serviceId, nf.backendId, nf.revNatId,
                             in.tcpFlags, in.bytes, now, [this](const Flow& f) { onFlowRemoved(f); });
  Verdict v = Verdict::Forward;
  Reason r = Reason::None;
  if (flow == Conntrack::kNone) {
    v = Verdict::Drop;
    r = Reason::ConntrackFull;
    if (snat) nat_.release(NatKey{nf.reply.dst, nf.reply.src, nf.reply.dport, nf.reply.sport, nf.reply.proto, {}});
  } else {
    ++*nf.activeConns;
    out.backendId = nf.backendId;
    out.addr = nf.addr;
    out.port = nf.port;
    out.flow = flow;
    out.dir = Dir::Original;
    if (snat) {
      ct_.markSnat(flow);
      nat_.bind(NatKey{nf.reply.dst, nf.reply.src, nf.reply.dport, nf.reply.sport, nf.reply.proto, {}}, flow);
      ++pktCounters_.counts[kPktMasqueraded];
    }
  }
  out.verdict = v;
  out.reason = r;
  ++counters_.verdicts[size_t(v)];
  ++counters_.reasons[size_t(r)];
}

bool Dataplane::wantsMasquerade(const FlowInput& in, const FrontendRec& fe, const IpAddr& backend) const {
  if (in.key.src == backend) return true;  // hairpin: the backend would answer itself directly
  bool fromPod = in.packet & kInFromPod, fromNode = in.packet & kInFromNode;
  switch (fe.masq) {
    case MasqPolicy::Always: return true;
    case MasqPolicy::OutsidePodCidrs: return pktCfg_.masqueradeAll || (!pktCfg_.podCidrs.empty() && !fromPod);
    case MasqPolicy::FromNode: return fromNode && !fromPod;
    default: return false;
  }
}

// Rewrites the new flow's reply tuple so that the backend answers the node address on a port
// of the NAT port map. False: no port was free (the packet is dropped). Without a masquerade
// address of the family, the flow goes unmasqueraded and out.packetReason says so.
bool Dataplane::masquerade(const FlowInput& in, NewFlow& nf, Decision& out) {
  bool v4 = in.key.src.isV4();
  if (v4 ? !pktCfg_.hasMasq4 : !pktCfg_.hasMasq6) {
    out.packetReason = Reason::NoMasqueradeAddress;
    return true;
  }
  NatKey k{};
  k.nat = v4 ? pktCfg_.masq4 : pktCfg_.masq6;
  k.peer = nf.reply.src;
  k.peerPort = nf.reply.sport;
  k.proto = in.key.proto;
  FlowKey probe = nf.reply;
  probe.dst = k.nat;
  // Ports in use by unmasqueraded flows from the node address itself are taken, too.
  uint16_t port = nat_.claim(k, in.key.sport, uint32_t(ct_.hashOf(in.key) >> 7), [&](uint16_t p) {
    probe.dport = p;
    return ct_.peek(probe).flow != Conntrack::kNone;
  });
  if (!port) return false;
  nf.reply.dst = k.nat;
  nf.reply.dport = port;
  nf.replyHash = ct_.hashOf(nf.reply);
  return true;
}

uint8_t Dataplane::classify(const IpAddr& src, bool fromNode) const {
  uint8_t c = kInPacket;
  for (const Cidr& cidr : pktCfg_.podCidrs)
    if (cidr.contains(src)) {
      c |= kInFromPod;
      break;
    }
  static const uint8_t loop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  if (fromNode || (src.isV4() && src.b[12] == 127) || std::memcmp(src.b, loop6, 16) == 0) {
    c |= kInFromNode;
  } else {
    for (const IpAddr& a : pktCfg_.nodeAddrs)
      if (a == src) {
        c |= kInFromNode;
        break;
      }
  }
  return c;
}

Result Dataplane::setPacketConfig(const PacketConfig& c) {
  if (c.natPortLow == 0 || c.natPortLow > c.natPortHigh)
    return {Status::Invalid, "natPortRange must be 1 <= low <= high <= 65535"};
  if (c.hasMasq4 && !c.masq4.isV4()) return {Status::Invalid, "the IPv4 masquerade address is not IPv4"};
  if (c.hasMasq6 && c.masq6.isV4()) return {Status::Invalid, "the IPv6 masquerade address is not IPv6"};
  if (NatPorts::classSpan(c.natPortLow, c.natPortHigh, cfg_.natPortClass, cfg_.natPortClasses) == 0)
    return {Status::Invalid, "natPortRange has no port for shard " + num(cfg_.natPortClass) + " of " +
                                 num(cfg_.natPortClasses) + " (it needs at least one port per shard)"};
  pktCfg_ = c;
  nat_.setRange(c.natPortLow, c.natPortHigh);
  return {};
}

PickInput Dataplane::pickInputOf(const ServiceRec& svc, const FlowKey& key, uint64_t random) const {
  // Shared-seed hashes, so every instance maps a flow to the same Maglev slot; with affinity
  // the source port is left out, as Cilium does. Only those the scheduler reads.
  const uint64_t shared = cfg_.sched.maglevSeed;
  const uint8_t inputs = svc.set->scheduler->inputs();
  PickInput pin{0, 0, 0, random};
  if (inputs & kPickFlowHash) {
    FlowKey hk = key;
    if (svc.affinityTimeoutNs) hk.sport = 0;
    pin.flowHash = keyedHash(&hk, sizeof hk, shared);
  }
  if (inputs & kPickSrcHash) pin.srcHash = keyedHash(&key.src, sizeof key.src, shared);
  if (inputs & kPickDstHash) pin.dstHash = keyedHash(&key.dst, sizeof key.dst, shared);
  return pin;
}

FlowKey Dataplane::replyKeyOf(const FlowKey& key, const SchedBackend& b) {
  FlowKey reply{};
  reply.src = b.addr;
  reply.sport = b.port;
  reply.dst = key.src;
  reply.dport = key.sport;
  reply.proto = key.proto;
  return reply;
}

int32_t Dataplane::choose(const ServiceRec& svc, const FlowKey& key, uint32_t serviceId, uint64_t now, Decision& out) {
  const BackendSet& set = *svc.set;
  std::unique_lock<std::mutex> affinityLock;  // held to the end: the insert below uses it too
  if (svc.affinityTimeoutNs) {
    affinityLock = lockAffinity();
    AffinityKey ak{key.src, serviceId};
    uint32_t i = affinity_.findIndex(ak);
    if (i != FixedMap<AffinityKey, AffinityRec>::kNone) {
      AffinityRec& rec = affinity_.at(i).value;
      if (rec.lastUsed + svc.affinityTimeoutNs > now && set.isActive(rec.backendId)) {
        ++affinity_.stats().hits;
        rec.lastUsed = now;
        out.affinityHit = true;
        for (size_t k = 0; k < set.active.size(); ++k)
          if (set.active[k].backendId == rec.backendId) return int32_t(k);
      }
      if (rec.lastUsed + svc.affinityTimeoutNs <= now) { affinity_.expireAt(i); }
    }
    ++affinity_.stats().misses;
  }

  int32_t idx = set.scheduler->pick(pickInputOf(svc, key, nextRandom()));
  if (idx < 0 || size_t(idx) >= set.active.size()) return -1;

  if (svc.affinityTimeoutNs) {
    auto r = affinity_.insert(AffinityKey{key.src, serviceId});
    if (r.index != FixedMap<AffinityKey, AffinityRec>::kNone) {
      affinity_.at(r.index).value = AffinityRec{set.active[size_t(idx)].backendId, now};
    } else {
      ++counters_.reasons[size_t(Reason::AffinityFull)];  // forwarded, but not remembered
    }
  }
  return idx;
}

// ---------------------------------------------------------------------------------------
// Control path

Result Dataplane::upsertBackend(const BackendSpec& spec) {
  if (spec.id == 0) return {Status::Invalid, "backend id must be >= 1"};
  if (spec.weight == 0 || spec.weight > 65535)
    return {Status::Invalid, "backend " + num(spec.id) + " weight must be 1..65535"};
  BackendRec* existing = backends_.peek(spec.id);
  if (!existing && !roomForBackends(uint64_t(backends_.size()) + 1))
    return {Status::Full, "backends map is full (capacity " + num(backends_.capacity()) + ")"};
  bool moved = existing && (existing->addr != spec.addr || existing->port != spec.port);
  if (!existing)
    existing = &backends_.at(backends_.insert(spec.id).index).value;
  else
    ++backends_.stats().updates;
  BackendRec& b = *existing;
  if (moved) deleteFlowsByBackend(spec.id);  // flows hold the old address in their reply tuple
  bool changed = moved || b.state != spec.state || b.weight != spec.weight;
  b.addr = spec.addr;
  b.port = spec.port;
  b.state = spec.state;
  b.weight = spec.weight;
  b.nodeLocal = spec.nodeLocal;
  b.zone = spec.zone;
  if (changed && !b.services.empty()) rebuildServicesOf(b);
  return {};
}

void Dataplane::rebuildServicesOf(const BackendRec& b) {
  for (uint32_t sid : b.services) {
    ServiceRec* s = services_.peek(sid);
    if (!s || !s->set) continue;
    std::unique_ptr<BackendSet> set;
    if (buildSet(s->set->allIds, s->kind, set, s).ok()) s->set = std::move(set);
  }
}

Result Dataplane::deleteBackend(uint32_t id) {
  BackendRec* b = backends_.peek(id);
  if (!b) return {Status::NotFound, "backend " + num(id) + " does not exist"};
  if (!b->services.empty())
    return {Status::InUse, "backend " + num(id) + " is still listed by service " + num(b->services.front())};
  // Both removals scan a whole table; skip them when there is nothing to find, so removing an
  // idle endpoint (the common case at sync) costs O(1), not O(conntrack capacity).
  if (b->activeConns) deleteFlowsByBackend(id);
  std::unique_lock<std::mutex> shared = lockAffinity();
  if (affinityOwner_ && affinity_.size())
    for (uint32_t i = 0; i < affinity_.capacity(); ++i)
      if (affinity_.at(i).used && affinity_.at(i).value.backendId == id) affinity_.eraseAt(i);
  backends_.erase(id);
  return {};
}

Result Dataplane::buildSet(const std::vector<uint32_t>& ids, SchedulerKind kind, std::unique_ptr<BackendSet>& out,
                           ServiceRec* reuse) {
  auto set = std::make_unique<BackendSet>();
  set->allIds = ids;
  std::sort(set->allIds.begin(), set->allIds.end());
  set->allIds.erase(std::unique(set->allIds.begin(), set->allIds.end()), set->allIds.end());
  for (uint32_t id : set->allIds) {
    BackendRec* b = backends_.peek(id);
    if (!b) return {Status::NotFound, "backend " + num(id) + " does not exist"};
    if (b->state == BackendState::Active) {
      set->active.push_back(SchedBackend{id, b->weight, b->addr, b->port, &b->activeConns});
      set->activeSorted.push_back(id);
    }
  }
  // The same kind keeps its scheduler instance, rebuilt with the new set, so stateful ones
  // carry their place over as IPVS does (rr continues after the last backend picked, wrr
  // keeps its current weight). Nothing fails after this point, and the old set, which no
  // longer has a scheduler, is replaced by the new one before the next packet.
  if (reuse && reuse->set && reuse->set->scheduler && reuse->kind == kind)
    set->scheduler = std::move(reuse->set->scheduler);
  else
    set->scheduler = makeScheduler(kind, cfg_.sched);
  if (!set->scheduler)
    return {Status::Invalid, kind == SchedulerKind::Maglev
                                 ? "maglev table size " + num(cfg_.sched.maglevTableSize) + " is not a prime"
                                 : "unknown scheduler " + num(uint32_t(kind))};
  set->scheduler->rebuild(set->active);
  out = std::move(set);
  return {};
}

Result Dataplane::upsertService(const ServiceSpec& spec) {
  // 1. Validate everything; change nothing.
  if (spec.id == 0) return {Status::Invalid, "service id must be >= 1"};
  if (uint32_t(spec.kind) >= uint32_t(kSchedulerKinds)) return {Status::Invalid, "unknown scheduler"};
  if (spec.emptyVerdict != Verdict::Reject && spec.emptyVerdict != Verdict::Drop)
    return {Status::Invalid, "emptyVerdict must be reject or drop"};
  if (!services_.peek(spec.id) && !roomForServices(uint64_t(services_.size()) + 1))
    return {Status::Full, "services map is full (capacity " + num(services_.capacity()) + ")"};
  ServiceRec* existing = services_.peek(spec.id);  // after growth, which moves the records
  for (size_t i = 0; i < spec.frontends.size(); ++i) {
    const FrontendKey& k = spec.frontends[i].key;
    if (!isKnownProtocol(k.proto))
      return {Status::Invalid, "frontends[" + num(i) + "].protocol is not TCP, UDP or SCTP"};
    if (uint8_t(spec.frontends[i].masquerade) >= kMasqPolicies)
      return {Status::Invalid, "frontends[" + num(i) + "].masquerade is not a masquerade policy"};
    for (size_t j = 0; j < i; ++j)
      if (spec.frontends[j].key == k)
        return {Status::Invalid, "frontends[" + num(i) + "] repeats frontends[" + num(j) + "]"};
    if (const FrontendRec* fe = frontends_.peek(k); fe && fe->serviceId != spec.id)
      return {Status::Conflict, "frontends[" + num(i) + "] is already a frontend of service " + num(fe->serviceId)};
  }
  size_t added = 0, dropped = 0;
  for (const FrontendSpec& f : spec.frontends)
    if (!frontends_.peek(f.key)) ++added;
  if (existing)
    for (const FrontendKey& old : existing->frontends) {
      bool kept = std::any_of(spec.frontends.begin(), spec.frontends.end(),
                              [&](const FrontendSpec& f) { return f.key == old; });
      if (!kept) ++dropped;
    }
  if (!roomForFrontends(uint64_t(frontends_.size()) - dropped + added))
    return {Status::Full, "frontends map is full (capacity " + num(frontends_.capacity()) + ")"};
  std::unique_ptr<BackendSet> set;
  if (Result r = buildSet(spec.backendIds, spec.kind, set, existing); !r.ok()) return r;

  // 2. Apply. Nothing below can fail.
  if (!existing)
    existing = &services_.at(services_.insert(spec.id).index).value;
  else
    ++services_.stats().updates;
  ServiceRec& svc = *existing;
  for (const FrontendKey& old : svc.frontends) {
    bool kept =
        std::any_of(spec.frontends.begin(), spec.frontends.end(), [&](const FrontendSpec& f) { return f.key == old; });
    if (kept) continue;
    if (const FrontendRec* fe = frontends_.peek(old)) revnat_.erase(fe->revNatId);
    frontends_.erase(old);
  }
  svc.frontends.clear();
  for (const FrontendSpec& f : spec.frontends) {
    auto r = frontends_.insert(f.key);
    FrontendRec& fe = frontends_.at(r.index).value;
    if (r.inserted) {
      fe.serviceId = spec.id;
      // Ids are never reused while flows may hold them: a slab index would pass a dropped
      // frontend's id to the next new one, and its old flows' replies would be rewritten to it.
      do {
        if (++nextRevNatId_ == 0) ++nextRevNatId_;
      } while (revnat_.peek(nextRevNatId_));
      fe.revNatId = nextRevNatId_;
      RevNatRec& rn = revnat_.at(revnat_.insert(fe.revNatId).index).value;
      rn.addr = f.key.addr;
      rn.port = f.key.port;
    }
    fe.checkSourceRanges = f.checkSourceRanges;
    fe.masq = f.masquerade;
    fe.service = &svc;
    svc.frontends.push_back(f.key);
  }
  if (svc.set)
    for (uint32_t id : svc.set->allIds)
      if (BackendRec* b = backends_.peek(id)) std::erase(b->services, spec.id);
  for (uint32_t id : set->allIds) backends_.peek(id)->services.push_back(spec.id);
  svc.kind = spec.kind;
  svc.affinityTimeoutNs = spec.affinityTimeoutNs;
  svc.emptyVerdict = spec.emptyVerdict;
  svc.sourceRanges = spec.sourceRanges;
  svc.set = std::move(set);
  return {};
}

bool Dataplane::roomForServices(uint64_t need) {
  if (need <= services_.capacity()) return true;
  if (need > cfg_.maxServices) return false;
  services_.grow(grownSize(services_.capacity(), need, cfg_.maxServices));
  relinkFrontends();
  return true;
}

void Dataplane::relinkFrontends() {
  for (uint32_t i = 0; i < frontends_.capacity(); ++i)
    if (auto& e = frontends_.at(i); e.used) e.value.service = services_.peek(e.value.serviceId);
}

bool Dataplane::roomForFrontends(uint64_t need) {
  if (need <= frontends_.capacity() && need <= revnat_.capacity()) return true;
  if (need > cfg_.maxFrontends) return false;
  uint32_t size = grownSize(frontends_.capacity(), need, cfg_.maxFrontends);
  frontends_.grow(size);
  revnat_.grow(size);
  return true;
}

// Backend records move when the map grows: every backend set points at its backends'
// connection counts, so those pointers are refreshed, and the schedulers that read them
// (lc, wlc) are handed the refreshed set.
bool Dataplane::roomForBackends(uint64_t need) {
  if (need <= backends_.capacity()) return true;
  if (need > cfg_.maxBackends) return false;
  backends_.grow(grownSize(backends_.capacity(), need, cfg_.maxBackends));
  for (uint32_t i = 0; i < services_.capacity(); ++i) {
    auto& e = services_.at(i);
    if (!e.used || !e.value.set) continue;
    BackendSet& set = *e.value.set;
    for (SchedBackend& b : set.active) b.activeConns = &backends_.peek(b.backendId)->activeConns;
    if (e.value.kind == SchedulerKind::LeastConn || e.value.kind == SchedulerKind::WeightedLeastConn)
      set.scheduler->rebuild(set.active);
  }
  return true;
}

Result Dataplane::reserve(uint32_t services, uint32_t frontends, uint32_t backends) {
  if (services > cfg_.maxServices)
    return {Status::Full, "services map cannot hold " + num(services) + " (capacity " + num(cfg_.maxServices) + ")"};
  if (frontends > cfg_.maxFrontends)
    return {Status::Full, "frontends map cannot hold " + num(frontends) + " (capacity " + num(cfg_.maxFrontends) + ")"};
  if (backends > cfg_.maxBackends)
    return {Status::Full, "backends map cannot hold " + num(backends) + " (capacity " + num(cfg_.maxBackends) + ")"};
  if (services > services_.capacity()) {
    services_.grow(services);
    relinkFrontends();
  }
  if (frontends > frontends_.capacity()) frontends_.grow(frontends);
  if (frontends > revnat_.capacity()) revnat_.grow(frontends);
  roomForBackends(backends);
  return {};
}

Result Dataplane::deleteService(uint32_t id) {
  ServiceRec* svc = services_.peek(id);
  if (!svc) return {Status::NotFound, "service " + num(id) + " does not exist"};
  for (const FrontendKey& k : svc->frontends) {
    if (const FrontendRec* fe = frontends_.peek(k)) revnat_.erase(fe->revNatId);
    frontends_.erase(k);
  }
  if (svc->set)
    for (uint32_t bid : svc->set->allIds)
      if (BackendRec* b = backends_.peek(bid)) std::erase(b->services, id);
  if (ct_.size()) deleteFlowsByService(id);
  std::unique_lock<std::mutex> shared = lockAffinity();
  if (affinityOwner_ && affinity_.size())
    for (uint32_t i = 0; i < affinity_.capacity(); ++i)
      if (affinity_.at(i).used && affinity_.at(i).key.serviceId == id) affinity_.eraseAt(i);
  services_.erase(id);
  return {};
}

bool Dataplane::schedulerTable(uint32_t serviceId, std::vector<uint32_t>& out) {
  out.clear();
  const ServiceRec* s = services_.peek(serviceId);
  if (!s || !s->set) return false;
  // The table holds positions in the canonical (address, port) order, not in `active`.
  auto table = s->set->scheduler->table();
  auto order = sched::canonicalOrder(s->set->active);
  out.resize(table.size());
  for (size_t i = 0; i < table.size(); ++i)
    out[i] = table[i] < order.size() ? s->set->active[order[table[i]]].backendId : 0;
  return true;
}

uint32_t Dataplane::deleteFlowsByBackend(uint32_t backendId) {
  return ct_.removeIf([&](const Flow& f) { return f.backendId == backendId; },
                      [this](const Flow& f) { onFlowRemoved(f); });
}

uint32_t Dataplane::deleteFlowsByService(uint32_t serviceId) {
  return ct_.removeIf([&](const Flow& f) { return f.serviceId == serviceId; },
                      [this](const Flow& f) { onFlowRemoved(f); });
}

void Dataplane::flushConntrack() {
  ct_.removeIf([](const Flow&) { return true; }, [this](const Flow& f) { onFlowRemoved(f); });
}

uint32_t Dataplane::gc(uint64_t now, uint32_t budget) {
  return ct_.gc(now, budget, [this](const Flow& f) { onFlowRemoved(f); });
}

std::unique_lock<std::mutex> Dataplane::lockAffinity() {
  return sharedAffinity_ ? std::unique_lock<std::mutex>(sharedAffinity_->mutex) : std::unique_lock<std::mutex>();
}

uint32_t Dataplane::gcAffinity(uint64_t now, uint32_t budget) {
  if (!affinityOwner_) return 0;
  std::unique_lock<std::mutex> shared = lockAffinity();
  uint32_t removed = 0, cap = affinity_.capacity();
  for (uint32_t n = 0; n < budget && n < cap; ++n) {
    uint32_t i = affinityGcCursor_;
    affinityGcCursor_ = i + 1 == cap ? 0 : i + 1;
    auto& e = affinity_.at(i);
    if (!e.used) continue;
    const ServiceRec* svc = services_.peek(e.key.serviceId);
    if (!svc || e.value.lastUsed + svc->affinityTimeoutNs <= now) {
      affinity_.expireAt(i);
      ++removed;
    }
  }
  return removed;
}

}  // namespace svcplane

// The C ABI (include/svcplane.h) over the C++ core: converts the plain C structs to the
// core's, checks what the core does not (NULL pointers, enum ranges, array lengths), and keeps
// the last error message per handle. Nothing here is on the core's side of the boundary: the
// core stays free of C ABI concerns.
#include "svcplane.h"

#include <arpa/inet.h>
#include <sys/random.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>

#include "bridge/batch.h"
#include "bridge/names.h"
#include "bridge/validate.h"
#include "core/dataplane.h"
#include "core/flow_handoff.h"
#include "core/sharded_dataplane.h"

using namespace svcplane;

// One of dp (svcplane_create) or sharded (svcplane_create_sharded) is set.
struct svcplane_handle {
  std::unique_ptr<Dataplane> dp;
  std::unique_ptr<ShardedDataplane> sharded;
  std::string error;
};

namespace {

// A sharded handle is called from several threads at once: its last error is per thread.
thread_local std::string tlsError;

std::string& errorOf(svcplane_t* h) { return h->sharded ? tlsError : h->error; }

// Runs f on the handle's control target: the Dataplane, or the ShardedDataplane (which applies
// the call to every shard). Both have the same control methods.
template <class F>
auto control(svcplane_t* h, F&& f) {
  return h->sharded ? f(*h->sharded) : f(*h->dp);
}

constexpr uint64_t kSec = 1000000000ull;

int fail(svcplane_t* h, int status, std::string message) {
  if (h) errorOf(h) = std::move(message);
  return status;
}

int statusOf(Status s) {
  switch (s) {
    case Status::Ok: return SVCPLANE_OK;
    case Status::NotFound: return SVCPLANE_ERR_NOT_FOUND;
    case Status::InUse: return SVCPLANE_ERR_IN_USE;
    case Status::Conflict: return SVCPLANE_ERR_CONFLICT;
    case Status::Full: return SVCPLANE_ERR_FULL;
    case Status::Invalid: return SVCPLANE_ERR_INVALID;
  }
  return SVCPLANE_ERR_INVALID;
}

int fromResult(svcplane_t* h, const Result& r) {
  if (r.ok()) {
    errorOf(h).clear();
    return SVCPLANE_OK;
  }
  return fail(h, statusOf(r.status), r.message);
}

void copyError(char* buf, size_t len, const std::string& msg) {
  if (!buf || len == 0) return;
  std::snprintf(buf, len, "%s", msg.c_str());
}

IpAddr toAddr(const svcplane_addr& a) {
  IpAddr r;
  std::memcpy(r.b, a.bytes, 16);
  return r;
}

svcplane_addr fromAddr(const IpAddr& a) {
  svcplane_addr r;
  std::memcpy(r.bytes, a.b, 16);
  return r;
}

void toFlowInput(const svcplane_flow& f, FlowInput& in) {
  in = FlowInput{};
  in.key.src = toAddr(f.src);
  in.key.dst = toAddr(f.dst);
  in.key.sport = f.sport;
  in.key.dport = f.dport;
  in.key.proto = f.protocol;
  in.scope = f.scope == SVCPLANE_SCOPE_INTERNAL ? Scope::Internal : Scope::External;
  in.tcpFlags = f.tcp_flags;
  in.bytes = f.bytes;
}

void fromDecision(const Decision& d, svcplane_decision& out) {
  std::memset(&out, 0, sizeof out);
  out.verdict = uint8_t(d.verdict);
  out.reason = uint8_t(d.reason);
  out.established = d.established ? 1 : 0;
  out.affinity_hit = d.affinityHit ? 1 : 0;
  out.port = d.port;
  out.service_id = d.serviceId;
  out.backend_id = d.backendId;
  out.addr = fromAddr(d.addr);
}

svcplane_flow fromKey(const FlowKey& k) {
  svcplane_flow f;
  std::memset(&f, 0, sizeof f);
  f.src = fromAddr(k.src);
  f.dst = fromAddr(k.dst);
  f.sport = k.sport;
  f.dport = k.dport;
  f.protocol = k.proto;
  return f;
}

template <class M>
void mapInfo(const char* name, const M& m, svcplane_map_info& out) {
  std::memset(&out, 0, sizeof out);
  std::snprintf(out.name, sizeof out.name, "%s", name);
  out.size = m.size();
  out.capacity = m.capacity();
  out.bytes = m.bytes();
  const MapStats& s = m.stats();
  out.hits = s.hits;
  out.misses = s.misses;
  out.inserts = s.inserts;
  out.updates = s.updates;
  out.deletes = s.deletes;
  out.evictions = s.evictions;
  out.refusals = s.refusals;
  out.expirations = s.expirations;
}

// Runs f(Dataplane&) on the dataplane of one shard (under its mutex); an unsharded handle has
// the one shard 0. Returns the status; a shard out of range fails with a message.
template <class F>
int onShard(svcplane_t* h, uint32_t shard, F&& f) {
  const uint32_t n = h->sharded ? h->sharded->shards() : 1;
  if (shard >= n)
    return fail(h, SVCPLANE_ERR_INVALID,
                "shard " + std::to_string(shard) + " out of range (the handle has " + std::to_string(n) + ")");
  if (!h->sharded) {
    f(*h->dp);
  } else {
    h->sharded->withShard(shard, [&](Dataplane& dp) {
      f(dp);
      return 0;
    });
  }
  return SVCPLANE_OK;
}

// The calls without a shard index decide on shard 0; on a handle of several shards that would
// split flows from their replies, so they are refused there.
int singleShard(svcplane_t* h) {
  if (h->sharded && h->sharded->shards() > 1)
    return fail(h, SVCPLANE_ERR_INVALID,
                "the handle has " + std::to_string(h->sharded->shards()) +
                    " shards: use svcplane_shard_decide_batch / svcplane_shard_process_packets");
  return SVCPLANE_OK;
}

void addMapInfo(svcplane_map_info& into, const svcplane_map_info& m) {
  into.size += m.size;
  into.capacity += m.capacity;
  into.bytes += m.bytes;
  into.hits += m.hits;
  into.misses += m.misses;
  into.inserts += m.inserts;
  into.updates += m.updates;
  into.deletes += m.deletes;
  into.evictions += m.evictions;
  into.refusals += m.refusals;
  into.expirations += m.expirations;
}

uint64_t randomSeed() {
  uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) != ssize_t(sizeof v)) {
    // No entropy source: still distinct per process and per call.
    static uint64_t counter = 0;
    v = uint64_t(reinterpret_cast<uintptr_t>(&v)) ^ (uint64_t(getpid()) << 32) ^ ++counter;
  }
  return v;
}

// The default timeouts of the core, in seconds, in svcplane_timeouts field order.
void timeoutsInit(svcplane_timeouts& t) {
  CtTimeouts d = CtTimeouts::defaults();
  auto s = [&](CtState st) { return uint32_t(d.ns[size_t(st)] / kSec); };
  t.tcp_syn_sent = s(CtState::TcpSynSent);
  t.tcp_syn_recv = s(CtState::TcpSynRecv);
  t.tcp_established = s(CtState::TcpEstablished);
  t.tcp_fin_wait = s(CtState::TcpFinWait);
  t.tcp_close_wait = s(CtState::TcpCloseWait);
  t.tcp_last_ack = s(CtState::TcpLastAck);
  t.tcp_time_wait = s(CtState::TcpTimeWait);
  t.tcp_close = s(CtState::TcpClose);
  t.udp = s(CtState::Udp);
  t.udp_stream = s(CtState::UdpStream);
  t.sctp = s(CtState::Sctp);
}

void applyTimeouts(const svcplane_timeouts& t, CtTimeouts& out) {
  auto set = [&](CtState st, uint32_t seconds) {
    if (seconds) out.ns[size_t(st)] = uint64_t(seconds) * kSec;
  };
  set(CtState::TcpSynSent, t.tcp_syn_sent);
  set(CtState::TcpSynRecv, t.tcp_syn_recv);
  set(CtState::TcpEstablished, t.tcp_established);
  set(CtState::TcpFinWait, t.tcp_fin_wait);
  set(CtState::TcpCloseWait, t.tcp_close_wait);
  set(CtState::TcpLastAck, t.tcp_last_ack);
  set(CtState::TcpTimeWait, t.tcp_time_wait);
  set(CtState::TcpClose, t.tcp_close);
  set(CtState::Udp, t.udp);
  set(CtState::UdpStream, t.udp_stream);
  set(CtState::Sctp, t.sctp);
}

}  // namespace

extern "C" {

uint32_t svcplane_abi_version(void) { return SVCPLANE_ABI_VERSION; }

void svcplane_config_init(svcplane_config* cfg) {
  if (!cfg) return;
  std::memset(cfg, 0, sizeof *cfg);
  DataplaneConfig d;
  cfg->max_services = d.maxServices;
  cfg->max_frontends = d.maxFrontends;
  cfg->max_backends = d.maxBackends;
  cfg->max_flows = d.maxFlows;
  cfg->max_affinity = d.maxAffinity;
  cfg->max_nat_ports = d.maxNatPorts;
  cfg->max_fragments = d.maxFragments;
  cfg->conntrack_full_policy = SVCPLANE_FULL_EVICT_OLDEST;
  cfg->affinity_full_policy = SVCPLANE_FULL_EVICT_OLDEST;
  cfg->maglev_table_size = d.sched.maglevTableSize;
  timeoutsInit(cfg->timeouts);
}

namespace {

// svcplane_create's work, with the number of shards (0: an unsharded handle).
int create(const svcplane_config* cfg, uint32_t shards, svcplane_t** out, char* error, size_t error_len) {
  if (!out) {
    copyError(error, error_len, "out must not be NULL");
    return SVCPLANE_ERR_INVALID;
  }
  *out = nullptr;
  svcplane_config c;
  if (cfg)
    c = *cfg;
  else
    svcplane_config_init(&c);

  DataplaneConfig d;
  struct Cap {
    const char* name;
    uint32_t value;
    uint32_t* into;
  } caps[] = {{"max_services", c.max_services, &d.maxServices},   {"max_frontends", c.max_frontends, &d.maxFrontends},
              {"max_backends", c.max_backends, &d.maxBackends},   {"max_flows", c.max_flows, &d.maxFlows},
              {"max_affinity", c.max_affinity, &d.maxAffinity},   {"max_nat_ports", c.max_nat_ports, &d.maxNatPorts},
              {"max_fragments", c.max_fragments, &d.maxFragments}};
  for (const Cap& cap : caps) {
    if (cap.value == 0) continue;
    if (Result r = bridge::checkCapacity(cap.name, cap.value); !r.ok()) {
      copyError(error, error_len, r.message);
      return SVCPLANE_ERR_INVALID;
    }
    *cap.into = cap.value;
  }
  for (Result r : {bridge::checkFullPolicy("conntrack_full_policy", c.conntrack_full_policy),
                   bridge::checkFullPolicy("affinity_full_policy", c.affinity_full_policy)})
    if (!r.ok()) {
      copyError(error, error_len, r.message);
      return SVCPLANE_ERR_INVALID;
    }
  d.conntrackPolicy = FullPolicy(c.conntrack_full_policy);
  d.affinityPolicy = FullPolicy(c.affinity_full_policy);
  if (c.maglev_table_size != 0) {
    if (Result r = bridge::checkMaglevTableSize("maglev_table_size", c.maglev_table_size); !r.ok()) {
      copyError(error, error_len, r.message);
      return SVCPLANE_ERR_INVALID;
    }
    d.sched.maglevTableSize = c.maglev_table_size;
  }
  if (c.maglev_seed != 0) d.sched.maglevSeed = c.maglev_seed;
  d.seed = c.seed_is_set ? c.seed : randomSeed();
  d.rngSeed = c.rng_seed;
  applyTimeouts(c.timeouts, d.timeouts);

  auto* h = new (std::nothrow) svcplane_handle();
  if (!h) {
    copyError(error, error_len, "out of memory");
    return SVCPLANE_ERR_NO_MEMORY;
  }
  try {
    if (shards)
      h->sharded = std::make_unique<ShardedDataplane>(d, shards);
    else
      h->dp = std::make_unique<Dataplane>(d);
  } catch (const std::bad_alloc&) {
    delete h;
    copyError(error, error_len, "out of memory allocating the maps");
    return SVCPLANE_ERR_NO_MEMORY;
  }
  *out = h;
  copyError(error, error_len, "");
  return SVCPLANE_OK;
}

}  // namespace

int svcplane_create(const svcplane_config* cfg, svcplane_t** out, char* error, size_t error_len) {
  return create(cfg, 0, out, error, error_len);
}

int svcplane_create_sharded(const svcplane_config* cfg, uint32_t shards, svcplane_t** out, char* error,
                            size_t error_len) {
  if (shards < 1 || shards > ShardedDataplane::kMaxShards) {
    if (out) *out = nullptr;
    copyError(error, error_len,
              "shards must be 1.." + std::to_string(ShardedDataplane::kMaxShards) + ", got " + std::to_string(shards));
    return SVCPLANE_ERR_INVALID;
  }
  return create(cfg, shards, out, error, error_len);
}

void svcplane_destroy(svcplane_t* dp) { delete dp; }

const char* svcplane_last_error(const svcplane_t* dp) {
  if (!dp) return "handle is NULL";
  return dp->sharded ? tlsError.c_str() : dp->error.c_str();
}

uint32_t svcplane_shards(const svcplane_t* dp) { return !dp ? 0 : dp->sharded ? dp->sharded->shards() : 1; }

uint32_t svcplane_shard_of_flow(svcplane_t* h, const svcplane_flow* flow) {
  if (!h || !flow || !h->sharded) return 0;
  FlowInput in;
  toFlowInput(*flow, in);
  return h->sharded->shardOfFlow(in.key);
}

uint32_t svcplane_shard_of_packet(svcplane_t* h, const uint8_t* data, uint32_t len,
                                  const svcplane_packet_options* opt) {
  if (!h || !data || !h->sharded) return 0;
  PacketOptions o;
  if (opt) {
    o.dir = opt->direction == SVCPLANE_DIR_FROM_BACKEND ? PacketDirection::FromBackend : PacketDirection::ToService;
    o.link = opt->link == SVCPLANE_LINK_RAW ? LinkType::Raw : LinkType::Ethernet;
  }
  return h->sharded->shardOfPacket(data, len, o);
}

int svcplane_upsert_backend(svcplane_t* h, const svcplane_backend* b) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (!b) return fail(h, SVCPLANE_ERR_INVALID, "backend must not be NULL");
  if (Result r = bridge::checkBackendState(b->id, b->state); !r.ok()) return fromResult(h, r);
  BackendSpec s{};
  s.id = b->id;
  s.addr = toAddr(b->addr);
  s.port = b->port;
  s.state = BackendState(b->state);
  s.weight = b->weight == 0 ? 1 : b->weight;
  s.nodeLocal = b->node_local != 0;
  s.zone = b->zone;
  return fromResult(h, control(h, [&](auto& d) { return d.upsertBackend(s); }));
}

int svcplane_delete_backend(svcplane_t* h, uint32_t id) {
  if (!h) return SVCPLANE_ERR_INVALID;
  return fromResult(h, control(h, [&](auto& d) { return d.deleteBackend(id); }));
}

int svcplane_upsert_service(svcplane_t* h, const svcplane_service* s) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (!s) return fail(h, SVCPLANE_ERR_INVALID, "service must not be NULL");
  const std::string who = "service " + std::to_string(s->id);
  if ((s->n_frontends && !s->frontends) || (s->n_backends && !s->backend_ids) ||
      (s->n_source_ranges && !s->source_ranges))
    return fail(h, SVCPLANE_ERR_INVALID, who + ": an array with a non-zero count is NULL");
  if (Result r = bridge::checkScheduler(who, s->scheduler); !r.ok()) return fromResult(h, r);
  if (Result r = bridge::checkEmptyVerdict(who, s->empty_verdict); !r.ok()) return fromResult(h, r);
  ServiceSpec spec;
  spec.id = s->id;
  spec.kind = SchedulerKind(s->scheduler);
  spec.affinityTimeoutNs = s->affinity_timeout_ns;
  spec.emptyVerdict = Verdict(s->empty_verdict);
  try {
    spec.frontends.reserve(s->n_frontends);
    for (uint32_t i = 0; i < s->n_frontends; ++i) {
      const svcplane_frontend& f = s->frontends[i];
      if (Result r = bridge::checkFrontend(who, i, f.protocol, f.scope, f.masquerade); !r.ok()) return fromResult(h, r);
      FrontendSpec fs{};
      fs.masquerade = MasqPolicy(f.masquerade);
      fs.key.addr = toAddr(f.addr);
      fs.key.port = f.port;
      fs.key.proto = f.protocol;
      fs.key.scope = f.scope;
      fs.checkSourceRanges = f.check_source_ranges != 0;
      spec.frontends.push_back(fs);
    }
    spec.backendIds.assign(s->backend_ids, s->backend_ids + s->n_backends);
    for (uint32_t i = 0; i < s->n_source_ranges; ++i) {
      const svcplane_cidr& c = s->source_ranges[i];
      Cidr r{};
      r.net = toAddr(c.addr);
      if (Result e = bridge::checkPrefix(who + " source_ranges[" + std::to_string(i) + "]", r.net, c.prefix_len);
          !e.ok())
        return fromResult(h, e);
      r.bits = uint8_t(r.net.isV4() ? c.prefix_len + 96 : c.prefix_len);
      spec.sourceRanges.push_back(r);
    }
    return fromResult(h, control(h, [&](auto& d) { return d.upsertService(spec); }));
  } catch (const std::bad_alloc&) { return fail(h, SVCPLANE_ERR_NO_MEMORY, who + ": out of memory"); }
}

int svcplane_delete_service(svcplane_t* h, uint32_t id) {
  if (!h) return SVCPLANE_ERR_INVALID;
  return fromResult(h, control(h, [&](auto& d) { return d.deleteService(id); }));
}

int svcplane_decide(svcplane_t* h, const svcplane_flow* flow, uint64_t now_ns, svcplane_decision* out) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (!flow || !out) return fail(h, SVCPLANE_ERR_INVALID, "flow and out must not be NULL");
  if (int st = singleShard(h)) return st;
  FlowInput in;
  toFlowInput(*flow, in);
  Decision d;
  if (h->dp)
    h->dp->decide(in, now_ns, d);
  else
    h->sharded->decide(0, in, now_ns, d);
  fromDecision(d, *out);
  return SVCPLANE_OK;
}

int svcplane_shard_of_packets(svcplane_t* h, const svcplane_packet* pkts, uint32_t n,
                              const svcplane_packet_options* opt, uint32_t* shards) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (n == 0) return SVCPLANE_OK;
  if (!pkts || !shards) return fail(h, SVCPLANE_ERR_INVALID, "pkts and shards must not be NULL");
  for (uint32_t i = 0; i < n; ++i)
    if (!pkts[i].data && pkts[i].len)
      return fail(h, SVCPLANE_ERR_INVALID, "pkts[" + std::to_string(i) + "].data is NULL");
  if (!h->sharded) {
    std::memset(shards, 0, sizeof *shards * n);
    return SVCPLANE_OK;
  }
  PacketOptions o;
  if (opt) {
    o.dir = opt->direction == SVCPLANE_DIR_FROM_BACKEND ? PacketDirection::FromBackend : PacketDirection::ToService;
    o.link = opt->link == SVCPLANE_LINK_RAW ? LinkType::Raw : LinkType::Ethernet;
  }
  h->sharded->shardsOfPackets(reinterpret_cast<const PacketRef*>(pkts), n, o, shards);
  return SVCPLANE_OK;
}

int svcplane_shard_decide_batch(svcplane_t* h, uint32_t shard, const svcplane_flow* flows, uint32_t n, uint64_t now_ns,
                                svcplane_decision* out) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (n == 0) return SVCPLANE_OK;
  if (!flows || !out) return fail(h, SVCPLANE_ERR_INVALID, "flows and out must not be NULL");
  return onShard(h, shard, [&](Dataplane& dp) {
    bridge::decideChunked(
        dp, n, now_ns, [&](uint32_t i, FlowInput& in) { toFlowInput(flows[i], in); },
        [&](uint32_t i, const Decision& d) { fromDecision(d, out[i]); });
  });
}

int svcplane_decide_batch(svcplane_t* h, const svcplane_flow* flows, uint32_t n, uint64_t now_ns,
                          svcplane_decision* out) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (int st = singleShard(h)) return st;
  return svcplane_shard_decide_batch(h, 0, flows, n, now_ns, out);
}

static_assert(sizeof(svcplane_packet) == sizeof(PacketRef) &&
                  offsetof(svcplane_packet, data) == offsetof(PacketRef, data) &&
                  offsetof(svcplane_packet, len) == offsetof(PacketRef, len),
              "svcplane_packet must have PacketRef's layout: batches are passed through without a copy");
static_assert(kPacketReasons == SVCPLANE_PACKET_REASONS && kPktCounters == SVCPLANE_PKT_COUNTS,
              "C ABI packet counters out of step with the core");

int svcplane_set_packet_config(svcplane_t* h, const svcplane_packet_config* c) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (!c) return fail(h, SVCPLANE_ERR_INVALID, "packet config must not be NULL");
  if ((c->n_node_addrs && !c->node_addrs) || (c->n_pod_cidrs && !c->pod_cidrs))
    return fail(h, SVCPLANE_ERR_INVALID, "packet config: an array with a non-zero count is NULL");
  try {
    PacketConfig pc;
    for (uint32_t i = 0; i < c->n_node_addrs; ++i) pc.nodeAddrs.push_back(toAddr(c->node_addrs[i]));
    for (uint32_t i = 0; i < c->n_pod_cidrs; ++i) {
      Cidr r{};
      r.net = toAddr(c->pod_cidrs[i].addr);
      uint8_t max = r.net.isV4() ? 32 : 128;
      if (c->pod_cidrs[i].prefix_len > max)
        return fail(h, SVCPLANE_ERR_INVALID,
                    "pod_cidrs[" + std::to_string(i) + "].prefix_len must be 0.." + std::to_string(max) + ", got " +
                        std::to_string(c->pod_cidrs[i].prefix_len));
      r.bits = uint8_t(r.net.isV4() ? c->pod_cidrs[i].prefix_len + 96 : c->pod_cidrs[i].prefix_len);
      pc.podCidrs.push_back(r);
    }
    pc.masqueradeAll = c->masquerade_all != 0;
    pc.hasMasq4 = c->has_masq4 != 0;
    pc.hasMasq6 = c->has_masq6 != 0;
    pc.masq4 = toAddr(c->masq4);
    pc.masq6 = toAddr(c->masq6);
    if (c->nat_port_low || c->nat_port_high) {
      pc.natPortLow = c->nat_port_low;
      pc.natPortHigh = c->nat_port_high;
    }
    return fromResult(h, control(h, [&](auto& d) { return d.setPacketConfig(pc); }));
  } catch (const std::bad_alloc&) { return fail(h, SVCPLANE_ERR_NO_MEMORY, "packet config: out of memory"); }
}

int svcplane_set_fragment_timeout(svcplane_t* h, uint64_t timeout_ns) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (timeout_ns == 0) return fail(h, SVCPLANE_ERR_INVALID, "fragment timeout must be > 0");
  const uint32_t n = svcplane_shards(h);
  for (uint32_t i = 0; i < n; ++i) onShard(h, i, [&](Dataplane& d) { d.setFragmentTimeout(timeout_ns); });
  return SVCPLANE_OK;
}

int svcplane_shard_process_packets(svcplane_t* h, uint32_t shard, svcplane_packet* pkts, uint32_t n,
                                   const svcplane_packet_options* opt, uint64_t now_ns, uint8_t* verdicts,
                                   uint8_t* reasons) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (n == 0) return SVCPLANE_OK;
  if (!pkts) return fail(h, SVCPLANE_ERR_INVALID, "pkts must not be NULL");
  for (uint32_t i = 0; i < n; ++i)
    if (!pkts[i].data && pkts[i].len)
      return fail(h, SVCPLANE_ERR_INVALID, "pkts[" + std::to_string(i) + "].data is NULL");
  PacketOptions o;
  ReplySink sink;
  if (opt) {
    if (opt->direction > SVCPLANE_DIR_FROM_BACKEND || opt->link > SVCPLANE_LINK_RAW ||
        opt->reject > SVCPLANE_REJECT_TCP_RESET)
      return fail(h, SVCPLANE_ERR_INVALID, "packet options: direction, link or reject out of range");
    o.dir = PacketDirection(opt->direction);
    o.link = LinkType(opt->link);
    o.fromNode = opt->from_node != 0;
    o.reject = RejectMode(opt->reject);
    if (opt->replies) {
      const svcplane_reply_sink& r = *opt->replies;
      if ((r.capacity && !r.data) || !r.offsets || !r.lengths || r.used > r.capacity)
        return fail(h, SVCPLANE_ERR_INVALID, "replies: data, offsets and lengths must be set and used <= capacity");
      sink.data = r.data;
      sink.capacity = r.capacity;
      sink.used = r.used;
      sink.offsets = r.offsets;
      sink.lengths = r.lengths;
      o.replies = &sink;
    }
  }
  // svcplane_packet has PacketRef's layout: chunks are passed through without a copy. A NULL
  // verdicts or reasons array gets a chunk-sized scratch one.
  int st = onShard(h, shard, [&](Dataplane& dp) {
    bridge::processChunked(
        dp, n, o, now_ns,
        [&](uint32_t base, uint32_t, PacketRef*) { return reinterpret_cast<const PacketRef*>(pkts + base); }, verdicts,
        reasons, o.replies);
  });
  if (st == SVCPLANE_OK && opt && opt->replies) opt->replies->used = sink.used;
  return st;
}

int svcplane_process_packets(svcplane_t* h, svcplane_packet* pkts, uint32_t n, const svcplane_packet_options* opt,
                             uint64_t now_ns, uint8_t* verdicts, uint8_t* reasons) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (int st = singleShard(h)) return st;
  return svcplane_shard_process_packets(h, 0, pkts, n, opt, now_ns, verdicts, reasons);
}

int svcplane_get_packet_counters(const svcplane_t* h, svcplane_packet_counters* out) {
  if (!h || !out) return SVCPLANE_ERR_INVALID;
  const PacketCounters c = h->sharded ? h->sharded->packetCounters() : h->dp->packetCounters();
  std::memset(out, 0, sizeof *out);
  out->packets = c.packets;
  for (int i = 0; i < kVerdicts; ++i) out->verdicts[i] = c.verdicts[i];
  for (int i = 0; i < kPacketReasons; ++i) out->reasons[i] = c.reasons[i];
  for (int i = 0; i < kPktCounters; ++i) out->counts[i] = c.counts[i];
  return SVCPLANE_OK;
}

int svcplane_lookup_flow(svcplane_t* h, const svcplane_flow* flow, svcplane_flow_info* out) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (!flow || !out) return fail(h, SVCPLANE_ERR_INVALID, "flow and out must not be NULL");
  FlowInput in;
  toFlowInput(*flow, in);
  bool found = false;
  // A sharded handle keeps the flow on the shard its tuples steer to.
  onShard(h, h->sharded ? h->sharded->shardOfFlow(in.key) : 0, [&](Dataplane& dp) {
    CtHit hit = dp.conntrack().peek(in.key);
    if (hit.flow == Conntrack::kNone) return;
    found = true;
    const Flow& f = dp.conntrack().at(hit.flow);
    std::memset(out, 0, sizeof *out);
    out->orig = fromKey(f.orig);
    out->reply = fromKey(f.reply);
    out->service_id = f.serviceId;
    out->backend_id = f.backendId;
    out->direction = hit.dir == Dir::Original ? 0 : 1;
    out->state = uint8_t(f.state);
    out->created_ns = f.created;
    out->last_seen_ns = f.lastSeen;
    out->expires_ns = f.expires;
    for (int i = 0; i < 2; ++i) {
      out->packets[i] = f.packets[i];
      out->bytes[i] = f.bytes[i];
    }
  });
  if (!found) return fail(h, SVCPLANE_ERR_NOT_FOUND, "no tracked flow for this tuple");
  errorOf(h).clear();
  return SVCPLANE_OK;
}

int svcplane_gc(svcplane_t* h, uint64_t now_ns, uint32_t budget, uint32_t* flows, uint32_t* affinity) {
  if (!h) return SVCPLANE_ERR_INVALID;
  uint32_t f = control(h, [&](auto& d) { return d.gc(now_ns, budget); });
  uint32_t a = control(h, [&](auto& d) { return d.gcAffinity(now_ns, budget); });
  if (flows) *flows = f;
  if (affinity) *affinity = a;
  return SVCPLANE_OK;
}

int svcplane_delete_flows_by_backend(svcplane_t* h, uint32_t backend_id, uint32_t* removed) {
  if (!h) return SVCPLANE_ERR_INVALID;
  uint32_t n = control(h, [&](auto& d) { return d.deleteFlowsByBackend(backend_id); });
  if (removed) *removed = n;
  return SVCPLANE_OK;
}

int svcplane_delete_flows_by_service(svcplane_t* h, uint32_t service_id, uint32_t* removed) {
  if (!h) return SVCPLANE_ERR_INVALID;
  uint32_t n = control(h, [&](auto& d) { return d.deleteFlowsByService(service_id); });
  if (removed) *removed = n;
  return SVCPLANE_OK;
}

int svcplane_flush_conntrack(svcplane_t* h, uint32_t* removed) {
  if (!h) return SVCPLANE_ERR_INVALID;
  uint32_t before = h->sharded ? h->sharded->flows() : h->dp->conntrack().size();
  control(h, [](auto& d) {
    d.flushConntrack();
    return 0;
  });
  if (removed) *removed = before;
  return SVCPLANE_OK;
}

int svcplane_get_counters(const svcplane_t* h, svcplane_counters* out) {
  if (!h || !out) return SVCPLANE_ERR_INVALID;
  const DataplaneCounters c = h->sharded ? h->sharded->counters() : h->dp->counters();
  static_assert(kVerdicts == SVCPLANE_VERDICTS && kReasons == SVCPLANE_REASONS,
                "C ABI counters out of step with the core");
  std::memset(out, 0, sizeof *out);
  out->packets = c.packets;
  for (int i = 0; i < kVerdicts; ++i) out->verdicts[i] = c.verdicts[i];
  for (int i = 0; i < kReasons; ++i) out->reasons[i] = c.reasons[i];
  return SVCPLANE_OK;
}

int svcplane_map_info_get(const svcplane_t* ch, uint32_t map, svcplane_map_info* out) {
  if (!ch || !out || map > SVCPLANE_MAP_CONNTRACK) return SVCPLANE_ERR_INVALID;
  auto* h = const_cast<svcplane_t*>(ch);  // inspection takes the shards' mutexes, nothing more
  if (h->sharded && map == SVCPLANE_MAP_AFFINITY) {
    h->sharded->withAffinity([&](const FixedMap<AffinityKey, AffinityRec>& m) { mapInfo("affinity", m, *out); });
    return SVCPLANE_OK;
  }
  // The service maps are alike in every shard (shard 0's are reported); conntrack is the sum of
  // the shards'.
  svcplane_map_info sum;
  std::memset(&sum, 0, sizeof sum);
  const uint32_t shards = map == SVCPLANE_MAP_CONNTRACK ? svcplane_shards(h) : 1;
  for (uint32_t i = 0; i < shards; ++i)
    onShard(h, i, [&](Dataplane& dp) {
      switch (map) {
        case SVCPLANE_MAP_SERVICES: mapInfo("services", dp.services(), *out); break;
        case SVCPLANE_MAP_FRONTENDS: mapInfo("frontends", dp.frontends(), *out); break;
        case SVCPLANE_MAP_BACKENDS: mapInfo("backends", dp.backends(), *out); break;
        case SVCPLANE_MAP_REVNAT: mapInfo("revnat", dp.revnat(), *out); break;
        case SVCPLANE_MAP_AFFINITY: mapInfo("affinity", dp.affinity(), *out); break;
        default: mapInfo("conntrack", dp.conntrack(), *out); break;
      }
      addMapInfo(sum, *out);
    });
  if (shards > 1) {
    std::memcpy(sum.name, out->name, sizeof sum.name);
    *out = sum;
  }
  return SVCPLANE_OK;
}

svcplane_addr svcplane_addr_v4(uint32_t host_order) { return fromAddr(IpAddr::v4(host_order)); }

int svcplane_addr_parse(const char* text, svcplane_addr* out) {
  if (!text || !out) return SVCPLANE_ERR_INVALID;
  uint8_t v4[4];
  if (inet_pton(AF_INET, text, v4) == 1) {
    *out = fromAddr(IpAddr::v4(uint32_t(v4[0]) << 24 | uint32_t(v4[1]) << 16 | uint32_t(v4[2]) << 8 | v4[3]));
    return SVCPLANE_OK;
  }
  if (inet_pton(AF_INET6, text, out->bytes) == 1) return SVCPLANE_OK;
  return SVCPLANE_ERR_INVALID;
}

int svcplane_addr_format(const svcplane_addr* a, char* buf, size_t len) {
  if (!a || !buf || len < INET6_ADDRSTRLEN) return SVCPLANE_ERR_INVALID;
  IpAddr ip = toAddr(*a);
  const char* ok =
      ip.isV4() ? inet_ntop(AF_INET, ip.b + 12, buf, socklen_t(len)) : inet_ntop(AF_INET6, ip.b, buf, socklen_t(len));
  return ok ? SVCPLANE_OK : SVCPLANE_ERR_INVALID;
}

const char* svcplane_verdict_name(uint8_t v) { return bridge::nameAt(bridge::kVerdictNames, v); }

const char* svcplane_reason_name(uint8_t r) {
  static_assert(bridge::count(bridge::kReasonNames) == SVCPLANE_PACKET_REASONS, "the C ABI's reasons are the core's");
  return bridge::nameAt(bridge::kReasonNames, r);
}

const char* svcplane_status_name(int s) {
  if (s == SVCPLANE_ERR_NO_MEMORY)
    return "no-memory";  // the C ABI's own status (the core never allocates-and-fails softly)
  return s >= 0 ? bridge::nameAt(bridge::kStatusNames, size_t(s)) : "unknown";
}

int svcplane_export_flows(svcplane_t* h, uint64_t now_ns, uint8_t* buf, size_t cap, size_t* len) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (!len) return fail(h, SVCPLANE_ERR_INVALID, "len must not be NULL");
  if (h->sharded)
    return fail(h, SVCPLANE_ERR_INVALID, "flow handoff takes a handle of svcplane_create, not a sharded one");
  try {
    std::vector<uint8_t> blob = exportFlows(*h->dp, now_ns);
    *len = blob.size();
    if (!buf || cap < blob.size())
      return fail(h, SVCPLANE_ERR_FULL, "export flows: the buffer is too small (*len: the size needed)");
    std::memcpy(buf, blob.data(), blob.size());
    return SVCPLANE_OK;
  } catch (const std::bad_alloc&) { return fail(h, SVCPLANE_ERR_NO_MEMORY, "export flows: out of memory"); }
}

int svcplane_import_flows(svcplane_t* h, const uint8_t* blob, size_t len, uint64_t now_ns, uint32_t* imported,
                          uint32_t* dropped) {
  if (!h) return SVCPLANE_ERR_INVALID;
  if (!blob) return fail(h, SVCPLANE_ERR_INVALID, "blob must not be NULL");
  if (h->sharded)
    return fail(h, SVCPLANE_ERR_INVALID, "flow handoff takes a handle of svcplane_create, not a sharded one");
  try {
    HandoffCounts n;
    Result r = importFlows(*h->dp, blob, len, now_ns, n);
    if (!r.ok()) return fail(h, statusOf(r.status), r.message);
    if (imported) *imported = n.imported;
    if (dropped) *dropped = n.dropped;
    return SVCPLANE_OK;
  } catch (const std::bad_alloc&) { return fail(h, SVCPLANE_ERR_NO_MEMORY, "import flows: out of memory"); }
}

}  // extern "C"

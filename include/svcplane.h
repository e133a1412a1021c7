/*
 * svcplane.h — the C ABI of the svcplane dataplane core.
 *
 * A fixed-capacity, eBPF-style service dataplane: services (frontends -> a backend set with a
 * scheduler), backends, connection tracking, ClientIP session affinity. Programme services and
 * backends, then ask it what to do with a 5-tuple (or a batch of them): forward to a backend,
 * reverse-NAT a reply, pass (not service traffic), reject or drop.
 *
 * Conventions
 *  - Opaque handle (svcplane_t), plain C structs, integer status codes. No C++ types cross
 *    this boundary; the library is C++ inside and needs the C++ runtime at link time
 *    (link the static library with a C++ linker, or -lstdc++ -lm; the shared one carries it).
 *  - Every call that can fail returns an int status (SVCPLANE_OK = 0, else SVCPLANE_ERR_*).
 *    A call that fails has changed nothing. svcplane_last_error() gives the message of the
 *    last failed call on a handle (it names the field and the value).
 *  - Addresses are 16 bytes; IPv4 is stored v4-mapped (::ffff:a.b.c.d), so one layout serves
 *    both families. Ports are in host byte order.
 *  - Time is passed in by the caller, as nanoseconds of a monotonic clock
 *    (clock_gettime(CLOCK_MONOTONIC)); the library never reads a clock.
 *  - All memory is allocated by svcplane_create(); deciding never allocates.
 *
 * Threads
 *  - A handle from svcplane_create() is single-threaded: no call may run concurrently with
 *    another call on it — not even two deciding calls (deciding updates conntrack, affinity
 *    and counters). Serialise per handle (one handle per worker thread, or a lock per call).
 *  - A handle from svcplane_create_sharded(cfg, N, ...) serves N packet threads, like DPDK's
 *    lcores with per-lcore tables: it holds N shards, each with its own conntrack, NAT ports,
 *    fragments, counters and copy of the service maps (session affinity is one map they
 *    share). Packet thread i calls svcplane_shard_process_packets / svcplane_shard_decide_batch
 *    with shard i, on packets svcplane_shard_of_packet / svcplane_shard_of_flow steer to i
 *    (both directions of a flow, masqueraded or not, steer to the same shard: see
 *    docs/threads.md). On such a handle every call is thread-safe: calls on different shards
 *    run in parallel without sharing state; calls on one shard are serialised by its mutex
 *    (one lock per call, uncontended when one thread serves the shard); the control calls
 *    (upsert, delete, set_packet_config, gc, flush, ...) may come from any thread, are
 *    serialised among themselves and change one shard at a time, so a packet never sees half
 *    an update and waits at most for one update of its own shard. svcplane_last_error() then
 *    gives the calling thread's last error. svcplane_decide, svcplane_decide_batch and
 *    svcplane_process_packets act on shard 0 and are refused (SVCPLANE_ERR_INVALID) when the
 *    handle has more than one shard.
 *  - Different handles share nothing and may be used from different threads at once.
 *  - svcplane_abi_version, svcplane_config_init, svcplane_addr_*, svcplane_*_name are
 *    thread-safe (pure functions).
 *
 * Two ways to use it: decide on 5-tuples (svcplane_decide*) and rewrite packets yourself, or
 * hand it raw packets (svcplane_process_packets): parsed, decided, NATed in place (DNAT,
 * masquerade, reverse NAT, ICMP errors, fragments), with reject replies written for you.
 */
#ifndef SVCPLANE_H
#define SVCPLANE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define SVCPLANE_API __declspec(dllexport)
#else
#define SVCPLANE_API __attribute__((visibility("default")))
#endif

/* Incremented on any incompatible change of this header's structs or functions. */
#define SVCPLANE_ABI_VERSION 1

/* ---- status codes ------------------------------------------------------------------------ */
#define SVCPLANE_OK 0
#define SVCPLANE_ERR_NOT_FOUND 1 /* no such service / backend id */
#define SVCPLANE_ERR_IN_USE 2    /* backend still listed by a service */
#define SVCPLANE_ERR_CONFLICT 3  /* frontend owned by another service */
#define SVCPLANE_ERR_FULL 4      /* a fixed-capacity map has no room */
#define SVCPLANE_ERR_INVALID 5   /* an argument out of range, or a NULL pointer */
#define SVCPLANE_ERR_NO_MEMORY 6 /* svcplane_create could not allocate its maps */

/* ---- enumerations (stored in uint8_t fields) -------------------------------------------- */
#define SVCPLANE_PROTO_TCP 6
#define SVCPLANE_PROTO_UDP 17
#define SVCPLANE_PROTO_SCTP 132

/* Which frontends a flow is matched against first: traffic from this node or its pods is
 * internal, anything else external (see docs/api.md, "scope"). */
#define SVCPLANE_SCOPE_INTERNAL 0
#define SVCPLANE_SCOPE_EXTERNAL 1

#define SVCPLANE_BACKEND_ACTIVE 0      /* takes new flows */
#define SVCPLANE_BACKEND_TERMINATING 1 /* keeps its established flows, takes no new ones */
#define SVCPLANE_BACKEND_QUARANTINED 2 /* same, for a backend that failed health checks */

#define SVCPLANE_SCHED_RANDOM 0 /* what iptables does */
#define SVCPLANE_SCHED_MAGLEV 1 /* consistent hashing */
#define SVCPLANE_SCHED_RR 2     /* the IPVS schedulers */
#define SVCPLANE_SCHED_WRR 3
#define SVCPLANE_SCHED_LC 4
#define SVCPLANE_SCHED_WLC 5
#define SVCPLANE_SCHED_SH 6
#define SVCPLANE_SCHED_DH 7

#define SVCPLANE_VERDICT_PASS 0    /* not service traffic */
#define SVCPLANE_VERDICT_FORWARD 1 /* send to decision.addr:port (a backend) */
#define SVCPLANE_VERDICT_REPLY 2   /* a backend's reply: rewrite its source to addr:port (the service) */
#define SVCPLANE_VERDICT_REJECT 3  /* refuse (TCP RST / ICMP unreachable) */
#define SVCPLANE_VERDICT_DROP 4    /* drop silently */
#define SVCPLANE_VERDICTS 5

#define SVCPLANE_REASON_NONE 0
#define SVCPLANE_REASON_NO_FRONTEND 1
#define SVCPLANE_REASON_NO_BACKENDS 2
#define SVCPLANE_REASON_SOURCE_RANGE 3
#define SVCPLANE_REASON_CONNTRACK_FULL 4
#define SVCPLANE_REASON_AFFINITY_FULL 5
#define SVCPLANE_REASONS 6 /* the reasons deciding a tuple can give */
/* Packet path only (svcplane_process_packets). */
#define SVCPLANE_REASON_NOT_TRACKED 6            /* from a backend, no tracked flow: passed untouched */
#define SVCPLANE_REASON_TRUNCATED 7              /* shorter than its headers say: dropped */
#define SVCPLANE_REASON_MALFORMED 8              /* impossible header values: dropped */
#define SVCPLANE_REASON_NOT_IP 9                 /* ARP, LLDP, ...: passed */
#define SVCPLANE_REASON_UNSUPPORTED_PROTOCOL 10  /* not TCP/UDP/SCTP/ICMP: passed */
#define SVCPLANE_REASON_FRAGMENT_UNKNOWN 11      /* a later fragment whose first was not seen: passed */
#define SVCPLANE_REASON_ICMP_UNTRACKED 12        /* an ICMP error about no tracked flow: passed */
#define SVCPLANE_REASON_ICMP_ECHO 13             /* ping: not service traffic, passed */
#define SVCPLANE_REASON_NAT_PORTS_EXHAUSTED 14   /* masquerade found no free port: dropped */
#define SVCPLANE_REASON_NO_MASQUERADE_ADDRESS 15 /* forwarded without masquerade (no address of the family) */
#define SVCPLANE_REASON_BAD_CHECKSUM 16          /* an ICMP error with a wrong checksum: dropped */
#define SVCPLANE_REASON_REPLY_BUFFER_FULL 17     /* a reject whose reply did not fit the caller's buffer */
#define SVCPLANE_PACKET_REASONS 18

#define SVCPLANE_FULL_EVICT_OLDEST 0 /* a full table evicts its oldest entry */
#define SVCPLANE_FULL_REFUSE 1       /* a full table refuses the new entry (and counts it) */

#define SVCPLANE_TCP_FIN 0x01
#define SVCPLANE_TCP_SYN 0x02
#define SVCPLANE_TCP_RST 0x04
#define SVCPLANE_TCP_ACK 0x10

/* Masquerade (SNAT to a node address) of a frontend's new flows; packet path only. */
#define SVCPLANE_MASQ_NEVER 0
#define SVCPLANE_MASQ_ALWAYS 1
#define SVCPLANE_MASQ_OUTSIDE_POD_CIDRS 2 /* sources outside the pod CIDRs (kube-proxy's cluster-IP rule) */
#define SVCPLANE_MASQ_FROM_NODE 3         /* sources that are this node and not a pod */

#define SVCPLANE_DIR_TO_SERVICE 0   /* packets from clients: new flows are created */
#define SVCPLANE_DIR_FROM_BACKEND 1 /* packets from endpoints: only tracked flows are translated */

#define SVCPLANE_LINK_ETHERNET 0 /* frames start with a 14-byte Ethernet header (VLAN tags allowed) */
#define SVCPLANE_LINK_RAW 1      /* packets start at the IP header */

#define SVCPLANE_REJECT_NONE 0      /* rejected packets get no reply */
#define SVCPLANE_REJECT_ICMP 1      /* ICMP(v6) port unreachable, kube-proxy's REJECT */
#define SVCPLANE_REJECT_TCP_RESET 2 /* TCP RST for TCP, ICMP port unreachable for the rest */

/* svcplane_packet_counters.counts[] */
#define SVCPLANE_PKT_IPV4 0
#define SVCPLANE_PKT_IPV6 1
#define SVCPLANE_PKT_TCP 2
#define SVCPLANE_PKT_UDP 3
#define SVCPLANE_PKT_SCTP 4
#define SVCPLANE_PKT_ICMP 5
#define SVCPLANE_PKT_FIRST_FRAGMENTS 6
#define SVCPLANE_PKT_LATER_FRAGMENTS 7
#define SVCPLANE_PKT_ICMP_ERRORS 8  /* ICMP errors translated */
#define SVCPLANE_PKT_REWRITTEN 9    /* packets changed in place */
#define SVCPLANE_PKT_MASQUERADED 10 /* new flows given a NAT port */
#define SVCPLANE_PKT_REJECT_REPLIES 11
#define SVCPLANE_PKT_COUNTS 12

/* Maps, for svcplane_map_info(). */
#define SVCPLANE_MAP_SERVICES 0
#define SVCPLANE_MAP_FRONTENDS 1
#define SVCPLANE_MAP_BACKENDS 2
#define SVCPLANE_MAP_REVNAT 3
#define SVCPLANE_MAP_AFFINITY 4
#define SVCPLANE_MAP_CONNTRACK 5
#define SVCPLANE_MAPS 6

/* ---- plain structs ----------------------------------------------------------------------- */

/* An IPv4 (v4-mapped) or IPv6 address, network byte order. */
typedef struct svcplane_addr {
  uint8_t bytes[16];
} svcplane_addr;

/* Conntrack timeouts in seconds; 0 keeps the default shown. */
typedef struct svcplane_timeouts {
  uint32_t tcp_syn_sent;    /* 120 */
  uint32_t tcp_syn_recv;    /* 60 */
  uint32_t tcp_established; /* 86400 */
  uint32_t tcp_fin_wait;    /* 120 */
  uint32_t tcp_close_wait;  /* 60 */
  uint32_t tcp_last_ack;    /* 30 */
  uint32_t tcp_time_wait;   /* 120 */
  uint32_t tcp_close;       /* 10 */
  uint32_t udp;             /* 30 */
  uint32_t udp_stream;      /* 120, after a reply */
  uint32_t sctp;            /* 210 */
} svcplane_timeouts;

/* Fill with svcplane_config_init(), then change what you need. 0 means "default" for every
 * capacity. Capacities are 1..2^25. The services, frontends (and revnat) and backends maps
 * grow with the cluster: they start at 1024 / 4096 / 16384 entries (or their max_, when
 * smaller) and double, rebuilt aside and swapped in whole inside the upsert call, up to max_;
 * only past max_ does an upsert fail with SVCPLANE_ERR_FULL. The flow maps are sized once. */
typedef struct svcplane_config {
  uint32_t max_services;         /* 2^25: ceiling of the growing services map */
  uint32_t max_frontends;        /* 2^25: ceiling of the growing frontends map (and revnat) */
  uint32_t max_backends;         /* 2^25: ceiling of the growing backends map */
  uint32_t max_flows;            /* 65536: conntrack entries */
  uint32_t max_affinity;         /* 65536: (client, service) affinity entries */
  uint32_t max_nat_ports;        /* 65536: masqueraded flows (packet path) */
  uint32_t max_fragments;        /* 1024: datagrams whose later fragments are awaited (packet path) */
  uint8_t conntrack_full_policy; /* SVCPLANE_FULL_* */
  uint8_t affinity_full_policy;  /* SVCPLANE_FULL_*: REFUSE forwards the flow but does not remember it */
  uint8_t seed_is_set;           /* 0: random hash secret (recommended); 1: use `seed` (tests) */
  uint8_t reserved0;
  uint64_t seed;              /* secret of every hash table (attackers choose 5-tuples) */
  uint64_t rng_seed;          /* random scheduler's seed; 0: derived from seed */
  uint32_t maglev_table_size; /* 16381; a prime 7..1000003, keep > 100 x backends per service */
  uint32_t reserved1;
  uint64_t maglev_seed; /* 0: the fixed default shared by all nodes (same tables everywhere) */
  svcplane_timeouts timeouts;
} svcplane_config;

typedef struct svcplane_backend {
  uint32_t id; /* >= 1, chosen by the caller */
  svcplane_addr addr;
  uint16_t port;
  uint8_t state;      /* SVCPLANE_BACKEND_* */
  uint8_t node_local; /* 1: on this node (informational) */
  uint32_t weight;    /* 1..65535 (wrr, wlc, maglev); 0 is taken as 1 */
  uint16_t zone;      /* caller's zone number; 0 = none */
  uint16_t reserved;
} svcplane_backend;

typedef struct svcplane_frontend {
  svcplane_addr addr;
  uint16_t port;
  uint8_t protocol;            /* SVCPLANE_PROTO_* */
  uint8_t scope;               /* SVCPLANE_SCOPE_* */
  uint8_t check_source_ranges; /* 1: only sources inside the service's source_ranges */
  uint8_t masquerade;          /* SVCPLANE_MASQ_*: packet path only */
  uint8_t reserved[2];
} svcplane_frontend;

typedef struct svcplane_cidr {
  svcplane_addr addr;
  uint8_t prefix_len; /* 0..32 for an IPv4 (v4-mapped) address, 0..128 for IPv6 */
  uint8_t reserved[3];
} svcplane_cidr;

/* A service: its frontends, the backends it may choose from, how it chooses. Arrays are
 * borrowed for the duration of the call only. */
typedef struct svcplane_service {
  uint32_t id;           /* >= 1, chosen by the caller */
  uint8_t scheduler;     /* SVCPLANE_SCHED_* */
  uint8_t empty_verdict; /* SVCPLANE_VERDICT_REJECT or _DROP when no backend is active */
  uint8_t reserved[2];
  uint64_t affinity_timeout_ns; /* ClientIP session affinity; 0 = off */
  const svcplane_frontend* frontends;
  uint32_t n_frontends;
  uint32_t n_backends;
  const uint32_t* backend_ids; /* ids given to svcplane_upsert_backend */
  const svcplane_cidr* source_ranges;
  uint32_t n_source_ranges;
  uint32_t reserved2;
} svcplane_service;

/* One packet's 5-tuple, as the packet arrives (client -> frontend, or backend -> client). */
typedef struct svcplane_flow {
  svcplane_addr src;
  svcplane_addr dst;
  uint16_t sport;
  uint16_t dport;
  uint8_t protocol;  /* SVCPLANE_PROTO_* */
  uint8_t scope;     /* SVCPLANE_SCOPE_*: which frontends to try first */
  uint8_t tcp_flags; /* SVCPLANE_TCP_*, drives the conntrack state machine; 0 = refresh only */
  uint8_t reserved;
  uint32_t bytes; /* packet length, for the flow's byte counters */
} svcplane_flow;

typedef struct svcplane_decision {
  uint8_t verdict;      /* SVCPLANE_VERDICT_* */
  uint8_t reason;       /* SVCPLANE_REASON_* */
  uint8_t established;  /* 1: the flow was already tracked */
  uint8_t affinity_hit; /* 1: chosen by session affinity */
  uint16_t port;        /* FORWARD: backend port; REPLY: service port */
  uint16_t reserved;
  uint32_t service_id; /* 0 when no service matched */
  uint32_t backend_id; /* 0 when none */
  svcplane_addr addr;  /* FORWARD: backend address; REPLY: service address */
} svcplane_decision;

typedef struct svcplane_counters {
  uint64_t packets;                     /* tuples decided */
  uint64_t verdicts[SVCPLANE_VERDICTS]; /* indexed by SVCPLANE_VERDICT_* */
  uint64_t reasons[SVCPLANE_REASONS];   /* indexed by SVCPLANE_REASON_* */
} svcplane_counters;

typedef struct svcplane_map_info {
  char name[16]; /* "services", "frontends", "backends", "revnat", "affinity", "conntrack" */
  uint32_t size;
  uint32_t capacity;
  uint64_t bytes; /* memory reserved for the map */
  uint64_t hits, misses, inserts, updates, deletes, evictions, refusals, expirations;
} svcplane_map_info;

/* A tracked flow, as svcplane_lookup_flow() finds it. */
typedef struct svcplane_flow_info {
  svcplane_flow orig;  /* client -> frontend (bytes field unused) */
  svcplane_flow reply; /* backend -> client (bytes field unused) */
  uint32_t service_id;
  uint32_t backend_id;
  uint8_t direction; /* 0: the tuple asked for is the original direction, 1: the reply */
  uint8_t state;     /* internal conntrack state number (for display) */
  uint8_t reserved[6];
  uint64_t created_ns, last_seen_ns, expires_ns;
  uint64_t packets[2]; /* [0] original direction, [1] reply */
  uint64_t bytes[2];
} svcplane_flow_info;

/* One packet (or frame) in caller memory; rewritten in place. */
typedef struct svcplane_packet {
  uint8_t* data;
  uint32_t len;
  uint32_t reserved;
} svcplane_packet;

/* Node-level facts the packet path needs for masquerade (set on the control path). */
typedef struct svcplane_packet_config {
  const svcplane_addr* node_addrs; /* sources that are "this node" (loopback always is) */
  uint32_t n_node_addrs;
  uint32_t n_pod_cidrs;
  const svcplane_cidr* pod_cidrs; /* sources that are pods */
  uint8_t masquerade_all;         /* kube-proxy's --masquerade-all */
  uint8_t has_masq4, has_masq6;   /* which of masq4 / masq6 is set */
  uint8_t reserved;
  uint16_t nat_port_low, nat_port_high; /* source ports for masqueraded flows; 0, 0 = 1024..65535 */
  svcplane_addr masq4;                  /* what masquerade rewrites IPv4 sources to */
  svcplane_addr masq6;
} svcplane_packet_config;

/* Where reject replies are written: appended at data[used..capacity); offsets[i] / lengths[i]
 * give packet i's reply (length 0: none). offsets and lengths have room for the whole batch. */
typedef struct svcplane_reply_sink {
  uint8_t* data;
  uint32_t capacity;
  uint32_t used; /* in: where to start; out: bytes used */
  uint32_t* offsets;
  uint32_t* lengths;
} svcplane_reply_sink;

typedef struct svcplane_packet_options {
  uint8_t direction; /* SVCPLANE_DIR_* */
  uint8_t link;      /* SVCPLANE_LINK_* */
  uint8_t from_node; /* 1: every packet was sent by this node (hook OUTPUT) */
  uint8_t reject;    /* SVCPLANE_REJECT_* */
  uint32_t reserved;
  svcplane_reply_sink* replies; /* NULL: rejects get no reply */
} svcplane_packet_options;

typedef struct svcplane_packet_counters {
  uint64_t packets;
  uint64_t verdicts[SVCPLANE_VERDICTS];
  uint64_t reasons[SVCPLANE_PACKET_REASONS];
  uint64_t counts[SVCPLANE_PKT_COUNTS]; /* SVCPLANE_PKT_* */
} svcplane_packet_counters;

typedef struct svcplane_handle svcplane_t; /* opaque */

/* ---- library ----------------------------------------------------------------------------- */

/* SVCPLANE_ABI_VERSION of the library actually linked. Thread-safe. */
SVCPLANE_API uint32_t svcplane_abi_version(void);
/* Fills cfg with the defaults. Thread-safe. */
SVCPLANE_API void svcplane_config_init(svcplane_config* cfg);

/* Creates a dataplane; all its memory is allocated here. cfg may be NULL (defaults).
 * On failure *out is NULL; SVCPLANE_ERR_INVALID (bad config) or SVCPLANE_ERR_NO_MEMORY.
 * `error`, when not NULL, receives a message (at most error_len bytes, NUL-terminated). */
SVCPLANE_API int svcplane_create(const svcplane_config* cfg, svcplane_t** out, char* error, size_t error_len);
/* Creates a dataplane of `shards` shards (1..64) for as many packet threads (see Threads
 * above). The flow-state capacities of cfg (max_flows, max_nat_ports, max_fragments) are
 * divided among the shards; max_affinity is the shared affinity map's; the service-map
 * ceilings hold in every shard. Each shard masquerades only to NAT ports p with
 * p % shards == its index, so the NAT port range needs at least `shards` ports. */
SVCPLANE_API int svcplane_create_sharded(const svcplane_config* cfg, uint32_t shards, svcplane_t** out, char* error,
                                         size_t error_len);
/* Frees everything. NULL is allowed. No other call on the handle may be running. */
SVCPLANE_API void svcplane_destroy(svcplane_t* dp);

/* Message of the last failed call on this handle ("" if none); valid until the next call. On a
 * sharded handle: of the calling thread's last failed call on a sharded handle. */
SVCPLANE_API const char* svcplane_last_error(const svcplane_t* dp);

/* ---- shards (svcplane_create_sharded) ----------------------------------------------------- */

/* Number of shards: 1 for a handle from svcplane_create, 0 for NULL. */
SVCPLANE_API uint32_t svcplane_shards(const svcplane_t* dp);
/* The shard a raw packet belongs to (parsed as svcplane_process_packets would, with opt's
 * direction and link type; opt may be NULL), and the shard of a 5-tuple. Thread-safe; 0 for
 * an unsharded handle. A first fragment is remembered, so its later fragments follow it. */
SVCPLANE_API uint32_t svcplane_shard_of_packet(svcplane_t* dp, const uint8_t* data, uint32_t len,
                                               const svcplane_packet_options* opt);
SVCPLANE_API uint32_t svcplane_shard_of_flow(svcplane_t* dp, const svcplane_flow* flow);
/* shards[i] = svcplane_shard_of_packet(pkts[i]) for a batch (one lock for all of it). */
SVCPLANE_API int svcplane_shard_of_packets(svcplane_t* dp, const svcplane_packet* pkts, uint32_t n,
                                           const svcplane_packet_options* opt, uint32_t* shards);
/* svcplane_process_packets / svcplane_decide_batch on one shard (shard 0 of an unsharded
 * handle); SVCPLANE_ERR_INVALID for a shard out of range. Packets steered elsewhere are still
 * handled safely, on this shard's state alone (their other direction will not find them). */
SVCPLANE_API int svcplane_shard_process_packets(svcplane_t* dp, uint32_t shard, svcplane_packet* pkts, uint32_t n,
                                                const svcplane_packet_options* opt, uint64_t now_ns, uint8_t* verdicts,
                                                uint8_t* reasons);
SVCPLANE_API int svcplane_shard_decide_batch(svcplane_t* dp, uint32_t shard, const svcplane_flow* flows, uint32_t n,
                                             uint64_t now_ns, svcplane_decision* out);

/* ---- programming (control path) ---------------------------------------------------------- */

/* Adds or replaces a backend. Changing state or weight rebuilds the sets of the services that
 * list it; established flows keep it whatever its state. */
SVCPLANE_API int svcplane_upsert_backend(svcplane_t* dp, const svcplane_backend* b);
/* Removes a backend with its flows and affinity entries; SVCPLANE_ERR_IN_USE while a service
 * lists it. */
SVCPLANE_API int svcplane_delete_backend(svcplane_t* dp, uint32_t id);
/* Adds or replaces a service as a whole (frontends, backend set, scheduler, options), or
 * fails and changes nothing. The next decision sees either the old or the new service. */
SVCPLANE_API int svcplane_upsert_service(svcplane_t* dp, const svcplane_service* s);
/* Removes a service, its frontends, reverse-NAT entries, flows and affinity entries. */
SVCPLANE_API int svcplane_delete_service(svcplane_t* dp, uint32_t id);

/* ---- deciding (packet path: never allocates) --------------------------------------------- */

/* Pipeline: conntrack (both directions) -> frontend -> source ranges -> no active backend ->
 * session affinity -> scheduler -> conntrack insert. */
SVCPLANE_API int svcplane_decide(svcplane_t* dp, const svcplane_flow* flow, uint64_t now_ns, svcplane_decision* out);
/* Decides n flows (caller-owned arrays, out has room for n). Same results as n calls to
 * svcplane_decide, faster: cache misses of neighbouring flows overlap. */
SVCPLANE_API int svcplane_decide_batch(svcplane_t* dp, const svcplane_flow* flows, uint32_t n, uint64_t now_ns,
                                       svcplane_decision* out);

/* ---- packets (packet path: never allocates) ---------------------------------------------- */

/* Sets the node addresses, pod CIDRs and masquerade addresses (copied). */
SVCPLANE_API int svcplane_set_packet_config(svcplane_t* dp, const svcplane_packet_config* cfg);
/* Seconds a first fragment's ports are remembered for its later fragments (default 30). */
SVCPLANE_API int svcplane_set_fragment_timeout(svcplane_t* dp, uint64_t timeout_ns);
/* Parses, decides and rewrites n packets in place (destination NAT to the backend, masquerade,
 * reverse NAT of replies, ICMP errors, fragments; checksums updated). verdicts[i] and
 * reasons[i] get packet i's SVCPLANE_VERDICT_* and SVCPLANE_REASON_* (either may be NULL):
 * FORWARD / REPLY: send the rewritten packet on; PASS: not service traffic, untouched;
 * REJECT: drop it and send the reply written to opt->replies, if any; DROP: drop it.
 * opt may be NULL: SVCPLANE_DIR_TO_SERVICE, Ethernet, not from this node, ICMP rejects, no replies. */
SVCPLANE_API int svcplane_process_packets(svcplane_t* dp, svcplane_packet* pkts, uint32_t n,
                                          const svcplane_packet_options* opt, uint64_t now_ns, uint8_t* verdicts,
                                          uint8_t* reasons);
SVCPLANE_API int svcplane_get_packet_counters(const svcplane_t* dp, svcplane_packet_counters* out);

/* ---- conntrack --------------------------------------------------------------------------- */

/* The flow a tuple belongs to (either direction): SVCPLANE_OK, or SVCPLANE_ERR_NOT_FOUND. */
SVCPLANE_API int svcplane_lookup_flow(svcplane_t* dp, const svcplane_flow* flow, svcplane_flow_info* out);
/* Incremental garbage collection: examines at most `budget` slots of conntrack and of the
 * affinity map; the counts removed go to *flows / *affinity (either may be NULL). */
SVCPLANE_API int svcplane_gc(svcplane_t* dp, uint64_t now_ns, uint32_t budget, uint32_t* flows, uint32_t* affinity);
/* Number of flows removed goes to *removed (may be NULL). */
SVCPLANE_API int svcplane_delete_flows_by_backend(svcplane_t* dp, uint32_t backend_id, uint32_t* removed);
SVCPLANE_API int svcplane_delete_flows_by_service(svcplane_t* dp, uint32_t service_id, uint32_t* removed);
SVCPLANE_API int svcplane_flush_conntrack(svcplane_t* dp, uint32_t* removed);

/* Flow handoff (a restart keeps established connections). svcplane_export_flows writes the
 * flows and session-affinity entries live at now_ns as a versioned blob (layout:
 * native/core/flow_handoff.h) to buf and its size to *len; when buf is NULL or cap is smaller,
 * only *len is set and SVCPLANE_ERR_FULL returned. svcplane_import_flows takes such a blob over
 * on a dataplane whose services and backends are programmed (ids need not match: each flow's
 * service and backend are found again from its tuples); flows whose service, backend or NAT
 * port is gone are dropped. Counts go to *imported / *dropped (either may be NULL). A bad blob
 * is SVCPLANE_ERR_INVALID with nothing applied. Single-shard handles only. */
SVCPLANE_API int svcplane_export_flows(svcplane_t* dp, uint64_t now_ns, uint8_t* buf, size_t cap, size_t* len);
SVCPLANE_API int svcplane_import_flows(svcplane_t* dp, const uint8_t* blob, size_t len, uint64_t now_ns,
                                       uint32_t* imported, uint32_t* dropped);

/* ---- inspection -------------------------------------------------------------------------- */

SVCPLANE_API int svcplane_get_counters(const svcplane_t* dp, svcplane_counters* out);
/* map: SVCPLANE_MAP_*. Sharded handles: conntrack sums the shards; the service maps are
 * shard 0's (every shard holds the same). Counters sum the shards. */
SVCPLANE_API int svcplane_map_info_get(const svcplane_t* dp, uint32_t map, svcplane_map_info* out);

/* ---- helpers (thread-safe) --------------------------------------------------------------- */

/* IPv4 address given in host byte order (0x7f000001 = 127.0.0.1), stored v4-mapped. */
SVCPLANE_API svcplane_addr svcplane_addr_v4(uint32_t host_order);
/* Parses "10.0.0.1" or "2001:db8::1": SVCPLANE_OK or SVCPLANE_ERR_INVALID. */
SVCPLANE_API int svcplane_addr_parse(const char* text, svcplane_addr* out);
/* Writes the text form (IPv4 for v4-mapped addresses); needs len >= 46. */
SVCPLANE_API int svcplane_addr_format(const svcplane_addr* a, char* buf, size_t len);

/* Names for display: "forward", "no-backends", "invalid", ... ("unknown" out of range). */
SVCPLANE_API const char* svcplane_verdict_name(uint8_t verdict);
SVCPLANE_API const char* svcplane_reason_name(uint8_t reason);
SVCPLANE_API const char* svcplane_status_name(int status);

#ifdef __cplusplus
}
#endif

#endif /* SVCPLANE_H */

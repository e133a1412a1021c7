/*
 * Tests of the C ABI's contract: status codes and messages, "a failed call changes nothing",
 * NULL handling, config validation, source ranges, expiry on the caller's clock, helpers, and
 * a sharded handle driven by two packet threads while the control path changes it.
 * Compiled as C (so the header is proven to be plain C) and run by ctest.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "svcplane.h"

static int passed = 0, failed = 0;

#define CHECK(cond, what)                                            \
  do {                                                               \
    if (cond)                                                        \
      passed++;                                                      \
    else {                                                           \
      failed++;                                                      \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, what); \
    }                                                                \
  } while (0)

#define SEC 1000000000ull

static svcplane_addr ip(const char* t) {
  svcplane_addr a;
  memset(&a, 0, sizeof a);
  svcplane_addr_parse(t, &a);
  return a;
}

static svcplane_t* make(uint32_t max_backends, uint32_t max_flows) {
  svcplane_config cfg;
  svcplane_config_init(&cfg);
  cfg.max_backends = max_backends;
  cfg.max_flows = max_flows;
  cfg.seed_is_set = 1;
  cfg.seed = 7;
  cfg.conntrack_full_policy = SVCPLANE_FULL_REFUSE;
  svcplane_t* dp = NULL;
  char err[128];
  if (svcplane_create(&cfg, &dp, err, sizeof err) != SVCPLANE_OK) fprintf(stderr, "create: %s\n", err);
  return dp;
}

static svcplane_backend backend(uint32_t id, const char* addr, uint16_t port) {
  svcplane_backend b;
  memset(&b, 0, sizeof b);
  b.id = id;
  b.addr = ip(addr);
  b.port = port;
  b.weight = 1;
  return b;
}

static svcplane_flow flow(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto) {
  svcplane_flow f;
  memset(&f, 0, sizeof f);
  f.src = ip(src);
  f.dst = ip(dst);
  f.sport = sport;
  f.dport = dport;
  f.protocol = proto;
  f.scope = SVCPLANE_SCOPE_EXTERNAL;
  f.tcp_flags = proto == SVCPLANE_PROTO_TCP ? SVCPLANE_TCP_SYN : 0;
  return f;
}

static void test_create(void) {
  svcplane_config cfg;
  svcplane_config_init(&cfg);
  CHECK(cfg.max_flows == 65536 && cfg.timeouts.tcp_established == 86400 && cfg.timeouts.udp == 30,
        "config_init gives the defaults");
  svcplane_t* dp = (svcplane_t*)1;
  char err[128];
  cfg.maglev_table_size = 100;
  CHECK(svcplane_create(&cfg, &dp, err, sizeof err) == SVCPLANE_ERR_INVALID && dp == NULL,
        "non-prime maglev table refused");
  CHECK(strstr(err, "maglev_table_size") && strstr(err, "100"), "message names the field and the value");
  svcplane_config_init(&cfg);
  cfg.max_flows = (1u << 25) + 1;
  CHECK(svcplane_create(&cfg, &dp, err, sizeof err) == SVCPLANE_ERR_INVALID && strstr(err, "max_flows"),
        "oversized capacity refused");
  CHECK(svcplane_create(&cfg, NULL, err, sizeof err) == SVCPLANE_ERR_INVALID, "NULL out refused");
  CHECK(svcplane_create(NULL, &dp, NULL, 0) == SVCPLANE_OK && dp != NULL, "NULL config: defaults");
  svcplane_destroy(dp);
  svcplane_destroy(NULL);
  CHECK(svcplane_abi_version() == SVCPLANE_ABI_VERSION, "ABI version matches the header");
}

static void test_errors(void) {
  svcplane_t* dp = make(4, 64);
  svcplane_backend b1 = backend(1, "10.1.0.1", 80), b2 = backend(2, "10.1.0.2", 80);
  CHECK(svcplane_upsert_backend(dp, &b1) == SVCPLANE_OK && svcplane_upsert_backend(dp, &b2) == SVCPLANE_OK,
        "backends added");
  svcplane_backend zero = backend(0, "10.1.0.9", 80);
  CHECK(svcplane_upsert_backend(dp, &zero) == SVCPLANE_ERR_INVALID && strstr(svcplane_last_error(dp), "id"),
        "backend id 0 refused");
  svcplane_backend badstate = backend(3, "10.1.0.3", 80);
  badstate.state = 9;
  CHECK(svcplane_upsert_backend(dp, &badstate) == SVCPLANE_ERR_INVALID, "unknown backend state refused");
  CHECK(svcplane_upsert_backend(dp, NULL) == SVCPLANE_ERR_INVALID, "NULL backend refused");
  for (uint32_t i = 3; i <= 4; i++) {
    svcplane_backend b = backend(i, "10.1.0.5", (uint16_t)(80 + i));
    svcplane_upsert_backend(dp, &b);
  }
  svcplane_backend fifth = backend(5, "10.1.0.5", 99);
  CHECK(svcplane_upsert_backend(dp, &fifth) == SVCPLANE_ERR_FULL, "a full backends map refuses");

  svcplane_frontend fe;
  memset(&fe, 0, sizeof fe);
  fe.addr = ip("172.30.0.1");
  fe.port = 80;
  fe.protocol = SVCPLANE_PROTO_TCP;
  fe.scope = SVCPLANE_SCOPE_EXTERNAL;
  uint32_t ids[] = {1, 2};
  svcplane_service s;
  memset(&s, 0, sizeof s);
  s.id = 1;
  s.scheduler = SVCPLANE_SCHED_RR;
  s.empty_verdict = SVCPLANE_VERDICT_REJECT;
  s.frontends = &fe;
  s.n_frontends = 1;
  s.backend_ids = ids;
  s.n_backends = 2;
  CHECK(svcplane_upsert_service(dp, &s) == SVCPLANE_OK, "service added");

  svcplane_service other = s;
  other.id = 2;
  CHECK(svcplane_upsert_service(dp, &other) == SVCPLANE_ERR_CONFLICT, "a frontend owned by another service conflicts");
  uint32_t unknown[] = {1, 77};
  other.backend_ids = unknown;
  other.frontends = NULL;
  other.n_frontends = 0;
  CHECK(svcplane_upsert_service(dp, &other) == SVCPLANE_ERR_NOT_FOUND && strstr(svcplane_last_error(dp), "77"),
        "unknown backend id named");
  other.backend_ids = NULL;
  CHECK(svcplane_upsert_service(dp, &other) == SVCPLANE_ERR_INVALID, "NULL array with a count refused");
  svcplane_service bad = s;
  bad.scheduler = 42;
  CHECK(svcplane_upsert_service(dp, &bad) == SVCPLANE_ERR_INVALID && strstr(svcplane_last_error(dp), "42"),
        "unknown scheduler refused");
  bad = s;
  bad.empty_verdict = SVCPLANE_VERDICT_FORWARD;
  CHECK(svcplane_upsert_service(dp, &bad) == SVCPLANE_ERR_INVALID, "empty_verdict must be reject or drop");
  svcplane_frontend badfe = fe;
  badfe.protocol = 1;
  bad = s;
  bad.frontends = &badfe;
  CHECK(svcplane_upsert_service(dp, &bad) == SVCPLANE_ERR_INVALID && strstr(svcplane_last_error(dp), "protocol"),
        "ICMP frontend refused");

  /* The failed updates changed nothing: the service still forwards to its two backends. */
  svcplane_decision d;
  svcplane_flow f = flow("203.0.113.1", 1000, "172.30.0.1", 80, SVCPLANE_PROTO_TCP);
  CHECK(svcplane_decide(dp, &f, SEC, &d) == SVCPLANE_OK && d.verdict == SVCPLANE_VERDICT_FORWARD && d.service_id == 1,
        "still forwards");
  CHECK(d.backend_id == 1 || d.backend_id == 2, "to one of its backends");

  CHECK(svcplane_delete_backend(dp, 1) == SVCPLANE_ERR_IN_USE && strstr(svcplane_last_error(dp), "service 1"),
        "listed backend cannot go");
  CHECK(svcplane_delete_backend(dp, 99) == SVCPLANE_ERR_NOT_FOUND, "unknown backend");
  CHECK(svcplane_delete_service(dp, 99) == SVCPLANE_ERR_NOT_FOUND, "unknown service");
  CHECK(svcplane_delete_service(dp, 1) == SVCPLANE_OK && svcplane_delete_backend(dp, 1) == SVCPLANE_OK,
        "service, then backend deleted");
  CHECK(svcplane_decide(dp, &f, SEC, &d) == SVCPLANE_OK && d.verdict == SVCPLANE_VERDICT_PASS, "deleted service: pass");
  CHECK(svcplane_decide(dp, NULL, SEC, &d) == SVCPLANE_ERR_INVALID, "NULL flow refused");
  CHECK(svcplane_decide(NULL, &f, SEC, &d) == SVCPLANE_ERR_INVALID, "NULL handle refused");
  svcplane_map_info mi;
  CHECK(svcplane_map_info_get(dp, SVCPLANE_MAPS, &mi) == SVCPLANE_ERR_INVALID, "unknown map refused");
  svcplane_destroy(dp);
}

static void test_source_ranges_and_expiry(void) {
  svcplane_t* dp = make(16, 2);
  svcplane_backend b = backend(1, "10.1.0.1", 53);
  svcplane_upsert_backend(dp, &b);
  svcplane_frontend fe;
  memset(&fe, 0, sizeof fe);
  fe.addr = ip("198.51.100.1");
  fe.port = 53;
  fe.protocol = SVCPLANE_PROTO_UDP;
  fe.scope = SVCPLANE_SCOPE_EXTERNAL;
  fe.check_source_ranges = 1;
  svcplane_cidr range;
  memset(&range, 0, sizeof range);
  range.addr = ip("203.0.113.0");
  range.prefix_len = 25;
  uint32_t ids[] = {1};
  svcplane_service s;
  memset(&s, 0, sizeof s);
  s.id = 1;
  s.empty_verdict = SVCPLANE_VERDICT_DROP;
  s.frontends = &fe;
  s.n_frontends = 1;
  s.backend_ids = ids;
  s.n_backends = 1;
  s.source_ranges = &range;
  s.n_source_ranges = 1;
  range.prefix_len = 33;
  CHECK(svcplane_upsert_service(dp, &s) == SVCPLANE_ERR_INVALID && strstr(svcplane_last_error(dp), "prefix_len"),
        "IPv4 prefix over 32 refused");
  range.prefix_len = 25;
  CHECK(svcplane_upsert_service(dp, &s) == SVCPLANE_OK, "service with a source range");

  svcplane_decision d;
  svcplane_flow in = flow("203.0.113.2", 5000, "198.51.100.1", 53, SVCPLANE_PROTO_UDP);
  svcplane_flow out = flow("203.0.113.130", 5000, "198.51.100.1", 53, SVCPLANE_PROTO_UDP);
  svcplane_decide(dp, &in, 10 * SEC, &d);
  CHECK(d.verdict == SVCPLANE_VERDICT_FORWARD, "source inside the range forwarded");
  svcplane_decide(dp, &out, 10 * SEC, &d);
  CHECK(d.verdict == SVCPLANE_VERDICT_DROP && d.reason == SVCPLANE_REASON_SOURCE_RANGE,
        "source outside the range dropped");

  svcplane_flow_info fi;
  CHECK(svcplane_lookup_flow(dp, &in, &fi) == SVCPLANE_OK && fi.backend_id == 1 && fi.expires_ns == 40 * SEC,
        "UDP flow expires after 30 s");
  uint32_t flows = 9, aff = 9;
  svcplane_gc(dp, 39 * SEC, 1024, &flows, &aff);
  CHECK(flows == 0, "not expired at 39 s");
  svcplane_gc(dp, 41 * SEC, 1024, &flows, &aff);
  CHECK(flows == 1 && svcplane_lookup_flow(dp, &in, &fi) == SVCPLANE_ERR_NOT_FOUND, "expired at 41 s and collected");

  /* Conntrack capacity 2, policy refuse: the third flow is dropped and counted. */
  svcplane_flow f1 = flow("203.0.113.3", 1, "198.51.100.1", 53, SVCPLANE_PROTO_UDP);
  svcplane_flow f2 = flow("203.0.113.4", 1, "198.51.100.1", 53, SVCPLANE_PROTO_UDP);
  svcplane_flow f3 = flow("203.0.113.5", 1, "198.51.100.1", 53, SVCPLANE_PROTO_UDP);
  svcplane_flow batch[3] = {f1, f2, f3};
  svcplane_decision ds[3];
  CHECK(svcplane_decide_batch(dp, batch, 3, 50 * SEC, ds) == SVCPLANE_OK, "batch decided");
  CHECK(ds[0].verdict == SVCPLANE_VERDICT_FORWARD && ds[1].verdict == SVCPLANE_VERDICT_FORWARD, "two flows fit");
  CHECK(ds[2].verdict == SVCPLANE_VERDICT_DROP && ds[2].reason == SVCPLANE_REASON_CONNTRACK_FULL,
        "the third is refused");
  svcplane_map_info ct;
  svcplane_map_info_get(dp, SVCPLANE_MAP_CONNTRACK, &ct);
  CHECK(ct.size == 2 && ct.capacity == 2 && ct.refusals == 1 && strcmp(ct.name, "conntrack") == 0,
        "conntrack map info");
  svcplane_counters c;
  svcplane_get_counters(dp, &c);
  CHECK(
      c.packets == 5 && c.reasons[SVCPLANE_REASON_CONNTRACK_FULL] == 1 && c.reasons[SVCPLANE_REASON_SOURCE_RANGE] == 1,
      "counters");
  uint32_t removed = 0;
  svcplane_flush_conntrack(dp, &removed);
  CHECK(removed == 2, "flush removes both flows");
  CHECK(svcplane_decide_batch(dp, NULL, 0, 0, NULL) == SVCPLANE_OK, "empty batch is fine");
  svcplane_destroy(dp);
}

static void test_helpers(void) {
  svcplane_addr a;
  char buf[64];
  CHECK(svcplane_addr_parse("10.1.2.3", &a) == SVCPLANE_OK && a.bytes[10] == 0xff && a.bytes[15] == 3,
        "IPv4 is stored v4-mapped");
  svcplane_addr v = svcplane_addr_v4(0x0a010203);
  CHECK(memcmp(&a, &v, sizeof a) == 0, "addr_v4 agrees with addr_parse");
  CHECK(svcplane_addr_format(&a, buf, sizeof buf) == SVCPLANE_OK && strcmp(buf, "10.1.2.3") == 0,
        "IPv4 formats as IPv4");
  CHECK(svcplane_addr_parse("2001:db8::1", &a) == SVCPLANE_OK &&
            svcplane_addr_format(&a, buf, sizeof buf) == SVCPLANE_OK && strcmp(buf, "2001:db8::1") == 0,
        "IPv6 round trip");
  CHECK(svcplane_addr_parse("10.1.2", &a) == SVCPLANE_ERR_INVALID, "bad address refused");
  CHECK(svcplane_addr_format(&a, buf, 8) == SVCPLANE_ERR_INVALID, "short buffer refused");
  CHECK(strcmp(svcplane_verdict_name(SVCPLANE_VERDICT_REPLY), "reply") == 0 &&
            strcmp(svcplane_verdict_name(200), "unknown") == 0,
        "verdict names");
  CHECK(strcmp(svcplane_reason_name(SVCPLANE_REASON_NO_BACKENDS), "no-backends") == 0, "reason names");
  CHECK(strcmp(svcplane_status_name(SVCPLANE_ERR_IN_USE), "in-use") == 0, "status names");
}

/* Service 1: 172.30.0.1:80/TCP, no backends, rejecting. */
static void tcp80_service(svcplane_service* s, svcplane_frontend* fe) {
  memset(fe, 0, sizeof *fe);
  fe->addr = ip("172.30.0.1");
  fe->port = 80;
  fe->protocol = SVCPLANE_PROTO_TCP;
  memset(s, 0, sizeof *s);
  s->id = 1;
  s->empty_verdict = SVCPLANE_VERDICT_REJECT;
  s->frontends = fe;
  s->n_frontends = 1;
}

static void test_packet_api(void) {
  svcplane_t* dp = make(16, 64);
  svcplane_packet_config pc;
  memset(&pc, 0, sizeof pc);
  svcplane_cidr pods;
  memset(&pods, 0, sizeof pods);
  pods.addr = ip("10.0.0.0");
  pods.prefix_len = 8;
  pc.pod_cidrs = &pods;
  pc.n_pod_cidrs = 1;
  pc.has_masq4 = 1;
  pc.masq4 = ip("192.168.0.2");
  CHECK(svcplane_set_packet_config(dp, &pc) == SVCPLANE_OK, "packet config accepted");
  pc.masq4 = ip("2001:db8::1");
  CHECK(svcplane_set_packet_config(dp, &pc) == SVCPLANE_ERR_INVALID, "an IPv6 address as IPv4 masquerade refused");
  pc.masq4 = ip("192.168.0.2");
  pc.nat_port_low = 2000;
  pc.nat_port_high = 1000;
  CHECK(svcplane_set_packet_config(dp, &pc) == SVCPLANE_ERR_INVALID, "inverted NAT port range refused");
  pods.prefix_len = 40;
  pc.nat_port_low = pc.nat_port_high = 0;
  CHECK(svcplane_set_packet_config(dp, &pc) == SVCPLANE_ERR_INVALID && strstr(svcplane_last_error(dp), "prefix_len"),
        "bad pod CIDR refused");

  uint8_t junk[4] = {0x45, 0, 0, 4};
  svcplane_packet p[2] = {{junk, sizeof junk, 0}, {NULL, 10, 0}};
  uint8_t v[2], r[2];
  CHECK(svcplane_process_packets(dp, p, 2, NULL, 0, v, r) == SVCPLANE_ERR_INVALID,
        "a NULL packet with a length refused");
  svcplane_packet_options o;
  memset(&o, 0, sizeof o);
  o.link = 7;
  CHECK(svcplane_process_packets(dp, p, 1, &o, 0, v, r) == SVCPLANE_ERR_INVALID, "unknown link type refused");
  o.link = SVCPLANE_LINK_RAW;
  CHECK(svcplane_process_packets(dp, p, 1, &o, 0, v, r) == SVCPLANE_OK, "a truncated packet is processed");
  CHECK(v[0] == SVCPLANE_VERDICT_DROP && r[0] == SVCPLANE_REASON_TRUNCATED, "and dropped as truncated");
  CHECK(svcplane_process_packets(dp, p, 1, &o, 0, NULL, NULL) == SVCPLANE_OK, "verdict arrays are optional");
  svcplane_packet_counters c;
  svcplane_get_packet_counters(dp, &c);
  CHECK(c.packets == 2 && c.reasons[SVCPLANE_REASON_TRUNCATED] == 2, "packet counters count both");
  CHECK(strcmp(svcplane_reason_name(SVCPLANE_REASON_REPLY_BUFFER_FULL), "reply-buffer-full") == 0,
        "packet reason names");
  svcplane_frontend fe;
  svcplane_service s;
  tcp80_service(&s, &fe);
  fe.masquerade = 9;
  CHECK(svcplane_upsert_service(dp, &s) == SVCPLANE_ERR_INVALID && strstr(svcplane_last_error(dp), "masquerade"),
        "unknown masquerade policy refused");
  svcplane_destroy(dp);
}

/* A raw IPv4 TCP SYN from 10.0.0.2:sport to 172.30.0.1:80 (40 bytes, IP checksum set). */
static void tcp_syn(uint8_t* p, uint16_t sport) {
  memset(p, 0, 40);
  p[0] = 0x45;
  p[3] = 40;
  p[8] = 64;
  p[9] = SVCPLANE_PROTO_TCP;
  const uint8_t src[4] = {10, 0, 0, 2}, dst[4] = {172, 30, 0, 1};
  memcpy(p + 12, src, 4);
  memcpy(p + 16, dst, 4);
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += (uint32_t)(p[i] << 8 | p[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  p[10] = (uint8_t)(~sum >> 8);
  p[11] = (uint8_t)~sum;
  p[20] = (uint8_t)(sport >> 8);
  p[21] = (uint8_t)sport;
  p[23] = 80;
  p[32] = 0x50;
  p[33] = 0x02; /* SYN */
}

/* A batch longer than one chunk of the bridge's driver, rejected with replies into a sink and
 * NULL verdict arrays: every packet's reply is where the sink says, batch-relative. */
static void test_reply_sink_across_chunks(void) {
  enum { N = 300 };
  svcplane_t* dp = make(16, 1024);
  svcplane_frontend fe;
  svcplane_service s;
  tcp80_service(&s, &fe);
  CHECK(svcplane_upsert_service(dp, &s) == SVCPLANE_OK, "a service without backends");
  static uint8_t frames[N][40], replies[N * 128];
  static uint32_t offsets[N], lengths[N];
  svcplane_packet pkts[N];
  for (int i = 0; i < N; ++i) {
    tcp_syn(frames[i], (uint16_t)(10000 + i));
    pkts[i].data = frames[i];
    pkts[i].len = 40;
    pkts[i].reserved = 0;
  }
  svcplane_reply_sink sink = {replies, sizeof replies, 0, offsets, lengths};
  svcplane_packet_options o;
  memset(&o, 0, sizeof o);
  o.link = SVCPLANE_LINK_RAW;
  o.reject = SVCPLANE_REJECT_TCP_RESET;
  o.replies = &sink;
  CHECK(svcplane_process_packets(dp, pkts, N, &o, SEC, NULL, NULL) == SVCPLANE_OK,
        "a reply sink with NULL verdict arrays is accepted");
  int ok = 1;
  for (int i = 0; i < N; ++i) {
    const uint8_t* r = replies + offsets[i];
    /* The reset answers packet i: its destination port is packet i's source port. */
    if (lengths[i] == 0 || offsets[i] + lengths[i] > sink.used || (r[22] << 8 | r[23]) != 10000 + i) ok = 0;
  }
  CHECK(ok && sink.used > 0, "each of 300 packets has its reply at its batch-relative offset");
  svcplane_destroy(dp);
}

/* Two packet threads on a 2-shard handle: each takes the SYNs steered to its shard, while the
 * main thread adds and removes a second service. */
enum { kPorts = 512 };
struct worker {
  svcplane_t* dp;
  uint32_t shard;
  uint32_t mine, forwarded, refused;
};

static void* packet_thread(void* arg) {
  struct worker* w = (struct worker*)arg;
  svcplane_packet_options o;
  memset(&o, 0, sizeof o);
  o.link = SVCPLANE_LINK_RAW;
  for (int round = 0; round < 20; ++round)
    for (uint16_t port = 0; port < kPorts; ++port) {
      uint8_t pkt[40];
      tcp_syn(pkt, (uint16_t)(20000 + port));
      if (svcplane_shard_of_packet(w->dp, pkt, sizeof pkt, &o) != w->shard) continue;
      if (round == 0) w->mine++;
      svcplane_packet p = {pkt, sizeof pkt, 0};
      uint8_t v = 0xff, r = 0xff;
      if (svcplane_shard_process_packets(w->dp, w->shard, &p, 1, &o, SEC, &v, &r) != SVCPLANE_OK) w->refused++;
      if (v == SVCPLANE_VERDICT_FORWARD) w->forwarded++;
    }
  return NULL;
}

static void test_sharded(void) {
  svcplane_config cfg;
  svcplane_config_init(&cfg);
  cfg.max_flows = 4096;
  cfg.seed_is_set = 1;
  cfg.seed = 7;
  svcplane_t* dp = NULL;
  char err[128];
  CHECK(svcplane_create_sharded(&cfg, 0, &dp, err, sizeof err) == SVCPLANE_ERR_INVALID && dp == NULL &&
            strstr(err, "shards"),
        "0 shards refused");
  CHECK(svcplane_create_sharded(&cfg, 2, &dp, err, sizeof err) == SVCPLANE_OK && svcplane_shards(dp) == 2,
        "a 2-shard handle");
  svcplane_backend b = backend(1, "10.180.0.1", 8080);
  CHECK(svcplane_upsert_backend(dp, &b) == SVCPLANE_OK, "backend on every shard");
  uint32_t ids[1] = {1};
  svcplane_frontend fe;
  svcplane_service s;
  tcp80_service(&s, &fe);
  s.backend_ids = ids;
  s.n_backends = 1;
  CHECK(svcplane_upsert_service(dp, &s) == SVCPLANE_OK, "service on every shard");

  uint8_t pkt[40];
  tcp_syn(pkt, 1234);
  svcplane_packet p = {pkt, sizeof pkt, 0};
  CHECK(svcplane_process_packets(dp, &p, 1, NULL, SEC, NULL, NULL) == SVCPLANE_ERR_INVALID &&
            strstr(svcplane_last_error(dp), "shards"),
        "the unsharded packet call refused on 2 shards");
  CHECK(svcplane_shard_process_packets(dp, 2, &p, 1, NULL, SEC, NULL, NULL) == SVCPLANE_ERR_INVALID &&
            strstr(svcplane_last_error(dp), "shard 2"),
        "a shard out of range refused");

  {
    uint8_t a[40], b2[40];
    tcp_syn(a, 20001);
    tcp_syn(b2, 20002);
    svcplane_packet two[2] = {{a, sizeof a, 0}, {b2, sizeof b2, 0}};
    uint32_t sh[2] = {9, 9};
    CHECK(svcplane_shard_of_packets(dp, two, 2, NULL, sh) == SVCPLANE_OK &&
              sh[0] == svcplane_shard_of_packet(dp, a, sizeof a, NULL) &&
              sh[1] == svcplane_shard_of_packet(dp, b2, sizeof b2, NULL),
          "batch steering agrees with steering one by one");
  }
  struct worker w[2] = {{dp, 0, 0, 0, 0}, {dp, 1, 0, 0, 0}};
  pthread_t th[2];
  for (int i = 0; i < 2; ++i) pthread_create(&th[i], NULL, packet_thread, &w[i]);
  svcplane_frontend fe2 = fe;
  fe2.addr = ip("172.30.0.2");
  svcplane_service s2 = s;
  s2.id = 2;
  s2.frontends = &fe2;
  for (int i = 0; i < 200; ++i) {
    svcplane_upsert_service(dp, &s2);
    svcplane_delete_service(dp, 2);
  }
  for (int i = 0; i < 2; ++i) pthread_join(th[i], NULL);
  CHECK(w[0].mine > 100 && w[1].mine > 100 && w[0].mine + w[1].mine == kPorts, "the flows spread over both shards");
  CHECK(w[0].refused == 0 && w[1].refused == 0, "no packet call refused");
  CHECK(w[0].forwarded + w[1].forwarded == 20 * kPorts, "every packet forwarded");
  svcplane_map_info mi;
  CHECK(
      svcplane_map_info_get(dp, SVCPLANE_MAP_CONNTRACK, &mi) == SVCPLANE_OK && mi.size == kPorts && mi.capacity == 4096,
      "conntrack info sums the shards");
  svcplane_flow f = flow("10.0.0.2", 20007, "172.30.0.1", 80, SVCPLANE_PROTO_TCP);
  svcplane_flow_info info;
  CHECK(svcplane_lookup_flow(dp, &f, &info) == SVCPLANE_OK && info.backend_id == 1, "a flow found on its shard");
  svcplane_packet_counters c;
  svcplane_get_packet_counters(dp, &c);
  CHECK(c.packets == 20 * kPorts, "packet counters sum the shards");
  uint32_t removed = 0;
  CHECK(svcplane_flush_conntrack(dp, &removed) == SVCPLANE_OK && removed == kPorts, "flush empties every shard");
  svcplane_destroy(dp);
}

/* One TCP service at 198.51.100.9:80 over a backend at 10.1.0.7:8080 with id `id` (ids differ
 * across the two dataplanes, as they do across runs). */
static svcplane_t* handoff_dataplane(uint32_t id) {
  svcplane_t* dp = make(16, 16);
  svcplane_backend b = backend(id, "10.1.0.7", 8080);
  svcplane_upsert_backend(dp, &b);
  svcplane_frontend fe = {
      .addr = ip("198.51.100.9"), .port = 80, .protocol = SVCPLANE_PROTO_TCP, .scope = SVCPLANE_SCOPE_EXTERNAL};
  svcplane_service s = {.id = id + 100,
                        .empty_verdict = SVCPLANE_VERDICT_REJECT,
                        .frontends = &fe,
                        .n_frontends = 1,
                        .n_backends = 1,
                        .backend_ids = &id};
  svcplane_upsert_service(dp, &s);
  return dp;
}

static void test_flow_handoff(void) {
  svcplane_t* a = handoff_dataplane(1);
  svcplane_flow f = flow("203.0.113.8", 40000, "198.51.100.9", 80, SVCPLANE_PROTO_TCP);
  svcplane_decision d;
  svcplane_decide(a, &f, 1 * SEC, &d);
  size_t len = 0;
  CHECK(svcplane_export_flows(a, 2 * SEC, NULL, 0, &len) == SVCPLANE_ERR_FULL && len == 24 + 136,
        "export: the size needed");
  uint8_t blob[24 + 136];
  CHECK(svcplane_export_flows(a, 2 * SEC, blob, sizeof blob, &len) == SVCPLANE_OK && len == sizeof blob, "exported");
  svcplane_t* b = handoff_dataplane(5);
  uint32_t imported = 9, dropped = 9;
  blob[8] = 7; /* version 7 */
  CHECK(svcplane_import_flows(b, blob, len, 3 * SEC, &imported, &dropped) == SVCPLANE_ERR_INVALID &&
            strstr(svcplane_last_error(b), "version 7") && imported == 9,
        "a bad version is refused, naming it");
  blob[8] = 1;
  CHECK(svcplane_import_flows(b, blob, len - 1, 3 * SEC, NULL, NULL) == SVCPLANE_ERR_INVALID,
        "a short blob is refused");
  CHECK(
      svcplane_import_flows(b, blob, len, 3 * SEC, &imported, &dropped) == SVCPLANE_OK && imported == 1 && dropped == 0,
      "the flow is imported");
  svcplane_flow_info fi;
  CHECK(svcplane_lookup_flow(b, &f, &fi) == SVCPLANE_OK && fi.backend_id == 5 && fi.service_id == 105,
        "found again with the new dataplane's ids");
  CHECK(svcplane_import_flows(b, NULL, 0, 0, NULL, NULL) == SVCPLANE_ERR_INVALID, "NULL blob refused");
  svcplane_destroy(a);
  svcplane_destroy(b);
}

int main(void) {
  test_create();
  test_errors();
  test_source_ranges_and_expiry();
  test_helpers();
  test_packet_api();
  test_reply_sink_across_chunks();
  test_sharded();
  test_flow_handoff();
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

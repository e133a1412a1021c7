/*
 * Embedding svcplane from C: program two services, route packets through them.
 *
 *   web  172.30.0.10:80/TCP  -> 3 backends 10.1.0.{1,2,3}:8080, Maglev
 *   dns  172.30.0.53:53/UDP  -> 2 backends 10.2.0.{1,2}:5353, round robin, ClientIP affinity
 *
 * Each step checks what the dataplane answered; the program exits 1 on the first surprise,
 * so ctest fails when the library misbehaves.
 *
 * Build: cc -I include examples/c/two_services.c -L native/build/capi -lsvcplane -o two_services
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svcplane.h"

static int failures = 0;

#define CHECK(cond, ...)                              \
  do {                                                \
    if (!(cond)) {                                    \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                   \
      fprintf(stderr, "\n");                          \
      failures++;                                     \
    }                                                 \
  } while (0)

#define MUST(call)                                                                              \
  do {                                                                                          \
    int rc_ = (call);                                                                           \
    if (rc_ != SVCPLANE_OK) {                                                                   \
      fprintf(stderr, "FAIL %s:%d: %s -> %s: %s\n", __FILE__, __LINE__, #call, svcplane_status_name(rc_), \
              svcplane_last_error(dp));                                                         \
      exit(1);                                                                                  \
    }                                                                                           \
  } while (0)

static svcplane_addr ip(const char* text) {
  svcplane_addr a;
  if (svcplane_addr_parse(text, &a) != SVCPLANE_OK) {
    fprintf(stderr, "bad address %s\n", text);
    exit(1);
  }
  return a;
}

static const char* fmt(const svcplane_addr* a, char* buf) {
  svcplane_addr_format(a, buf, 64);
  return buf;
}

/* A real proxy passes clock_gettime(CLOCK_MONOTONIC); this example runs on virtual time so
 * its output is the same on every run. */
static uint64_t now_ns = 1000000000ull;

static svcplane_flow tuple(const char* src, uint16_t sport, const char* dst, uint16_t dport, uint8_t proto,
                           uint8_t flags) {
  svcplane_flow f;
  memset(&f, 0, sizeof f);
  f.src = ip(src);
  f.dst = ip(dst);
  f.sport = sport;
  f.dport = dport;
  f.protocol = proto;
  f.scope = SVCPLANE_SCOPE_INTERNAL;
  f.tcp_flags = flags;
  f.bytes = 60;
  return f;
}

/* ---- raw packets: a minimal IPv4 + UDP / TCP builder and checksum check ---------------- */

static uint32_t sum16(const uint8_t* p, size_t n, uint32_t acc) {
  for (size_t i = 0; i + 1 < n; i += 2) acc += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (n & 1) acc += (uint32_t)(p[n - 1] << 8);
  return acc;
}

static uint16_t fold(uint32_t acc) {
  while (acc >> 16) acc = (acc & 0xffff) + (acc >> 16);
  return (uint16_t)~acc;
}

/* Checksum of the L4 segment with the IPv4 pseudo-header. */
static uint16_t l4_checksum(const uint8_t* ip, size_t len) {
  uint32_t acc = sum16(ip + 12, 8, 0); /* source and destination */
  acc += ip[9];
  acc += (uint32_t)(len - 20);
  return fold(sum16(ip + 20, len - 20, acc));
}

/* An IPv4 packet (no options) with a UDP datagram carrying `payload`; checksums filled in. */
static uint32_t build_udp4(uint8_t* b, const char* src, uint16_t sport, const char* dst, uint16_t dport, const char* payload) {
  size_t plen = strlen(payload), len = 20 + 8 + plen;
  svcplane_addr s = ip(src), d = ip(dst);
  memset(b, 0, len);
  b[0] = 0x45;
  b[2] = (uint8_t)(len >> 8);
  b[3] = (uint8_t)len;
  b[8] = 64;
  b[9] = SVCPLANE_PROTO_UDP;
  memcpy(b + 12, s.bytes + 12, 4);
  memcpy(b + 16, d.bytes + 12, 4);
  uint16_t c = fold(sum16(b, 20, 0));
  b[10] = (uint8_t)(c >> 8);
  b[11] = (uint8_t)c;
  b[20] = (uint8_t)(sport >> 8);
  b[21] = (uint8_t)sport;
  b[22] = (uint8_t)(dport >> 8);
  b[23] = (uint8_t)dport;
  b[24] = (uint8_t)((8 + plen) >> 8);
  b[25] = (uint8_t)(8 + plen);
  memcpy(b + 28, payload, plen);
  c = l4_checksum(b, len);
  b[26] = (uint8_t)(c >> 8);
  b[27] = (uint8_t)c;
  return (uint32_t)len;
}

static int checksums_ok(const uint8_t* b, size_t len) {
  return fold(sum16(b, 20, 0)) == 0 && fold(sum16(b + 12, 8, b[9] + (uint32_t)(len - 20)) + sum16(b + 20, len - 20, 0)) == 0;
}

static const char* ip4(const uint8_t* p, char* buf) {
  snprintf(buf, 64, "%u.%u.%u.%u", p[0], p[1], p[2], p[3]);
  return buf;
}

int main(void) {
  char a[64], b[64];
  svcplane_config cfg;
  svcplane_config_init(&cfg);
  cfg.max_flows = 4096;
  cfg.seed_is_set = 1; /* deterministic hashing for a reproducible example */
  cfg.seed = 42;

  svcplane_t* dp = NULL;
  char err[256];
  if (svcplane_create(&cfg, &dp, err, sizeof err) != SVCPLANE_OK) {
    fprintf(stderr, "svcplane_create: %s\n", err);
    return 1;
  }
  printf("svcplane ABI %u\n", svcplane_abi_version());

  /* Backends are shared records, programmed first; services list them by id. */
  const char* web_ips[] = {"10.1.0.1", "10.1.0.2", "10.1.0.3"};
  for (uint32_t i = 0; i < 3; i++) {
    svcplane_backend be = {0};
    be.id = 1 + i;
    be.addr = ip(web_ips[i]);
    be.port = 8080;
    be.state = SVCPLANE_BACKEND_ACTIVE;
    be.weight = 1;
    MUST(svcplane_upsert_backend(dp, &be));
  }
  const char* dns_ips[] = {"10.2.0.1", "10.2.0.2"};
  for (uint32_t i = 0; i < 2; i++) {
    svcplane_backend be = {0};
    be.id = 11 + i;
    be.addr = ip(dns_ips[i]);
    be.port = 5353;
    be.weight = 1;
    MUST(svcplane_upsert_backend(dp, &be));
  }

  svcplane_frontend web_fe = {0};
  web_fe.addr = ip("172.30.0.10");
  web_fe.port = 80;
  web_fe.protocol = SVCPLANE_PROTO_TCP;
  web_fe.scope = SVCPLANE_SCOPE_INTERNAL;
  uint32_t web_backends[] = {1, 2, 3};
  svcplane_service web = {0};
  web.id = 1;
  web.scheduler = SVCPLANE_SCHED_MAGLEV;
  web.empty_verdict = SVCPLANE_VERDICT_REJECT;
  web.frontends = &web_fe;
  web.n_frontends = 1;
  web.backend_ids = web_backends;
  web.n_backends = 3;
  MUST(svcplane_upsert_service(dp, &web));

  svcplane_frontend dns_fe = {0};
  dns_fe.addr = ip("172.30.0.53");
  dns_fe.port = 53;
  dns_fe.protocol = SVCPLANE_PROTO_UDP;
  dns_fe.scope = SVCPLANE_SCOPE_INTERNAL;
  uint32_t dns_backends[] = {11, 12};
  svcplane_service dns = {0};
  dns.id = 2;
  dns.scheduler = SVCPLANE_SCHED_RR;
  dns.empty_verdict = SVCPLANE_VERDICT_REJECT;
  dns.affinity_timeout_ns = 10800ull * 1000000000ull; /* sessionAffinity: ClientIP */
  dns.frontends = &dns_fe;
  dns.n_frontends = 1;
  dns.backend_ids = dns_backends;
  dns.n_backends = 2;
  MUST(svcplane_upsert_service(dp, &dns));

  /* 1. A TCP connection: SYN, the backend's SYN-ACK (a reply), the client's ACK. */
  svcplane_decision d;
  svcplane_flow syn = tuple("10.0.0.2", 40000, "172.30.0.10", 80, SVCPLANE_PROTO_TCP, SVCPLANE_TCP_SYN);
  MUST(svcplane_decide(dp, &syn, now_ns, &d));
  printf("SYN 10.0.0.2:40000 -> 172.30.0.10:80: %s to %s:%u (backend %u)\n", svcplane_verdict_name(d.verdict),
         fmt(&d.addr, a), d.port, d.backend_id);
  CHECK(d.verdict == SVCPLANE_VERDICT_FORWARD && d.service_id == 1 && !d.established, "first SYN is forwarded as a new flow");
  CHECK(d.backend_id >= 1 && d.backend_id <= 3 && d.port == 8080, "a web backend");
  uint32_t chosen = d.backend_id;
  svcplane_addr backend = d.addr;

  svcplane_flow synack = tuple("10.1.0.1", 8080, "10.0.0.2", 40000, SVCPLANE_PROTO_TCP, SVCPLANE_TCP_SYN | SVCPLANE_TCP_ACK);
  synack.src = backend;
  MUST(svcplane_decide(dp, &synack, now_ns, &d));
  printf("SYN-ACK %s:8080 -> 10.0.0.2:40000: %s, source becomes %s:%u\n", fmt(&backend, b), svcplane_verdict_name(d.verdict),
         fmt(&d.addr, a), d.port);
  CHECK(d.verdict == SVCPLANE_VERDICT_REPLY && d.port == 80 && memcmp(&d.addr, &web_fe.addr, 16) == 0,
        "the reply is reverse-NATed to the service address");

  svcplane_flow ack = syn;
  ack.tcp_flags = SVCPLANE_TCP_ACK;
  MUST(svcplane_decide(dp, &ack, now_ns, &d));
  CHECK(d.verdict == SVCPLANE_VERDICT_FORWARD && d.established && d.backend_id == chosen, "the ACK follows the flow");

  svcplane_flow_info info;
  MUST(svcplane_lookup_flow(dp, &syn, &info));
  CHECK(info.backend_id == chosen && info.packets[0] == 2 && info.packets[1] == 1, "conntrack counted 2 packets out, 1 back");

  /* 2. Many clients in one batch: spread across the three web backends. */
  enum { N = 3000 };
  static svcplane_flow flows[N];
  static svcplane_decision out[N];
  for (uint32_t i = 0; i < N; i++) {
    char src[32];
    snprintf(src, sizeof src, "10.0.%u.%u", (i / 250) + 1, (i % 250) + 1);
    flows[i] = tuple(src, (uint16_t)(30000 + i), "172.30.0.10", 80, SVCPLANE_PROTO_TCP, SVCPLANE_TCP_SYN);
  }
  MUST(svcplane_decide_batch(dp, flows, N, now_ns, out));
  uint32_t per_backend[4] = {0};
  for (uint32_t i = 0; i < N; i++) {
    CHECK(out[i].verdict == SVCPLANE_VERDICT_FORWARD, "batch flow %u forwarded", i);
    if (out[i].backend_id >= 1 && out[i].backend_id <= 3) per_backend[out[i].backend_id]++;
  }
  printf("batch of %d new flows: backend 1 %u, backend 2 %u, backend 3 %u\n", N, per_backend[1], per_backend[2], per_backend[3]);
  for (int i = 1; i <= 3; i++) CHECK(per_backend[i] > N / 6, "backend %d gets a fair share (%u)", i, per_backend[i]);

  /* 3. UDP with ClientIP affinity: one client, many source ports, one backend. */
  uint32_t first_dns = 0;
  for (uint16_t port = 50000; port < 50020; port++) {
    svcplane_flow q = tuple("10.0.0.7", port, "172.30.0.53", 53, SVCPLANE_PROTO_UDP, 0);
    MUST(svcplane_decide(dp, &q, now_ns, &d));
    CHECK(d.verdict == SVCPLANE_VERDICT_FORWARD && d.service_id == 2 && d.port == 5353, "dns query forwarded");
    if (port == 50000) first_dns = d.backend_id;
    CHECK(d.backend_id == first_dns, "affinity keeps port %u on backend %u (got %u)", port, first_dns, d.backend_id);
  }
  printf("UDP 10.0.0.7 -> 172.30.0.53:53 from 20 ports: all on backend %u (ClientIP affinity)\n", first_dns);

  /* 4. A rolling update: backend `chosen` terminates. Its flow stays, new flows avoid it. */
  svcplane_backend term = {0};
  term.id = chosen;
  term.addr = backend;
  term.port = 8080;
  term.state = SVCPLANE_BACKEND_TERMINATING;
  term.weight = 1;
  MUST(svcplane_upsert_backend(dp, &term));
  MUST(svcplane_decide(dp, &ack, now_ns, &d));
  CHECK(d.backend_id == chosen && d.established, "the established flow keeps its terminating backend");
  uint32_t to_terminating = 0;
  for (uint32_t i = 0; i < 500; i++) {
    svcplane_flow f = tuple("10.9.0.1", (uint16_t)(1000 + i), "172.30.0.10", 80, SVCPLANE_PROTO_TCP, SVCPLANE_TCP_SYN);
    MUST(svcplane_decide(dp, &f, now_ns, &d));
    if (d.backend_id == chosen) to_terminating++;
  }
  printf("backend %u terminating: established flow kept, %u of 500 new flows sent to it\n", chosen, to_terminating);
  CHECK(to_terminating == 0, "no new flow goes to a terminating backend");

  /* 5. A service without backends rejects; an unknown destination passes. */
  web.n_backends = 0;
  MUST(svcplane_upsert_service(dp, &web));
  svcplane_flow late = tuple("10.0.0.99", 1234, "172.30.0.10", 80, SVCPLANE_PROTO_TCP, SVCPLANE_TCP_SYN);
  MUST(svcplane_decide(dp, &late, now_ns, &d));
  printf("web without backends: %s (%s)\n", svcplane_verdict_name(d.verdict), svcplane_reason_name(d.reason));
  CHECK(d.verdict == SVCPLANE_VERDICT_REJECT && d.reason == SVCPLANE_REASON_NO_BACKENDS, "no backends: reject");
  svcplane_flow other = tuple("10.0.0.2", 1, "8.8.8.8", 443, SVCPLANE_PROTO_TCP, SVCPLANE_TCP_SYN);
  MUST(svcplane_decide(dp, &other, now_ns, &d));
  CHECK(d.verdict == SVCPLANE_VERDICT_PASS && d.reason == SVCPLANE_REASON_NO_FRONTEND, "not service traffic: pass");

  /* 6. Counters and maps. */
  svcplane_counters c;
  MUST(svcplane_get_counters(dp, &c));
  printf("counters: %llu tuples, forward %llu, reply %llu, reject %llu, pass %llu\n", (unsigned long long)c.packets,
         (unsigned long long)c.verdicts[SVCPLANE_VERDICT_FORWARD], (unsigned long long)c.verdicts[SVCPLANE_VERDICT_REPLY],
         (unsigned long long)c.verdicts[SVCPLANE_VERDICT_REJECT], (unsigned long long)c.verdicts[SVCPLANE_VERDICT_PASS]);
  CHECK(c.packets == 3 + N + 20 + 1 + 500 + 2, "every decision counted (%llu)", (unsigned long long)c.packets);
  for (uint32_t m = 0; m < SVCPLANE_MAPS; m++) {
    svcplane_map_info mi;
    MUST(svcplane_map_info_get(dp, m, &mi));
    printf("map %-10s %6u / %-6u entries, %llu bytes\n", mi.name, mi.size, mi.capacity, (unsigned long long)mi.bytes);
  }
  svcplane_map_info ct;
  MUST(svcplane_map_info_get(dp, SVCPLANE_MAP_CONNTRACK, &ct));
  /* Emptying web's set removed nothing from conntrack: its flows (3000 + 500 + 1) and dns's 20. */
  CHECK(ct.size == 1 + N + 500 + 20, "conntrack holds every flow (%u)", ct.size);

  /* 7. Raw packets: the library parses, decides and rewrites them in place. A DNS query to
   * the dns service is DNATed to a backend; the backend's answer is reverse-NATed; a packet
   * to web (no backends now) is rejected with an ICMP port unreachable written for us. */
  static uint8_t query[128], answer[128], refused[128], replies[256];
  svcplane_packet pk[1];
  uint8_t verdict, reason;
  svcplane_packet_options to_service = {0};
  to_service.direction = SVCPLANE_DIR_TO_SERVICE;
  to_service.link = SVCPLANE_LINK_RAW;
  to_service.reject = SVCPLANE_REJECT_ICMP;
  pk[0].data = query;
  pk[0].len = build_udp4(query, "10.0.0.8", 5555, "172.30.0.53", 53, "example.com?");
  MUST(svcplane_process_packets(dp, pk, 1, &to_service, now_ns, &verdict, &reason));
  uint16_t new_dport = (uint16_t)(query[22] << 8 | query[23]);
  printf("packet 10.0.0.8:5555 -> 172.30.0.53:53: %s, now to %s:%u, checksums %s\n", svcplane_verdict_name(verdict),
         ip4(query + 16, a), new_dport, checksums_ok(query, pk[0].len) ? "valid" : "BROKEN");
  CHECK(verdict == SVCPLANE_VERDICT_FORWARD, "the query is forwarded");
  CHECK(query[16] == 10 && query[17] == 2 && query[18] == 0 && (query[19] == 1 || query[19] == 2) && new_dport == 5353,
        "destination rewritten to a dns backend");
  CHECK(checksums_ok(query, pk[0].len), "IP and UDP checksums updated");

  char backend_ip[64];
  ip4(query + 16, backend_ip);
  svcplane_packet_options from_backend = to_service;
  from_backend.direction = SVCPLANE_DIR_FROM_BACKEND;
  pk[0].data = answer;
  pk[0].len = build_udp4(answer, backend_ip, 5353, "10.0.0.8", 5555, "93.184.216.34");
  MUST(svcplane_process_packets(dp, pk, 1, &from_backend, now_ns, &verdict, &reason));
  uint16_t new_sport = (uint16_t)(answer[20] << 8 | answer[21]);
  printf("packet %s:5353 -> 10.0.0.8:5555: %s, now from %s:%u\n", backend_ip, svcplane_verdict_name(verdict), ip4(answer + 12, a), new_sport);
  CHECK(verdict == SVCPLANE_VERDICT_REPLY && answer[12] == 172 && answer[15] == 53 && new_sport == 53, "the answer comes from the service");
  CHECK(checksums_ok(answer, pk[0].len), "reply checksums updated");

  /* A third service, UDP, without backends: its packets are rejected. */
  svcplane_frontend empty_fe = dns_fe;
  empty_fe.addr = ip("172.30.0.99");
  svcplane_service empty = dns;
  empty.id = 3;
  empty.frontends = &empty_fe;
  empty.n_backends = 0;
  MUST(svcplane_upsert_service(dp, &empty));
  uint32_t offsets[1], lengths[1];
  svcplane_reply_sink sink = {replies, sizeof replies, 0, offsets, lengths};
  to_service.replies = &sink;
  pk[0].data = refused;
  pk[0].len = build_udp4(refused, "10.0.0.9", 6000, "172.30.0.99", 53, "hello?");
  MUST(svcplane_process_packets(dp, pk, 1, &to_service, now_ns, &verdict, &reason));
  printf("packet 10.0.0.9:6000 -> 172.30.0.99:53 (no backends): %s (%s), %u-byte ICMP reply written\n",
         svcplane_verdict_name(verdict), svcplane_reason_name(reason), lengths[0]);
  CHECK(verdict == SVCPLANE_VERDICT_REJECT && reason == SVCPLANE_REASON_NO_BACKENDS, "no backends: rejected");
  /* The reply: IPv4, ICMP (1), type 3 code 3 (port unreachable), back to the client. */
  const uint8_t* icmp = replies + offsets[0];
  CHECK(lengths[0] >= 28 && icmp[9] == 1 && icmp[20] == 3 && icmp[21] == 3 && icmp[16] == 10 && icmp[19] == 9,
        "an ICMP port unreachable to 10.0.0.9");

  svcplane_packet_counters pc;
  MUST(svcplane_get_packet_counters(dp, &pc));
  printf("packet counters: %llu packets, %llu rewritten\n", (unsigned long long)pc.packets,
         (unsigned long long)pc.counts[SVCPLANE_PKT_REWRITTEN]);
  CHECK(pc.packets == 3 && pc.counts[SVCPLANE_PKT_REWRITTEN] == 2 && pc.counts[SVCPLANE_PKT_UDP] == 3, "packet counters");

  svcplane_destroy(dp);
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("ok\n");
  return 0;
}

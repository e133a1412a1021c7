// libFuzzer harness of the C ABI (include/svcplane.h), driven the way a C caller can drive it:
// every struct field comes from the input (out-of-range enums, bad prefix lengths, odd
// capacities and timeouts, NULL arrays with non-zero counts, NULL handles and out pointers),
// and the calls come in any order. Arrays are heap copies of exactly their declared length,
// so AddressSanitizer catches the library reading past what the caller gave it. The harness
// traps when
//  - a status is not one of SVCPLANE_OK / SVCPLANE_ERR_*, or a failed call leaves
//    svcplane_last_error() empty;
//  - a refused call changed a map (sizes and counters compared before and after);
//  - a decision has a verdict or reason out of range, a FORWARD names a backend that was never
//    programmed, or svcplane_lookup_flow cannot find the flow a FORWARD just tracked;
//  - svcplane_decide_batch disagrees with svcplane_decide on a twin handle created alike;
//  - a map is above its capacity;
//  - svcplane_addr_parse accepts text that svcplane_addr_format does not give back, or a
//    formatted address does not parse to itself.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "svcplane.h"

namespace {

[[noreturn]] void fail(const char* what) {
  fprintf(stderr, "fuzz_capi: %s\n", what);
  __builtin_trap();
}

void checkStatus(int st, const svcplane_t* h) {
  if (st < SVCPLANE_OK || st > SVCPLANE_ERR_NO_MEMORY) fail("status out of range");
  if (st != SVCPLANE_OK && h) {
    const char* e = svcplane_last_error(h);
    if (!e || !*e) fail("a failed call left no error message");
  }
  const char* name = svcplane_status_name(st);
  if (!name || !*name) fail("status without a name");
}

// Exactly n elements on the heap (n may be 0: then a 1-element allocation is made, and the
// pointer is still distinct from NULL), filled by fill(i, elem).
template <class T>
struct Exact {
  std::unique_ptr<T[]> p;
  uint32_t n;
  explicit Exact(uint32_t count) : p(new T[count ? count : 1]()), n(count) {}
  T* get() { return p.get(); }
};

svcplane_addr addrFrom(FuzzedDataProvider& in) {
  svcplane_addr a{};
  uint8_t how = in.ConsumeIntegral<uint8_t>();
  if (how < 160) {
    static const uint32_t v4[] = {0xAC1E0001, 0xAC1E0002, 0x0A010001, 0x0A010002,
                                  0xC0A8010A, 0xC0A80002, 0x7F000001, 0x0A000005};
    a = svcplane_addr_v4(v4[how % 8]);
  } else if (how < 220) {
    a.bytes[0] = 0xfd;
    a.bytes[15] = uint8_t(how % 4);
  } else {
    std::vector<uint8_t> raw = in.ConsumeBytes<uint8_t>(16);
    if (!raw.empty()) std::memcpy(a.bytes, raw.data(), raw.size());
  }
  return a;
}

uint16_t portFrom(FuzzedDataProvider& in) {
  static const uint16_t ports[] = {80, 443, 8080, 53, 40000, 0};
  uint8_t b = in.ConsumeIntegral<uint8_t>();
  return b < 240 ? ports[b % 6] : in.ConsumeIntegral<uint16_t>();
}

uint8_t protoFrom(FuzzedDataProvider& in) {
  static const uint8_t p[] = {6, 6, 17, 132, 1, 0, 255};
  return p[in.ConsumeIntegral<uint8_t>() % 7];
}

svcplane_flow flowFrom(FuzzedDataProvider& in) {
  svcplane_flow f;
  std::memset(&f, 0, sizeof f);
  f.src = addrFrom(in);
  f.dst = addrFrom(in);
  f.sport = portFrom(in);
  f.dport = portFrom(in);
  f.protocol = protoFrom(in);
  f.scope = in.ConsumeIntegral<uint8_t>() % 3;  // 2 is out of range
  f.tcp_flags = in.ConsumeIntegral<uint8_t>();
  f.bytes = in.ConsumeIntegral<uint32_t>();
  return f;
}

struct Snapshot {
  svcplane_map_info maps[SVCPLANE_MAPS];
  svcplane_counters counters;
};

Snapshot snapshot(const svcplane_t* h) {
  Snapshot s;
  std::memset(&s, 0, sizeof s);
  for (uint32_t m = 0; m < SVCPLANE_MAPS; ++m) {
    if (svcplane_map_info_get(h, m, &s.maps[m]) != SVCPLANE_OK) fail("map_info_get failed on a valid map");
    if (s.maps[m].size > s.maps[m].capacity) fail("a map above its capacity");
  }
  svcplane_get_counters(h, &s.counters);
  return s;
}

bool sameMaps(const Snapshot& a, const Snapshot& b) {
  for (uint32_t m = 0; m < SVCPLANE_MAPS; ++m) {
    if (a.maps[m].size != b.maps[m].size || a.maps[m].inserts != b.maps[m].inserts ||
        a.maps[m].deletes != b.maps[m].deletes)
      return false;
  }
  return true;
}

void checkAddrRoundTrip(FuzzedDataProvider& in) {
  std::string text = in.ConsumeRandomLengthString(64);
  svcplane_addr a;
  int st = svcplane_addr_parse(text.c_str(), &a);
  if (st != SVCPLANE_OK && st != SVCPLANE_ERR_INVALID) fail("addr_parse status");
  if (st == SVCPLANE_OK) {
    char buf[64];
    if (svcplane_addr_format(&a, buf, sizeof buf) != SVCPLANE_OK) fail("format of a parsed address failed");
    svcplane_addr b;
    if (svcplane_addr_parse(buf, &b) != SVCPLANE_OK || std::memcmp(&a, &b, sizeof a) != 0)
      fail("address does not round-trip");
  }
  // Any 16 bytes format and parse back to themselves.
  svcplane_addr r = addrFrom(in);
  char buf[64];
  if (svcplane_addr_format(&r, buf, sizeof buf) != SVCPLANE_OK) fail("format failed");
  svcplane_addr back;
  if (svcplane_addr_parse(buf, &back) != SVCPLANE_OK || std::memcmp(&r, &back, sizeof r) != 0)
    fail("formatted address does not parse back");
  // Too-small buffers are refused, not overrun.
  char small[8];
  int s2 = svcplane_addr_format(&r, small, in.ConsumeIntegral<uint8_t>() % 9);
  if (s2 != SVCPLANE_OK && s2 != SVCPLANE_ERR_INVALID) fail("format status");
  svcplane_addr_parse(nullptr, &back);
  svcplane_addr_format(nullptr, buf, sizeof buf);
  svcplane_verdict_name(in.ConsumeIntegral<uint8_t>());
  svcplane_reason_name(in.ConsumeIntegral<uint8_t>());
  svcplane_status_name(in.ConsumeIntegral<int>());
}

void run(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  svcplane_config cfg;
  svcplane_config_init(&cfg);
  // Small capacities (or out-of-range ones, refused); fixed seeds so the twins agree.
  auto cap = [&](uint32_t& field) {
    uint8_t b = in.ConsumeIntegral<uint8_t>();
    field = b < 250 ? 1 + b % 24 : (b == 250 ? (1u << 25) + 1 : b == 251 ? 0xffffffffu : field > 4096 ? 4096 : field);
  };
  cap(cfg.max_services);
  cap(cfg.max_frontends);
  cap(cfg.max_backends);
  cap(cfg.max_flows);
  cap(cfg.max_affinity);
  cap(cfg.max_nat_ports);
  cap(cfg.max_fragments);
  cfg.conntrack_full_policy = in.ConsumeIntegral<uint8_t>() % 3;
  cfg.affinity_full_policy = in.ConsumeIntegral<uint8_t>() % 3;
  cfg.seed_is_set = 1;
  cfg.seed = in.ConsumeIntegral<uint64_t>();
  cfg.rng_seed = in.ConsumeIntegral<uint64_t>();
  static const uint32_t sizes[] = {7, 251, 16381, 16380, 1, 1000033};
  cfg.maglev_table_size = sizes[in.ConsumeIntegral<uint8_t>() % 6];
  if (cfg.maglev_table_size == 16381) cfg.maglev_table_size = 13;  // keep each input cheap
  if (in.ConsumeBool()) cfg.timeouts.udp = in.ConsumeIntegral<uint8_t>();
  if (in.ConsumeBool()) cfg.timeouts.tcp_syn_sent = in.ConsumeIntegral<uint8_t>();

  char err[64];
  svcplane_t* h = nullptr;
  svcplane_t* twin = nullptr;
  int st = svcplane_create(&cfg, &h, err, in.ConsumeIntegral<uint8_t>() % sizeof err);
  checkStatus(st, nullptr);
  if (st != SVCPLANE_OK) {
    if (h) fail("create failed but returned a handle");
    checkAddrRoundTrip(in);
    return;
  }
  if (svcplane_create(&cfg, &twin, nullptr, 0) != SVCPLANE_OK) fail("twin create failed");
  if (svcplane_create(&cfg, nullptr, err, sizeof err) != SVCPLANE_ERR_INVALID) fail("create with out NULL");

  std::vector<uint32_t> programmed;  // backend ids ever accepted
  uint64_t now = 1000000000000ull;
  uint32_t ops = 0;
  while (in.remaining_bytes() && ops++ < 128) {
    uint8_t op = in.ConsumeIntegral<uint8_t>() % 14;
    Snapshot before = snapshot(h);
    int s = SVCPLANE_OK, s2 = SVCPLANE_OK;
    bool control = true;
    switch (op) {
      case 0:
      case 1: {
        svcplane_backend b;
        std::memset(&b, 0, sizeof b);
        b.id = in.ConsumeIntegral<uint8_t>() % 10;
        b.addr = addrFrom(in);
        b.port = portFrom(in);
        b.state = in.ConsumeIntegral<uint8_t>() % 4;
        b.node_local = in.ConsumeIntegral<uint8_t>();
        uint8_t w = in.ConsumeIntegral<uint8_t>();
        b.weight = w < 250 ? w % 5 : 65536 + w;
        b.zone = in.ConsumeIntegral<uint16_t>();
        bool nullArg = in.ConsumeIntegral<uint8_t>() == 0;
        s = svcplane_upsert_backend(h, nullArg ? nullptr : &b);
        s2 = svcplane_upsert_backend(twin, nullArg ? nullptr : &b);
        if (s == SVCPLANE_OK) programmed.push_back(b.id);
        break;
      }
      case 2: {
        uint32_t id = in.ConsumeIntegral<uint8_t>() % 10;
        s = svcplane_delete_backend(h, id);
        s2 = svcplane_delete_backend(twin, id);
        break;
      }
      case 3:
      case 4: {
        svcplane_service sv;
        std::memset(&sv, 0, sizeof sv);
        sv.id = in.ConsumeIntegral<uint8_t>() % 8;
        sv.scheduler = in.ConsumeIntegral<uint8_t>() % 10;
        uint8_t ev = in.ConsumeIntegral<uint8_t>();
        sv.empty_verdict = ev < 250 ? (ev & 1 ? SVCPLANE_VERDICT_DROP : SVCPLANE_VERDICT_REJECT) : ev % 6;
        uint8_t at = in.ConsumeIntegral<uint8_t>();
        sv.affinity_timeout_ns = at < 128 ? 0 : at < 250 ? uint64_t(at) * 1000000000ull : ~0ull - at;
        uint32_t nfe = in.ConsumeIntegral<uint8_t>() % 5, nbe = in.ConsumeIntegral<uint8_t>() % 6,
                 nsr = in.ConsumeIntegral<uint8_t>() % 3;
        Exact<svcplane_frontend> fe(nfe);
        for (uint32_t i = 0; i < nfe; ++i) {
          svcplane_frontend& f = fe.get()[i];
          f.addr = addrFrom(in);
          f.port = portFrom(in);
          f.protocol = protoFrom(in);
          f.scope = in.ConsumeIntegral<uint8_t>() % 3;
          f.check_source_ranges = in.ConsumeIntegral<uint8_t>();
          f.masquerade = in.ConsumeIntegral<uint8_t>() % 5;
        }
        Exact<uint32_t> be(nbe);
        for (uint32_t i = 0; i < nbe; ++i) be.get()[i] = in.ConsumeIntegral<uint8_t>() % 11;
        Exact<svcplane_cidr> sr(nsr);
        for (uint32_t i = 0; i < nsr; ++i) {
          sr.get()[i].addr = addrFrom(in);
          sr.get()[i].prefix_len = in.ConsumeIntegral<uint8_t>() % 140;
        }
        uint8_t nulls = in.ConsumeIntegral<uint8_t>();
        sv.frontends = nulls == 1 ? nullptr : fe.get();
        sv.n_frontends = nfe;
        sv.backend_ids = nulls == 2 ? nullptr : be.get();
        sv.n_backends = nbe;
        sv.source_ranges = nulls == 3 ? nullptr : sr.get();
        sv.n_source_ranges = nsr;
        s = svcplane_upsert_service(h, nulls == 4 ? nullptr : &sv);
        s2 = svcplane_upsert_service(twin, nulls == 4 ? nullptr : &sv);
        break;
      }
      case 5: {
        uint32_t id = in.ConsumeIntegral<uint8_t>() % 8;
        s = svcplane_delete_service(h, id);
        s2 = svcplane_delete_service(twin, id);
        break;
      }
      case 6:
      case 7: {
        control = false;
        uint32_t n = in.ConsumeIntegral<uint8_t>() % 70;  // crosses the 64-flow chunk
        Exact<svcplane_flow> flows(n);
        for (uint32_t i = 0; i < n; ++i) flows.get()[i] = flowFrom(in);
        Exact<svcplane_decision> out(n), one(n);
        s = svcplane_decide_batch(h, flows.get(), n, now, out.get());
        for (uint32_t i = 0; i < n; ++i) {
          s2 = svcplane_decide(twin, &flows.get()[i], now, &one.get()[i]);
          checkStatus(s2, twin);
        }
        s2 = s;
        for (uint32_t i = 0; i < n; ++i) {
          const svcplane_decision& d = out.get()[i];
          if (std::memcmp(&d, &one.get()[i], sizeof d) != 0) fail("decide_batch differs from decide");
          if (d.verdict >= SVCPLANE_VERDICTS || d.reason >= SVCPLANE_REASONS) fail("decision out of range");
          if (d.verdict == SVCPLANE_VERDICT_FORWARD) {
            bool known = false;
            for (uint32_t id : programmed) known |= id == d.backend_id;
            if (!known) fail("forward to a backend never programmed");
          }
        }
        // The last decision's flow, when forwarded, is tracked now.
        if (n && out.get()[n - 1].verdict == SVCPLANE_VERDICT_FORWARD) {
          svcplane_flow_info fi;
          if (svcplane_lookup_flow(h, &flows.get()[n - 1], &fi) != SVCPLANE_OK) fail("forwarded flow not tracked");
          if (fi.backend_id != out.get()[n - 1].backend_id) fail("tracked flow names another backend");
        }
        break;
      }
      case 8: {
        control = false;
        svcplane_flow f = flowFrom(in);
        svcplane_flow_info fi;
        s = svcplane_lookup_flow(h, &f, &fi);
        if (s != SVCPLANE_OK && s != SVCPLANE_ERR_NOT_FOUND) fail("lookup_flow status");
        s2 = s;
        svcplane_lookup_flow(h, nullptr, &fi);
        svcplane_lookup_flow(h, &f, nullptr);
        break;
      }
      case 9: {
        control = false;
        now += uint64_t(in.ConsumeIntegral<uint8_t>()) * 1000000000ull;
        uint32_t budget = in.ConsumeIntegral<uint16_t>();
        uint32_t fa = 0, aa = 0, fb = 0, ab = 0;
        s = svcplane_gc(h, now, budget, in.ConsumeBool() ? &fa : nullptr, &aa);
        s2 = svcplane_gc(twin, now, budget, &fb, &ab);
        break;
      }
      case 10: {
        control = false;
        uint8_t which = in.ConsumeIntegral<uint8_t>();
        uint32_t id = in.ConsumeIntegral<uint8_t>() % 10, r1 = 0, r2 = 0;
        if (which % 3 == 0) {
          s = svcplane_delete_flows_by_backend(h, id, &r1);
          s2 = svcplane_delete_flows_by_backend(twin, id, &r2);
        } else if (which % 3 == 1) {
          s = svcplane_delete_flows_by_service(h, id, nullptr);
          s2 = svcplane_delete_flows_by_service(twin, id, nullptr);
        } else {
          s = svcplane_flush_conntrack(h, &r1);
          s2 = svcplane_flush_conntrack(twin, &r2);
          svcplane_map_info ct;
          svcplane_map_info_get(h, SVCPLANE_MAP_CONNTRACK, &ct);
          if (ct.size != 0) fail("flush left flows");
        }
        if (r1 != r2) fail("removal counts differ between twins");
        break;
      }
      case 11: {
        control = false;
        // Raw packets through the C ABI: bytes straight from the input, in exact-size buffers.
        uint32_t n = in.ConsumeIntegral<uint8_t>() % 6;
        std::vector<std::unique_ptr<uint8_t[]>> bufs, twinBufs;
        Exact<svcplane_packet> pk(n), twinPk(n);
        for (uint32_t i = 0; i < n; ++i) {
          std::vector<uint8_t> bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegral<uint8_t>());
          for (auto* v : {&bufs, &twinBufs}) {
            v->emplace_back(new uint8_t[bytes.size() ? bytes.size() : 1]);
            if (!bytes.empty()) std::memcpy(v->back().get(), bytes.data(), bytes.size());
          }
          pk.get()[i].data = bufs.back().get();
          pk.get()[i].len = uint32_t(bytes.size());
          twinPk.get()[i].data = twinBufs.back().get();
          twinPk.get()[i].len = uint32_t(bytes.size());
        }
        svcplane_packet_options o;
        std::memset(&o, 0, sizeof o);
        o.direction = in.ConsumeIntegral<uint8_t>() % 3;
        o.link = in.ConsumeIntegral<uint8_t>() % 3;
        o.from_node = in.ConsumeIntegral<uint8_t>();
        o.reject = in.ConsumeIntegral<uint8_t>() % 4;
        uint32_t rcap = in.ConsumeIntegral<uint8_t>() * 4u;
        Exact<uint8_t> rdata(rcap), twinData(rcap);
        Exact<uint32_t> roff(n), rlen(n), twinOff(n), twinLen(n);
        svcplane_reply_sink sink{rdata.get(), rcap, 0, roff.get(), rlen.get()};
        svcplane_reply_sink twinSink{twinData.get(), rcap, 0, twinOff.get(), twinLen.get()};
        bool withReplies = in.ConsumeBool();
        Exact<uint8_t> v(n), r(n), tv(n), tr(n);
        bool nullArrays = in.ConsumeIntegral<uint8_t>() < 30;
        bool withOptions = in.ConsumeBool();
        o.replies = withReplies ? &sink : nullptr;
        svcplane_packet_options to = o;
        to.replies = withReplies ? &twinSink : nullptr;
        s = svcplane_process_packets(h, pk.get(), n, withOptions ? &o : nullptr, now, nullArrays ? nullptr : v.get(),
                                     r.get());
        // The twin takes the same packets one at a time (with its arrays), and must agree.
        s2 = SVCPLANE_OK;
        if (s == SVCPLANE_OK && !(withOptions && withReplies)) {
          for (uint32_t i = 0; i < n && s2 == SVCPLANE_OK; ++i)
            s2 = svcplane_process_packets(twin, &twinPk.get()[i], 1, withOptions ? &to : nullptr, now, &tv.get()[i],
                                          &tr.get()[i]);
          for (uint32_t i = 0; i < n; ++i) {
            if (!nullArrays && v.get()[i] != tv.get()[i])
              fail("process_packets batch verdict differs from one at a time");
            if (r.get()[i] != tr.get()[i]) fail("process_packets batch reason differs from one at a time");
            if (std::memcmp(pk.get()[i].data, twinPk.get()[i].data, pk.get()[i].len) != 0)
              fail("batch rewrote differently");
          }
        } else {
          s2 = svcplane_process_packets(twin, twinPk.get(), n, withOptions ? &to : nullptr, now,
                                        nullArrays ? nullptr : tv.get(), tr.get());
        }
        if (s == SVCPLANE_OK && !nullArrays)
          for (uint32_t i = 0; i < n; ++i)
            if (v.get()[i] >= SVCPLANE_VERDICTS || r.get()[i] >= SVCPLANE_PACKET_REASONS)
              fail("packet verdict out of range");
        if (sink.used > rcap) fail("reply sink overflow");
        svcplane_packet_counters pc;
        svcplane_get_packet_counters(h, &pc);
        break;
      }
      case 12: {
        svcplane_packet_config pc;
        std::memset(&pc, 0, sizeof pc);
        uint32_t nn = in.ConsumeIntegral<uint8_t>() % 3, np = in.ConsumeIntegral<uint8_t>() % 3;
        Exact<svcplane_addr> nodes(nn);
        for (uint32_t i = 0; i < nn; ++i) nodes.get()[i] = addrFrom(in);
        Exact<svcplane_cidr> pods(np);
        for (uint32_t i = 0; i < np; ++i) {
          pods.get()[i].addr = addrFrom(in);
          pods.get()[i].prefix_len = in.ConsumeIntegral<uint8_t>() % 140;
        }
        uint8_t nulls = in.ConsumeIntegral<uint8_t>();
        pc.node_addrs = nulls == 1 ? nullptr : nodes.get();
        pc.n_node_addrs = nn;
        pc.pod_cidrs = nulls == 2 ? nullptr : pods.get();
        pc.n_pod_cidrs = np;
        pc.masquerade_all = in.ConsumeIntegral<uint8_t>();
        pc.has_masq4 = in.ConsumeIntegral<uint8_t>() & 1;
        pc.has_masq6 = in.ConsumeIntegral<uint8_t>() & 1;
        pc.masq4 = addrFrom(in);
        pc.masq6 = addrFrom(in);
        pc.nat_port_low = portFrom(in);
        pc.nat_port_high = portFrom(in);
        s = svcplane_set_packet_config(h, nulls == 3 ? nullptr : &pc);
        s2 = svcplane_set_packet_config(twin, nulls == 3 ? nullptr : &pc);
        uint64_t ft = in.ConsumeIntegral<uint8_t>();
        checkStatus(svcplane_set_fragment_timeout(h, ft), h);
        checkStatus(svcplane_set_fragment_timeout(twin, ft), twin);
        break;
      }
      default: {
        control = false;
        // NULL handles and pointers everywhere: refused, never dereferenced.
        svcplane_flow f = flowFrom(in);
        svcplane_decision d;
        if (svcplane_decide(nullptr, &f, now, &d) != SVCPLANE_ERR_INVALID) fail("decide(NULL)");
        if (svcplane_decide(h, nullptr, now, &d) != SVCPLANE_ERR_INVALID) fail("decide(flow NULL)");
        if (svcplane_decide(h, &f, now, nullptr) != SVCPLANE_ERR_INVALID) fail("decide(out NULL)");
        if (svcplane_decide_batch(h, nullptr, 3, now, &d) != SVCPLANE_ERR_INVALID) fail("decide_batch(NULL)");
        if (svcplane_decide_batch(h, &f, 0, now, nullptr) != SVCPLANE_OK) fail("decide_batch(n = 0)");
        if (svcplane_upsert_backend(nullptr, nullptr) != SVCPLANE_ERR_INVALID) fail("upsert_backend(NULL)");
        if (svcplane_map_info_get(h, SVCPLANE_MAPS + in.ConsumeIntegral<uint8_t>(), nullptr) == SVCPLANE_OK)
          fail("map_info_get(bad)");
        svcplane_map_info mi;
        if (svcplane_map_info_get(h, SVCPLANE_MAPS + in.ConsumeIntegral<uint8_t>(), &mi) == SVCPLANE_OK)
          fail("map_info_get(bad map)");
        if (svcplane_get_counters(nullptr, nullptr) == SVCPLANE_OK) fail("get_counters(NULL)");
        svcplane_process_packets(h, nullptr, 2, nullptr, now, nullptr, nullptr);
        svcplane_gc(nullptr, now, 1, nullptr, nullptr);
        svcplane_destroy(nullptr);
        checkAddrRoundTrip(in);
        s = s2 = SVCPLANE_OK;
        break;
      }
    }
    checkStatus(s, h);
    if (s != s2) fail("twin handles answered differently");
    Snapshot after = snapshot(h);
    if (control && s != SVCPLANE_OK && !sameMaps(before, after)) fail("a refused call changed a map");
  }
  svcplane_destroy(h);
  svcplane_destroy(twin);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return 0;
  run(data, size);
  return 0;
}

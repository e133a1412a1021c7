// The batch packet path end to end on real packets: DNAT and reverse NAT for IPv4/IPv6
// TCP/UDP/SCTP, masquerade with the NAT port map, ICMP error translation, fragments, reject
// replies, and the parser's refusal of truncated packets (every prefix of valid packets).
#include <cstring>

#include "check.h"
#include "core/dataplane.h"
#include "core/packet_parse.h"
#include "packet_builder.h"

using namespace svcplane;

namespace {

constexpr uint64_t S = 1000000000ull;

IpAddr ip(const pb::Addr& a) {
  IpAddr x{};
  if (a.family == 4) {
    x.b[10] = x.b[11] = 0xff;
    std::memcpy(x.b + 12, a.b, 4);
  } else {
    std::memcpy(x.b, a.b, 16);
  }
  return x;
}

const pb::Addr kClient = pb::v4(192, 168, 1, 10), kVip = pb::v4(172, 30, 0, 41), kBackend = pb::v4(10, 180, 0, 1),
               kNode = pb::v4(192, 168, 0, 2), kPod = pb::v4(10, 0, 0, 5);
const pb::Addr kClient6 = pb::v6({0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x10}),
               kVip6 = pb::v6({0xfd00, 0, 0, 0, 0, 0, 0, 0x41}), kBackend6 = pb::v6({0xfd00, 1, 0, 0, 0, 0, 0, 1});

struct Fixture {
  Dataplane dp;
  explicit Fixture(MasqPolicy masq = MasqPolicy::Never, Verdict empty = Verdict::Reject, bool withBackend = true)
      : dp([] {
          DataplaneConfig c;
          c.maxServices = 8;
          c.maxFrontends = 16;
          c.maxBackends = 8;
          c.maxFlows = 64;
          c.maxAffinity = 8;
          c.maxNatPorts = 16;
          c.maxFragments = 8;
          c.seed = 1;
          return c;
        }()) {
    dp.upsertBackend(BackendSpec{1, ip(kBackend), 8080, BackendState::Active, 1, false, 0});
    dp.upsertBackend(BackendSpec{2, ip(kBackend6), 8080, BackendState::Active, 1, false, 0});
    ServiceSpec s{};
    s.id = 1;
    s.kind = SchedulerKind::Random;
    s.emptyVerdict = empty;
    for (uint8_t proto : {6, 17, 132}) {
      FrontendSpec f{};
      f.key = FrontendKey{ip(kVip), 80, proto, uint8_t(Scope::External)};
      f.masquerade = masq;
      s.frontends.push_back(f);
    }
    if (withBackend) s.backendIds = {1};
    CHECK(dp.upsertService(s).ok());
    ServiceSpec s6{};
    s6.id = 2;
    s6.kind = SchedulerKind::Random;
    s6.emptyVerdict = empty;
    for (uint8_t proto : {6, 17}) {
      FrontendSpec f{};
      f.key = FrontendKey{ip(kVip6), 80, proto, uint8_t(Scope::External)};
      f.masquerade = masq;
      s6.frontends.push_back(f);
    }
    if (withBackend) s6.backendIds = {2};
    CHECK(dp.upsertService(s6).ok());
    PacketConfig pc;
    pc.nodeAddrs = {ip(kNode)};
    pc.podCidrs = {Cidr{ip(pb::v4(10, 0, 0, 0)), 96 + 8}};
    pc.hasMasq4 = true;
    pc.masq4 = ip(kNode);
    CHECK(dp.setPacketConfig(pc).ok());
  }

  // Runs one packet; returns verdict and reason.
  std::pair<Verdict, Reason> run(pb::Bytes& p, PacketDirection dir, bool eth = false, uint64_t now = S,
                                 ReplySink* sink = nullptr, RejectMode mode = RejectMode::IcmpUnreachable) {
    PacketRef ref{p.data(), uint32_t(p.size())};
    PacketOptions o;
    o.dir = dir;
    o.link = eth ? LinkType::Ethernet : LinkType::Raw;
    o.replies = sink;
    o.reject = mode;
    uint8_t v = 0xff, r = 0xff;
    dp.processPackets(&ref, 1, o, now, &v, &r);
    return {Verdict(v), Reason(r)};
  }
};

bool addrAt(const pb::Bytes& p, size_t at, const pb::Addr& a) {
  return std::memcmp(p.data() + at, a.b, a.family == 4 ? 4 : 16) == 0;
}

}  // namespace

TEST_CASE("packet: IPv4 TCP DNAT, reply reverse-NAT, checksums valid (raw and Ethernet+VLAN, IP options)") {
  for (int variant = 0; variant < 3; ++variant) {
    Fixture fx;
    pb::Spec s{kClient, kVip};
    s.payload = variant == 2 ? 33 : 0;  // odd length
    s.ethernet = variant >= 1;
    s.vlans = variant == 1 ? 2 : 0;
    s.ipv4Options = variant == 2 ? 8 : 0;
    pb::Built b = pb::build(s);
    auto [v, r] = fx.run(b.bytes, PacketDirection::ToService, s.ethernet);
    CHECK(v == Verdict::Forward);
    CHECK(r == Reason::None);
    CHECK(addrAt(b.bytes, b.l3 + 16, kBackend));
    CHECK(addrAt(b.bytes, b.l3 + 12, kClient));
    CHECK_EQ(pb::get16(b.bytes, b.l4 + 2), 8080);
    CHECK(pb::checksumsValid(b.bytes, b.l3));

    pb::Spec rs{kBackend, kClient};
    rs.sport = 8080;
    rs.dport = 40000;
    rs.tcpFlags = 0x12;
    rs.payload = 5;
    pb::Built rb = pb::build(rs);
    auto [rv, rr] = fx.run(rb.bytes, PacketDirection::FromBackend);
    CHECK(rv == Verdict::Reply);
    CHECK(addrAt(rb.bytes, rb.l3 + 12, kVip));
    CHECK_EQ(pb::get16(rb.bytes, rb.l4), 80);
    CHECK(pb::checksumsValid(rb.bytes, rb.l3));
  }
}

TEST_CASE("packet: UDP over IPv4 with checksum 0 stays 0; IPv6 UDP and TCP with extension headers") {
  Fixture fx;
  pb::Spec s{kClient, kVip};
  s.proto = 17;
  s.udpNoChecksum = true;
  s.payload = 11;
  pb::Built b = pb::build(s);
  CHECK(fx.run(b.bytes, PacketDirection::ToService).first == Verdict::Forward);
  CHECK_EQ(pb::get16(b.bytes, b.l4 + 6), 0);
  CHECK(pb::checksumsValid(b.bytes, b.l3));

  for (uint8_t proto : {6, 17}) {
    pb::Spec s6{kClient6, kVip6};
    s6.proto = proto;
    s6.payload = 7;
    s6.v6ExtHeaders = true;
    pb::Built b6 = pb::build(s6);
    CHECK(fx.run(b6.bytes, PacketDirection::ToService).first == Verdict::Forward);
    CHECK(addrAt(b6.bytes, b6.l3 + 24, kBackend6));
    CHECK(pb::checksumsValid(b6.bytes, b6.l3));
  }
  // IPv6 UDP arriving without a checksum leaves with a valid one.
  pb::Spec z{kClient6, kVip6};
  z.proto = 17;
  z.sport = 1234;
  z.udpNoChecksum = true;
  z.payload = 3;
  pb::Built bz = pb::build(z);
  CHECK(fx.run(bz.bytes, PacketDirection::ToService).first == Verdict::Forward);
  CHECK(pb::get16(bz.bytes, bz.l4 + 6) != 0);
  CHECK(pb::checksumsValid(bz.bytes, bz.l3));
}

TEST_CASE("packet: SCTP CRC32c recomputed") {
  Fixture fx;
  pb::Spec s{kClient, kVip};
  s.proto = 132;
  s.payload = 20;
  pb::Built b = pb::build(s);
  CHECK(pb::checksumsValid(b.bytes, b.l3));
  CHECK(fx.run(b.bytes, PacketDirection::ToService).first == Verdict::Forward);
  CHECK_EQ(pb::get16(b.bytes, b.l4 + 2), 8080);
  CHECK(pb::checksumsValid(b.bytes, b.l3));
}

TEST_CASE("packet: masquerade takes a NAT port, replies come back, the port is freed with the flow") {
  Fixture fx(MasqPolicy::Always);
  pb::Spec s{kClient, kVip};
  pb::Built b = pb::build(s);
  CHECK(fx.run(b.bytes, PacketDirection::ToService).first == Verdict::Forward);
  CHECK(addrAt(b.bytes, b.l3 + 12, kNode));
  uint16_t natPort = pb::get16(b.bytes, b.l4);
  CHECK_EQ(natPort, 40000);  // the client's port is kept when free
  CHECK(pb::checksumsValid(b.bytes, b.l3));
  CHECK_EQ(fx.dp.natPorts().map().size(), 1u);
  // A second client with the same source port gets another port.
  pb::Spec s2{pb::v4(192, 168, 1, 11), kVip};
  pb::Built b2 = pb::build(s2);
  CHECK(fx.run(b2.bytes, PacketDirection::ToService).first == Verdict::Forward);
  uint16_t natPort2 = pb::get16(b2.bytes, b2.l4);
  CHECK(natPort2 != natPort);
  CHECK(natPort2 >= 1024);
  // The backend answers the node; the reply goes back to the right client.
  pb::Spec r{kBackend, kNode};
  r.sport = 8080;
  r.dport = natPort2;
  r.tcpFlags = 0x12;
  pb::Built rb = pb::build(r);
  CHECK(fx.run(rb.bytes, PacketDirection::FromBackend).first == Verdict::Reply);
  CHECK(addrAt(rb.bytes, rb.l3 + 12, kVip));
  CHECK(addrAt(rb.bytes, rb.l3 + 16, pb::v4(192, 168, 1, 11)));
  CHECK_EQ(pb::get16(rb.bytes, rb.l4 + 2), 40000);
  CHECK(pb::checksumsValid(rb.bytes, rb.l3));
  fx.dp.flushConntrack();
  CHECK_EQ(fx.dp.natPorts().map().size(), 0u);
}

TEST_CASE("packet: masquerade policies follow pod CIDRs and node addresses; hairpin always") {
  {
    Fixture fx(MasqPolicy::OutsidePodCidrs);
    pb::Built fromPod = pb::build(pb::Spec{kPod, kVip});
    fx.run(fromPod.bytes, PacketDirection::ToService);
    CHECK(addrAt(fromPod.bytes, fromPod.l3 + 12, kPod));
    pb::Built outside = pb::build(pb::Spec{kClient, kVip});
    fx.run(outside.bytes, PacketDirection::ToService);
    CHECK(addrAt(outside.bytes, outside.l3 + 12, kNode));
  }
  {
    Fixture fx(MasqPolicy::FromNode);
    pb::Built fromNode = pb::build(pb::Spec{kNode, kVip});
    fx.run(fromNode.bytes, PacketDirection::ToService);
    CHECK_EQ(fx.dp.natPorts().map().size(), 1u);
    pb::Built other = pb::build(pb::Spec{kClient, kVip});
    fx.run(other.bytes, PacketDirection::ToService);
    CHECK(addrAt(other.bytes, other.l3 + 12, kClient));
  }
  {
    Fixture fx(MasqPolicy::Never);
    pb::Built hairpin = pb::build(pb::Spec{kBackend, kVip});
    fx.run(hairpin.bytes, PacketDirection::ToService);
    CHECK(addrAt(hairpin.bytes, hairpin.l3 + 12, kNode));
    CHECK(addrAt(hairpin.bytes, hairpin.l3 + 16, kBackend));
  }
}

TEST_CASE("packet: NAT ports exhausted drops the new flow, counted") {
  Fixture fx(MasqPolicy::Always);
  PacketConfig pc = fx.dp.packetConfig();
  pc.natPortLow = 2000;
  pc.natPortHigh = 2001;
  CHECK(fx.dp.setPacketConfig(pc).ok());
  int forwarded = 0, exhausted = 0;
  for (uint16_t sport = 5000; sport < 5004; ++sport) {
    pb::Spec s{kClient, kVip};
    s.sport = sport;
    pb::Built b = pb::build(s);
    auto [v, r] = fx.run(b.bytes, PacketDirection::ToService);
    if (v == Verdict::Forward) ++forwarded;
    if (v == Verdict::Drop && r == Reason::NatPortsExhausted) ++exhausted;
  }
  CHECK_EQ(forwarded, 2);
  CHECK_EQ(exhausted, 2);
  CHECK_EQ(fx.dp.packetCounters().reasons[size_t(Reason::NatPortsExhausted)], 2u);
}

TEST_CASE("packet: ICMP errors about a flow are translated outer and inner (RFC 5508)") {
  Fixture fx(MasqPolicy::Always);
  pb::Built b = pb::build(pb::Spec{kClient, kVip});
  fx.run(b.bytes, PacketDirection::ToService);
  uint16_t natPort = pb::get16(b.bytes, b.l4);
  // The backend answers with port unreachable, quoting the packet it got (node:nat -> backend).
  pb::Bytes quote(b.bytes.begin() + long(b.l3), b.bytes.end());
  for (bool v6 : {false}) {
    (void)v6;
    pb::Bytes e;
    pb::Spec outer{kBackend, kNode};
    outer.proto = 1;
    pb::Built ob = pb::build(outer);  // IPv4 header + 8 bytes of "ICMP"
    e = ob.bytes;
    e[ob.l4] = 3;
    e[ob.l4 + 1] = 3;
    e[ob.l4 + 2] = e[ob.l4 + 3] = 0;
    std::memset(e.data() + ob.l4 + 4, 0, 4);
    e.insert(e.end(), quote.begin(), quote.end());
    pb::put16(e, ob.l3 + 2, uint16_t(e.size() - ob.l3));
    pb::put16(e, ob.l3 + 10, pb::ipv4HeaderChecksum(e, ob.l3));
    pb::put16(e, ob.l4 + 2, pb::l4Checksum(e, ob.l3, ob.l4, e.size(), 4, 1, 2));
    auto [v, r] = fx.run(e, PacketDirection::FromBackend);
    CHECK(v == Verdict::Reply);
    CHECK(addrAt(e, ob.l3 + 12, kVip));     // outer source: the backend became the service
    CHECK(addrAt(e, ob.l3 + 16, kClient));  // outer destination: back to the client
    size_t in3 = ob.l4 + 8, in4 = in3 + 20;
    CHECK(addrAt(e, in3 + 12, kClient));
    CHECK(addrAt(e, in3 + 16, kVip));
    CHECK_EQ(pb::get16(e, in4), 40000);
    CHECK_EQ(pb::get16(e, in4 + 2), 80);
    CHECK(natPort == 40000);
    CHECK(pb::checksumsValid(e, ob.l3));  // outer IP and ICMP
    CHECK_EQ(pb::ipv4HeaderChecksum(e, in3), pb::get16(e, in3 + 10));
    CHECK_EQ(pb::l4Checksum(e, in3, in4, e.size(), 4, 6, 16), pb::get16(e, in4 + 16));
    // A corrupted error is dropped.
    e[e.size() - 1] ^= 1;
    CHECK(fx.run(e, PacketDirection::FromBackend).second == Reason::BadChecksum);
  }
}

TEST_CASE("packet: later fragments follow their first fragment; unknown ones pass") {
  Fixture fx;
  pb::Spec s{kClient, kVip};
  s.proto = 17;
  s.payload = 24;
  pb::Built whole = pb::build(s);
  // Split at 16 bytes of L4 payload: first = IP + 16 bytes, second = IP + the rest.
  size_t ihl = 20, cut = 16;
  pb::Bytes first(whole.bytes.begin(), whole.bytes.begin() + long(ihl + cut));
  pb::Bytes second(whole.bytes.begin(), whole.bytes.begin() + long(ihl));
  second.insert(second.end(), whole.bytes.begin() + long(ihl + cut), whole.bytes.end());
  pb::put16(first, 2, uint16_t(first.size()));
  pb::put16(first, 6, 0x2000);  // MF
  pb::put16(first, 10, pb::ipv4HeaderChecksum(first, 0));
  pb::put16(second, 2, uint16_t(second.size()));
  pb::put16(second, 6, uint16_t(cut / 8));
  pb::put16(second, 10, pb::ipv4HeaderChecksum(second, 0));
  pb::Bytes early = second;
  CHECK(fx.run(early, PacketDirection::ToService).second == Reason::FragmentUnknown);
  CHECK(fx.run(first, PacketDirection::ToService).first == Verdict::Forward);
  CHECK(fx.run(second, PacketDirection::ToService).first == Verdict::Forward);
  CHECK(addrAt(second, 16, kBackend));
  CHECK_EQ(pb::ipv4HeaderChecksum(second, 0), pb::get16(second, 10));
  // Reassembled, the datagram's UDP checksum is right.
  pb::Bytes re(first.begin(), first.end());
  re.insert(re.end(), second.begin() + 20, second.end());
  pb::put16(re, 2, uint16_t(re.size()));
  pb::put16(re, 6, 0);
  pb::put16(re, 10, pb::ipv4HeaderChecksum(re, 0));
  CHECK(pb::checksumsValid(re, 0));
  CHECK_EQ(pb::get16(re, 22), 8080);
}

TEST_CASE("packet: reject replies (ICMP port unreachable, ICMPv6, TCP RST)") {
  Fixture fx(MasqPolicy::Never, Verdict::Reject, false);
  uint8_t buf[4096];
  uint32_t offs[1], lens[1];
  ReplySink sink{buf, sizeof buf, 0, offs, lens};
  pb::Spec s{kClient, kVip};
  s.ethernet = true;
  s.payload = 10;
  pb::Built b = pb::build(s);
  auto [v, r] = fx.run(b.bytes, PacketDirection::ToService, true, S, &sink);
  CHECK(v == Verdict::Reject);
  CHECK(r == Reason::NoBackends);
  CHECK_EQ(lens[0], 14u + 20 + 8 + (b.bytes.size() - 14));
  pb::Bytes reply(buf + offs[0], buf + offs[0] + lens[0]);
  CHECK(std::memcmp(reply.data(), b.bytes.data() + 6, 6) == 0);  // MACs swapped
  CHECK_EQ(reply[14 + 9], 1);
  CHECK(addrAt(reply, 14 + 12, kVip));
  CHECK(addrAt(reply, 14 + 16, kClient));
  CHECK_EQ(reply[34], 3);
  CHECK_EQ(reply[35], 3);
  CHECK(pb::checksumsValid(reply, 14));

  sink.used = 0;
  pb::Built t = pb::build(pb::Spec{kClient, kVip});
  fx.run(t.bytes, PacketDirection::ToService, false, S, &sink, RejectMode::TcpReset);
  pb::Bytes rst(buf + offs[0], buf + offs[0] + lens[0]);
  CHECK_EQ(rst.size(), 40u);
  CHECK_EQ(rst[33], 0x14);                                            // RST|ACK
  CHECK_EQ(pb::get16(rst, 28) * 65536u + pb::get16(rst, 30), 1001u);  // ack = seq + SYN
  CHECK(pb::checksumsValid(rst, 0));

  sink.used = 0;
  pb::Spec s6{kClient6, kVip6};
  s6.proto = 17;
  s6.payload = 2000;
  pb::Built u6 = pb::build(s6);
  fx.run(u6.bytes, PacketDirection::ToService, false, S, &sink);
  CHECK_EQ(lens[0], 1280u);  // quote cut to the IPv6 minimum MTU
  pb::Bytes icmp6(buf + offs[0], buf + offs[0] + lens[0]);
  CHECK_EQ(icmp6[40], 1);
  CHECK_EQ(icmp6[41], 4);
  CHECK(pb::checksumsValid(icmp6, 0));

  // A buffer too small: the reject stands, the reason says the reply was lost.
  ReplySink tiny{buf, 10, 0, offs, lens};
  pb::Built t2 = pb::build(pb::Spec{kClient, kVip});
  CHECK(fx.run(t2.bytes, PacketDirection::ToService, false, S, &tiny).second == Reason::ReplyBufferFull);
}

TEST_CASE("packet: not IP, untracked replies, ICMP echo pass; every truncation is refused safely") {
  Fixture fx;
  pb::Bytes arp(42, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  CHECK(fx.run(arp, PacketDirection::ToService, true).second == Reason::NotIp);
  pb::Built stray = pb::build(pb::Spec{kBackend, kClient});
  CHECK(fx.run(stray.bytes, PacketDirection::FromBackend).second == Reason::NotTracked);
  pb::Spec echo{kClient, kVip};
  echo.proto = 1;
  pb::Built e = pb::build(echo);
  e.bytes[e.l4] = 8;
  CHECK(fx.run(e.bytes, PacketDirection::ToService).second == Reason::IcmpEcho);

  // Every prefix of valid packets, each in a buffer of exactly its size (ASan sees overreads).
  std::vector<pb::Spec> specs;
  pb::Spec a{kClient, kVip};
  a.ethernet = true;
  a.vlans = 1;
  a.ipv4Options = 4;
  a.payload = 3;
  specs.push_back(a);
  pb::Spec c{kClient6, kVip6};
  c.proto = 17;
  c.v6ExtHeaders = true;
  specs.push_back(c);
  pb::Spec d{kClient, kVip};
  d.proto = 132;
  specs.push_back(d);
  for (const pb::Spec& sp : specs) {
    pb::Built full = pb::build(sp);
    for (size_t len = 0; len < full.bytes.size(); ++len) {
      std::vector<uint8_t> cut(full.bytes.begin(), full.bytes.begin() + long(len));
      ParsedPacket pp;
      Reason r = parsePacket(cut.data(), uint32_t(cut.size()), sp.ethernet ? LinkType::Ethernet : LinkType::Raw, pp);
      CHECK(r == Reason::Truncated || r == Reason::Malformed);
      auto [v, rr] = fx.run(cut, PacketDirection::ToService, sp.ethernet);
      CHECK(v == Verdict::Drop);
    }
  }
}

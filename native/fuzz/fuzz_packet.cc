// libFuzzer harness for the packet path: the parser, the rewriters (NAT, masquerade, ICMP
// error translation, fragments) and reject replies, through Dataplane::processPackets on a
// dataplane with IPv4 and IPv6 services, masquerade and pod CIDRs configured. The first byte
// of an input picks link type, direction and reject mode; the rest is the frame, copied into
// a buffer of exactly its size so that AddressSanitizer catches a read or write past it.
// Each input also goes through again after a reply-direction packet has created state.
#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#include "core/dataplane.h"
#include "core/packet_parse.h"

using namespace svcplane;

namespace {

IpAddr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return IpAddr::v4(uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d);
}
IpAddr v6(uint16_t first, uint16_t last) {
  IpAddr x{};
  x.b[0] = uint8_t(first >> 8);
  x.b[1] = uint8_t(first);
  x.b[14] = uint8_t(last >> 8);
  x.b[15] = uint8_t(last);
  return x;
}

std::unique_ptr<Dataplane> makeDataplane() {
  DataplaneConfig c;
  c.maxServices = 8;
  c.maxFrontends = 32;
  c.maxBackends = 8;
  c.maxFlows = 256;
  c.maxAffinity = 16;
  c.maxNatPorts = 64;
  c.maxFragments = 16;
  c.seed = 42;
  auto dp = std::make_unique<Dataplane>(c);
  dp->upsertBackend(BackendSpec{1, v4(10, 0, 0, 1), 8080, BackendState::Active, 1, false, 0});
  dp->upsertBackend(BackendSpec{2, v6(0xfd00, 1), 8080, BackendState::Active, 1, false, 0});
  const MasqPolicy policies[] = {MasqPolicy::Always, MasqPolicy::OutsidePodCidrs, MasqPolicy::Never};
  uint32_t id = 1;
  for (const IpAddr& vip : {v4(172, 30, 0, 1), v6(0xfd00, 0x41)}) {
    for (MasqPolicy m : policies) {
      ServiceSpec s{};
      s.id = id;
      s.kind = SchedulerKind::Random;
      s.emptyVerdict = Verdict::Reject;
      for (uint8_t proto : {6, 17, 132}) {
        FrontendSpec f{};
        f.key = FrontendKey{vip, uint16_t(80 + id), proto, uint8_t(Scope::External)};
        f.masquerade = m;
        s.frontends.push_back(f);
      }
      if (m != MasqPolicy::Never) s.backendIds = {vip.isV4() ? 1u : 2u};  // one service per family rejects
      dp->upsertService(s);
      ++id;
    }
  }
  PacketConfig pc;
  pc.nodeAddrs = {v4(192, 168, 0, 2), v6(0x2001, 2)};
  pc.podCidrs = {Cidr{v4(10, 0, 0, 0), 96 + 8}};
  pc.hasMasq4 = pc.hasMasq6 = true;
  pc.masq4 = v4(192, 168, 0, 2);
  pc.masq6 = v6(0x2001, 2);
  pc.natPortLow = 60000;
  pc.natPortHigh = 60100;
  dp->setPacketConfig(pc);
  return dp;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<Dataplane> dp = makeDataplane();
  static uint64_t now = 1000000000ull;
  if (size < 1 || size > 65536) return 0;
  uint8_t mode = data[0];
  std::vector<uint8_t> frame(data + 1, data + size);
  std::vector<uint8_t> replies(2048);
  uint32_t offs[1], lens[1];
  ReplySink sink{replies.data(), uint32_t(replies.size()), 0, offs, lens};
  PacketOptions o;
  o.link = (mode & 1) ? LinkType::Raw : LinkType::Ethernet;
  o.dir = (mode & 2) ? PacketDirection::FromBackend : PacketDirection::ToService;
  o.reject = RejectMode((mode >> 2) % 3);
  o.fromNode = mode & 16;
  o.replies = (mode & 32) ? &sink : nullptr;
  uint8_t verdict, reason;
  // A heap copy of exactly the frame's size: any overread is caught.
  std::unique_ptr<uint8_t[]> exact(new uint8_t[frame.size() ? frame.size() : 1]);
  if (!frame.empty()) std::memcpy(exact.get(), frame.data(), frame.size());
  PacketRef ref{exact.get(), uint32_t(frame.size())};
  dp->processPackets(&ref, 1, o, now, &verdict, &reason);
  if (verdict > 4 || reason >= kPacketReasons) __builtin_trap();
  if (o.replies && lens[0] > replies.size()) __builtin_trap();
  // Whatever was rewritten must still parse as it did (same kind, same verdict class).
  ParsedPacket before, after;
  Reason rb = parsePacket(frame.data(), uint32_t(frame.size()), o.link, before);
  Reason ra = parsePacket(exact.get(), uint32_t(frame.size()), o.link, after);
  if (rb != ra || before.kind != after.kind) __builtin_trap();
  now += 1000000;
  if ((now / 1000000) % 4096 == 0) dp->gc(now, 1024);
  return 0;
}

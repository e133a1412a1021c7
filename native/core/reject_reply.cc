#include "reject_reply.h"

#include <cstring>

#include "csum.h"
#include "packet_rewrite.h"

namespace svcplane {

namespace {

constexpr uint8_t kTcp = 6, kIcmp = 1, kIcmp6 = 58;
constexpr uint8_t kTtl = 64;

// Link header copied with source and destination MAC swapped; returns its length.
uint32_t putLink(const uint8_t* p, const ParsedPacket& pp, uint8_t* out) {
  if (pp.l2len == 0) return 0;
  std::memcpy(out, p, pp.l2len);
  std::memcpy(out, p + 6, 6);
  std::memcpy(out + 6, p, 6);
  return pp.l2len;
}

// An IP header from the packet's destination back to its source; returns its length.
uint32_t putIp(const uint8_t* p, const IpHeaders& h, uint8_t proto, uint32_t payload, bool df, uint8_t* out) {
  if (h.family == 4) {
    std::memset(out, 0, 20);
    out[0] = 0x45;
    out[1] = proto == kIcmp ? 0xc0 : 0;  // ICMP errors go as internetwork control, as the kernel sends them
    csum::store16(out + 2, uint16_t(20 + payload));
    if (df) out[6] = 0x40;
    out[8] = kTtl;
    out[9] = proto;
    std::memcpy(out + 12, p + dstAddrOffset(h), 4);
    std::memcpy(out + 16, p + srcAddrOffset(h), 4);
    csum::store16(out + 10, csum::finish(csum::add(out, 20)));
    return 20;
  }
  std::memset(out, 0, 40);
  out[0] = 0x60;
  csum::store16(out + 4, uint16_t(payload));
  out[6] = proto;
  out[7] = kTtl;
  std::memcpy(out + 8, p + dstAddrOffset(h), 16);
  std::memcpy(out + 24, p + srcAddrOffset(h), 16);
  return 40;
}

uint32_t icmpUnreachable(const uint8_t* p, const ParsedPacket& pp, uint8_t* out, uint32_t cap, bool* tooSmall) {
  const IpHeaders& h = pp.ip;
  bool v4 = h.family == 4;
  uint32_t ipLen = v4 ? 20 : 40;
  uint32_t limit = v4 ? 576 : 1280;
  uint32_t quote = h.end - h.l3;
  if (quote > limit - ipLen - 8) quote = limit - ipLen - 8;
  uint32_t total = pp.l2len + ipLen + 8 + quote;
  if (total > cap) {
    *tooSmall = true;
    return 0;
  }
  uint32_t o = putLink(p, pp, out);
  uint32_t ipOff = o;
  o += putIp(p, h, v4 ? kIcmp : kIcmp6, 8 + quote, false, out + o);
  uint8_t* icmp = out + o;
  std::memset(icmp, 0, 8);
  icmp[0] = v4 ? 3 : 1;  // destination unreachable
  icmp[1] = v4 ? 3 : 4;  // port unreachable
  std::memcpy(icmp + 8, p + h.l3, quote);
  IpHeaders rh{};
  rh.l3 = ipOff;
  rh.l4 = o;
  rh.end = o + 8 + quote;
  rh.family = h.family;
  rh.proto = v4 ? kIcmp : kIcmp6;
  csum::store16(icmp + 2, fullL4Checksum(out, rh));
  return total;
}

uint32_t tcpReset(const uint8_t* p, const ParsedPacket& pp, uint8_t* out, uint32_t cap, bool* tooSmall) {
  const IpHeaders& h = pp.ip;
  const uint8_t* th = p + h.l4;
  uint8_t flags = th[13];
  if (flags & 0x04) return 0;  // never answer a RST
  uint32_t ipLen = h.family == 4 ? 20 : 40;
  uint32_t total = pp.l2len + ipLen + 20;
  if (total > cap) {
    *tooSmall = true;
    return 0;
  }
  uint32_t o = putLink(p, pp, out);
  uint32_t ipOff = o;
  o += putIp(p, h, kTcp, 20, true, out + o);
  uint8_t* t = out + o;
  std::memset(t, 0, 20);
  std::memcpy(t, th + 2, 2);
  std::memcpy(t + 2, th, 2);
  t[12] = 5 << 4;
  if (flags & 0x10) {
    std::memcpy(t + 4, th + 8, 4);  // seq = their ack
    t[13] = 0x04;
  } else {
    uint32_t seq = uint32_t(th[4]) << 24 | uint32_t(th[5]) << 16 | uint32_t(th[6]) << 8 | th[7];
    uint32_t doff = uint32_t(th[12] >> 4) * 4;
    uint32_t ack = seq + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0) + (h.end - h.l4 - doff);
    t[8] = uint8_t(ack >> 24);
    t[9] = uint8_t(ack >> 16);
    t[10] = uint8_t(ack >> 8);
    t[11] = uint8_t(ack);
    t[13] = 0x14;  // RST|ACK
  }
  IpHeaders rh{};
  rh.l3 = ipOff;
  rh.l4 = o;
  rh.end = o + 20;
  rh.family = h.family;
  rh.proto = kTcp;
  csum::store16(t + 16, fullL4Checksum(out, rh));
  return total;
}

}  // namespace

uint32_t buildRejectReply(const uint8_t* p, const ParsedPacket& pp, RejectMode mode, uint8_t* out, uint32_t cap,
                          bool* tooSmall) {
  *tooSmall = false;
  if (mode == RejectMode::None || pp.kind != PacketKind::Flow || pp.ip.l4 == 0) return 0;
  if (mode == RejectMode::TcpReset && pp.ip.proto == kTcp && !pp.ip.fragment)
    return tcpReset(p, pp, out, cap, tooSmall);
  return icmpUnreachable(p, pp, out, cap, tooSmall);
}

}  // namespace svcplane

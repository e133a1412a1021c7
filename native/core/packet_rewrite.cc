#include "packet_rewrite.h"

#include <cstring>

#include "crc32c.h"
#include "csum.h"

namespace svcplane {

namespace {
constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132, kIcmp = 1, kIcmp6 = 58;
}

int l4ChecksumOffset(uint8_t proto) {
  switch (proto) {
    case kTcp: return 16;
    case kUdp: return 6;
    case kIcmp:
    case kIcmp6: return 2;
    default: return -1;
  }
}

uint16_t fullL4Checksum(const uint8_t* p, const IpHeaders& h) {
  uint32_t len = h.end - h.l4;
  int off = l4ChecksumOffset(h.proto);
  uint32_t s = 0;
  if (h.proto != kIcmp) s = csum::pseudoHeader(p + srcAddrOffset(h), p + dstAddrOffset(h), addrBytes(h), h.proto, len);
  // The field sits at an even offset, so the bytes around it keep their word alignment.
  s = csum::add(p + h.l4, uint32_t(off), s);
  s = csum::add(p + h.l4 + off + 2, len - uint32_t(off) - 2, s);
  uint16_t c = csum::finish(s);
  return h.proto == kUdp && c == 0 ? 0xffff : c;
}

uint16_t fullIpv4Checksum(const uint8_t* p, const IpHeaders& h) {
  uint32_t ihl = uint32_t(p[h.l3] & 0x0f) * 4;
  uint32_t s = csum::add(p + h.l3, 10);
  s = csum::add(p + h.l3 + 12, ihl - 12, s);
  return csum::finish(s);
}

uint32_t sctpChecksum(const uint8_t* p, const IpHeaders& h) {
  static const uint8_t zero[4] = {0, 0, 0, 0};
  uint32_t c = crc32c(p + h.l4, 8);
  c = crc32c(zero, 4, c);
  return crc32c(p + h.l4 + 12, h.end - h.l4 - 12, c);
}

namespace {
// rewriteAddress, inlined into rewriteFlow (two per packet).
[[gnu::always_inline]] inline uint32_t rewriteAddr(uint8_t* p, const IpHeaders& h, uint32_t offset, const IpAddr& to) {
  if (h.family == 4) {
    uint32_t oldv, newv;
    std::memcpy(&oldv, p + offset, 4);
    std::memcpy(&newv, to.b + 12, 4);
    if (oldv == newv) return 0;
    uint32_t d = csum::diff(p + offset, to.b + 12, 4);
    std::memcpy(p + offset, &newv, 4);
    csum::applyAt(p + h.l3 + 10, d);
    return d;
  }
  if (std::memcmp(p + offset, to.b, 16) == 0) return 0;
  uint32_t d = csum::diff(p + offset, to.b, 16);
  std::memcpy(p + offset, to.b, 16);
  return d;
}
}  // namespace

uint32_t rewriteAddress(uint8_t* p, const IpHeaders& h, uint32_t offset, const IpAddr& to) {
  return rewriteAddr(p, h, offset, to);
}

void rewriteFlow(uint8_t* p, const IpHeaders& h, const Endpoint& src, const Endpoint& dst) {
  uint32_t d = rewriteAddr(p, h, srcAddrOffset(h), src.addr);
  d = csum::fold(d + rewriteAddr(p, h, dstAddrOffset(h), dst.addr));
  if (h.l4 == 0) return;  // a later fragment

  uint8_t* l4 = p + h.l4;
  uint16_t sport = csum::load16(l4), dport = csum::load16(l4 + 2);
  if (sport != src.port) {
    d = csum::diff16(sport, src.port, d);
    csum::store16(l4, src.port);
  }
  if (dport != dst.port) {
    d = csum::diff16(dport, dst.port, d);
    csum::store16(l4 + 2, dst.port);
  }
  switch (h.proto) {
    case kTcp:
      if (d) csum::applyAt(l4 + 16, d);
      break;
    case kUdp: {
      uint16_t c = csum::load16(l4 + 6);
      if (c == 0) {
        if (h.family == 4 || h.fragment) break;  // IPv4: "no checksum" stays; a fragment cannot be summed here
        csum::store16(l4 + 6, fullL4Checksum(p, h));
        break;
      }
      if (!d) break;
      c = csum::apply(c, d);
      csum::store16(l4 + 6, c == 0 ? 0xffff : c);
      break;
    }
    case kSctp:
      if ((sport != src.port || dport != dst.port) && !h.fragment) {
        uint32_t c = sctpChecksum(p, h);
        l4[8] = uint8_t(c);
        l4[9] = uint8_t(c >> 8);
        l4[10] = uint8_t(c >> 16);
        l4[11] = uint8_t(c >> 24);
      }
      break;
    default: break;
  }
}

}  // namespace svcplane

#include "icmp_error.h"

#include "csum.h"

namespace svcplane {

namespace {
constexpr uint8_t kTcp = 6, kUdp = 17;
}

bool icmpChecksumValid(const uint8_t* p, const ParsedPacket& pp) {
  uint16_t want = fullL4Checksum(p, pp.ip);
  uint16_t have = csum::load16(p + pp.ip.l4 + 2);
  return have == want || (have == 0xffff && want == 0) || (have == 0 && want == 0xffff);
}

void translateIcmpError(uint8_t* p, const ParsedPacket& pp, const Endpoint& innerSrc, const Endpoint& innerDst,
                        const IpAddr* outerSrc, const IpAddr* outerDst) {
  const IpHeaders& in = pp.inner;
  uint32_t d = rewriteAddress(p, in, srcAddrOffset(in), innerSrc.addr);
  d = csum::fold(d + rewriteAddress(p, in, dstAddrOffset(in), innerDst.addr));
  uint8_t* l4 = p + in.l4;
  uint16_t sport = csum::load16(l4), dport = csum::load16(l4 + 2);
  if (sport != innerSrc.port) {
    d = csum::diff16(sport, innerSrc.port, d);
    csum::store16(l4, innerSrc.port);
  }
  if (dport != innerDst.port) {
    d = csum::diff16(dport, innerDst.port, d);
    csum::store16(l4 + 2, innerDst.port);
  }
  // The quoted L4 checksum, when the quote is long enough to hold it. (A quoted SCTP CRC
  // cannot be redone from a prefix; it is left, as the kernel leaves it.)
  if (d) {
    if (in.proto == kTcp && pp.innerL4Bytes >= 18) {
      csum::applyAt(l4 + 16, d);
    } else if (in.proto == kUdp && pp.innerL4Bytes >= 8) {
      uint16_t c = csum::load16(l4 + 6);
      if (c != 0) {
        c = csum::apply(c, d);
        csum::store16(l4 + 6, c == 0 ? 0xffff : c);
      }
    }
  }
  if (outerSrc) rewriteAddress(p, pp.ip, srcAddrOffset(pp.ip), *outerSrc);
  if (outerDst) rewriteAddress(p, pp.ip, dstAddrOffset(pp.ip), *outerDst);
  csum::store16(p + pp.ip.l4 + 2, fullL4Checksum(p, pp.ip));
}

}  // namespace svcplane

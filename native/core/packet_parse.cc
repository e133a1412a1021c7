#include "packet_parse.h"

#include <cstring>

#include "csum.h"

namespace svcplane {

namespace {

using csum::load16;

constexpr uint16_t kEthIPv4 = 0x0800, kEthIPv6 = 0x86dd, kEthVlan = 0x8100, kEthQinQ = 0x88a8;
constexpr uint8_t kTcp = 6, kUdp = 17, kSctp = 132, kIcmp = 1, kIcmp6 = 58;

bool isFlowProto(uint8_t p) { return p == kTcp || p == kUdp || p == kSctp; }

// Minimum L4 header bytes the pipeline reads (TCP's is checked against its data offset).
uint32_t minL4(uint8_t proto) {
  switch (proto) {
    case kTcp: return 20;
    case kUdp: return 8;
    case kSctp: return 12;
    default: return 8;  // ICMP / ICMPv6
  }
}

// The IP layer from p[l3] to p[len): family, header lengths, fragments, upper protocol. With
// `quoted`, the datagram is the copy inside an ICMP error: its total length may exceed what
// is present (errors quote a prefix), so `end` is what is there.
Reason parseIp(const uint8_t* p, uint32_t l3, uint32_t len, bool quoted, IpHeaders& h) {
  if (len - l3 < 1) return Reason::Truncated;
  uint8_t version = p[l3] >> 4;
  h.l3 = l3;
  if (version == 4) {
    if (len - l3 < 20) return Reason::Truncated;
    uint32_t ihl = uint32_t(p[l3] & 0x0f) * 4;
    if (ihl < 20) return Reason::Malformed;
    if (len - l3 < ihl) return Reason::Truncated;
    uint32_t total = load16(p + l3 + 2);
    if (total < ihl) return Reason::Malformed;
    if (total > len - l3) {
      if (!quoted) return Reason::Truncated;
      total = len - l3;
    }
    h.family = 4;
    h.end = l3 + total;
    h.proto = p[l3 + 9];
    uint16_t frag = load16(p + l3 + 6);
    uint16_t offset = frag & 0x1fff;
    bool more = frag & 0x2000;
    h.fragment = more || offset != 0;
    h.firstFragment = h.fragment && offset == 0;
    h.fragId = load16(p + l3 + 4);
    h.l4 = offset == 0 ? l3 + ihl : 0;
    return Reason::None;
  }
  if (version == 6) {
    if (len - l3 < 40) return Reason::Truncated;
    uint32_t payload = load16(p + l3 + 4);
    if (payload == 0) return Reason::Malformed;  // jumbograms (RFC 2675) are not supported
    uint32_t end = l3 + 40 + payload;
    if (end > len) {
      if (!quoted) return Reason::Truncated;
      end = len;
    }
    h.family = 6;
    h.end = end;
    uint8_t next = p[l3 + 6];
    uint32_t off = l3 + 40;
    // Extension headers, at most 8 of them (a longer chain is an attack, not a packet).
    for (int n = 0;; ++n) {
      if (n == 8) return Reason::Malformed;
      if (next == 0 || next == 43 || next == 60) {  // hop-by-hop, routing, destination options
        if (end - off < 8) return Reason::Truncated;
        uint32_t hl = (uint32_t(p[off + 1]) + 1) * 8;
        if (end - off < hl) return Reason::Truncated;
        next = p[off];
        off += hl;
      } else if (next == 51) {  // AH
        if (end - off < 8) return Reason::Truncated;
        uint32_t hl = (uint32_t(p[off + 1]) + 2) * 4;
        if (end - off < hl) return Reason::Truncated;
        next = p[off];
        off += hl;
      } else if (next == 44) {  // fragment
        if (end - off < 8) return Reason::Truncated;
        uint16_t fo = load16(p + off + 2);
        uint16_t offset = fo >> 3;
        bool more = fo & 1;
        h.fragment = more || offset != 0;
        h.firstFragment = h.fragment && offset == 0;
        h.fragId = uint32_t(load16(p + off + 4)) << 16 | load16(p + off + 6);
        next = p[off];
        off += 8;
        if (offset != 0) {
          h.proto = next;
          h.l4 = 0;
          return Reason::None;
        }
      } else {
        break;
      }
    }
    h.proto = next;
    h.l4 = off;
    return Reason::None;
  }
  return Reason::Malformed;
}

bool isIcmpError(uint8_t family, uint8_t type) {
  if (family == 4) return type == 3 || type == 11 || type == 12;  // unreachable, time exceeded, parameter problem
  return type >= 1 && type <= 4;  // unreachable, packet too big, time exceeded, parameter problem
}

bool isIcmpEcho(uint8_t family, uint8_t type) {
  return family == 4 ? (type == 8 || type == 0) : (type == 128 || type == 129);
}

}  // namespace

Reason parsePacket(const uint8_t* p, uint32_t len, LinkType link, ParsedPacket& out) {
  out = ParsedPacket{};
  uint32_t l3 = 0;
  if (link == LinkType::Ethernet) {
    if (len < 14) return Reason::Truncated;
    uint16_t type = load16(p + 12);
    l3 = 14;
    for (int tags = 0; (type == kEthVlan || type == kEthQinQ) && tags < 2; ++tags) {
      if (len - l3 < 4) return Reason::Truncated;
      type = load16(p + l3 + 2);
      l3 += 4;
    }
    if (type != kEthIPv4 && type != kEthIPv6) return Reason::NotIp;
    if (len - l3 < 1) return Reason::Truncated;
    if ((p[l3] >> 4) != (type == kEthIPv4 ? 4 : 6)) return Reason::Malformed;
  } else if (len < 1) {
    return Reason::Truncated;
  }
  out.l2len = l3;
  if (Reason r = parseIp(p, l3, len, false, out.ip); r != Reason::None) return r;
  IpHeaders& ip = out.ip;
  uint8_t icmpProto = ip.family == 4 ? kIcmp : kIcmp6;

  if (!isFlowProto(ip.proto) && ip.proto != icmpProto) {
    out.kind = PacketKind::Other;
    return Reason::UnsupportedProtocol;
  }
  if (ip.l4 == 0) {
    // A later fragment: L4 protocol known, header elsewhere. ICMP fragments are not followed.
    if (!isFlowProto(ip.proto)) return Reason::UnsupportedProtocol;
    out.kind = PacketKind::LaterFragment;
    return Reason::None;
  }
  uint32_t l4 = ip.l4;
  if (ip.end - l4 < minL4(ip.proto)) return Reason::Truncated;
  if (isFlowProto(ip.proto)) {
    out.sport = load16(p + l4);
    out.dport = load16(p + l4 + 2);
    if (ip.proto == kTcp) {
      uint32_t doff = uint32_t(p[l4 + 12] >> 4) * 4;
      if (doff < 20) return Reason::Malformed;
      if (ip.end - l4 < doff) return Reason::Truncated;
      out.tcpFlags = p[l4 + 13];
    } else if (ip.proto == kUdp && !ip.fragment) {
      uint32_t ulen = load16(p + l4 + 4);
      if (ulen < 8) return Reason::Malformed;
      if (ulen > ip.end - l4) return Reason::Truncated;
    }
    out.kind = PacketKind::Flow;
    return Reason::None;
  }

  // ICMP / ICMPv6.
  out.icmpType = p[l4];
  out.icmpCode = p[l4 + 1];
  if (isIcmpEcho(ip.family, out.icmpType)) {
    out.kind = PacketKind::IcmpEcho;
    return Reason::IcmpEcho;
  }
  if (!isIcmpError(ip.family, out.icmpType) || ip.fragment) {
    out.kind = PacketKind::Other;
    return Reason::UnsupportedProtocol;
  }
  // The quoted packet: same family, a flow protocol, a first (or only) fragment, with its ports.
  uint32_t innerStart = l4 + 8;
  IpHeaders& in = out.inner;
  if (Reason r = parseIp(p, innerStart, ip.end, true, in); r != Reason::None) return r;
  if (in.family != ip.family) return Reason::Malformed;
  if (!isFlowProto(in.proto) || in.l4 == 0) {
    out.kind = PacketKind::Other;
    return Reason::UnsupportedProtocol;
  }
  if (in.end < in.l4 + 4) return Reason::Truncated;
  out.innerL4Bytes = in.end - in.l4;
  out.sport = load16(p + in.l4);
  out.dport = load16(p + in.l4 + 2);
  out.kind = PacketKind::IcmpError;
  return Reason::None;
}

}  // namespace svcplane

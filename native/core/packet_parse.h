// Parsing of raw frames, the way an XDP/tc program walks them: Ethernet (optional, with up to
// two VLAN tags), IPv4 (options, fragments) or IPv6 (extension headers, fragments), then TCP,
// UDP, SCTP, ICMP or ICMPv6. The parser only records offsets and the few fields the pipeline
// needs; it never reads a byte at or beyond `len`, and a packet that claims more than it has
// is refused.
#pragma once
#include <cstdint>
#include <cstring>

#include "service_table.h"
#include "types.h"

namespace svcplane {

enum class LinkType : uint8_t { Ethernet = 0, Raw = 1 };

enum class PacketKind : uint8_t {
  Flow = 0,           // TCP/UDP/SCTP with its ports (unfragmented, or a first fragment)
  LaterFragment = 1,  // a non-first fragment: no L4 header, ports come from the fragment map
  IcmpError = 2,      // ICMP/ICMPv6 error quoting a TCP/UDP/SCTP packet (inner* fields)
  IcmpEcho = 3,       // echo request/reply: not service traffic
  Other = 4,          // another L4 protocol (or ICMP of no interest)
};

// Where an IP packet's headers are, as byte offsets from the frame's start.
// Plain data (no member initializers, so arrays of them cost nothing to declare); parsePacket
// zeroes what it fills.
struct IpHeaders {
  uint32_t l3;     // IP header
  uint32_t l4;     // L4 header (0 when absent: a later fragment)
  uint32_t end;    // end of the IP datagram (total length; trailing link padding excluded)
  uint8_t family;  // 4 or 6
  uint8_t proto;   // upper-layer protocol after any extension headers
  bool fragment;   // part of a fragmented datagram (first or later)
  bool firstFragment;
  uint32_t fragId;
};

struct ParsedPacket {
  PacketKind kind;
  uint32_t l2len;  // bytes of link header before the IP header
  IpHeaders ip;
  uint16_t sport, dport;
  uint8_t tcpFlags;
  // IcmpError: the quoted packet. innerL4Bytes says how much of its L4 header is present
  // (at least the 4 bytes of ports, or the packet is not classified as an error).
  IpHeaders inner;
  uint32_t innerL4Bytes;
  uint8_t icmpType, icmpCode;
};

// Parses len bytes at p. Returns Reason::None for a packet the pipeline can handle (any kind),
// or why it cannot: NotIp and UnsupportedProtocol (passed), Truncated and Malformed (dropped).
Reason parsePacket(const uint8_t* p, uint32_t len, LinkType link, ParsedPacket& out);

// Reads an address of the given family at p into the 16-byte form (IPv4 v4-mapped).
// Inline: returned from a call in two 8-byte registers and stored so, an address read back as
// one 16-byte value stalls on store forwarding.
inline IpAddr readAddr(const uint8_t* p, uint8_t family) {
  if (family == 4) {
    // One 16-byte value: built from narrow stores, the whole address read back (a hash, a
    // compare) would stall on store forwarding.
    uint32_t v;
    std::memcpy(&v, p, 4);
    return fromV4Bytes(v);
  }
  IpAddr a;
  std::memcpy(a.b, p, 16);
  return a;
}

}  // namespace svcplane

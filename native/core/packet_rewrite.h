// NAT on a parsed packet, in place: new source and destination address and port, with the
// IPv4 header checksum and the TCP/UDP checksum updated incrementally (RFC 1624: the address
// difference goes into both, since the TCP/UDP pseudo-header covers the addresses; the port
// difference into the L4 checksum only) and SCTP's CRC32c recomputed. Fields that do not
// change are not touched. Rules kept:
// - UDP over IPv4 with checksum 0 ("none") stays 0; a computed 0 is sent as 0xFFFF;
// - UDP over IPv6 must carry a checksum: a packet arriving with 0 gets a full one;
// - a later fragment has no L4 header: addresses only (its first fragment's L4 checksum,
//   which covers the whole datagram, takes the port and address change).
#pragma once
#include <cstdint>

#include "packet_parse.h"
#include "types.h"

namespace svcplane {

struct Endpoint {
  IpAddr addr;
  uint16_t port;
};

inline uint32_t srcAddrOffset(const IpHeaders& h) { return h.l3 + (h.family == 4 ? 12 : 8); }
inline uint32_t dstAddrOffset(const IpHeaders& h) { return h.l3 + (h.family == 4 ? 16 : 24); }
inline uint32_t addrBytes(const IpHeaders& h) { return h.family == 4 ? 4 : 16; }
// Where an address of this family sits inside the 16-byte form.
inline const uint8_t* addrPart(const IpAddr& a, uint8_t family) { return family == 4 ? a.b + 12 : a.b; }

// Offset of the L4 checksum field within the L4 header (TCP 16, UDP 6, ICMP/ICMPv6 2), or -1.
int l4ChecksumOffset(uint8_t proto);

// The full checksum of the L4 segment [l4, end) (the checksum field itself counts as zero),
// with the pseudo-header for TCP, UDP and ICMPv6 and without it for ICMPv4.
uint16_t fullL4Checksum(const uint8_t* p, const IpHeaders& h);
// The full IPv4 header checksum (the field counts as zero).
uint16_t fullIpv4Checksum(const uint8_t* p, const IpHeaders& h);
// SCTP's CRC32c over [l4, end) with the checksum field as zero, as stored on the wire.
uint32_t sctpChecksum(const uint8_t* p, const IpHeaders& h);

// Rewrites the packet's source and destination. `h` describes a flow packet (TCP/UDP/SCTP,
// with its L4 header) or a later fragment (h.l4 == 0).
void rewriteFlow(uint8_t* p, const IpHeaders& h, const Endpoint& src, const Endpoint& dst);

// Rewrites one address of the IP header only (IPv4 header checksum updated); returns the
// RFC 1624 difference so the caller can apply it to a checksum that covers the address.
uint32_t rewriteAddress(uint8_t* p, const IpHeaders& h, uint32_t offset, const IpAddr& to);

}  // namespace svcplane

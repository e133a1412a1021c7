// ICMP error translation for NAT (RFC 5508 section 7 for ICMPv4, the same for ICMPv6): an
// error about a translated flow quotes the packet as the far side saw it, so the quoted
// header is translated back (addresses, ports, its IPv4 header checksum and, when the quote
// holds it, its TCP/UDP checksum) along with the outer header; the ICMP checksum is then
// recomputed over the whole message, as the kernel's nf_nat_icmp_reply_translation does.
#pragma once
#include <cstdint>

#include "packet_parse.h"
#include "packet_rewrite.h"

namespace svcplane {

// Whether the ICMP/ICMPv6 checksum of an IcmpError packet is right (0x0000 and 0xFFFF are
// taken as the same value).
bool icmpChecksumValid(const uint8_t* p, const ParsedPacket& pp);

// Rewrites the quoted packet to innerSrc -> innerDst and the outer addresses to outerSrc /
// outerDst (null: unchanged), then recomputes the ICMP checksum.
void translateIcmpError(uint8_t* p, const ParsedPacket& pp, const Endpoint& innerSrc, const Endpoint& innerDst,
                        const IpAddr* outerSrc, const IpAddr* outerDst);

}  // namespace svcplane

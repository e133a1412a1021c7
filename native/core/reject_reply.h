// The reply iptables' REJECT target sends for a refused packet, built into a caller buffer:
// ICMP port unreachable (IPv4, quoting at most 576 bytes in all, RFC 1812) or ICMPv6 port
// unreachable (at most 1280 bytes, RFC 4443), or a TCP RST shaped like the kernel's
// nf_send_reset. The reply goes back the way the packet came: addresses and ports swapped,
// Ethernet addresses swapped and VLAN tags kept.
#pragma once
#include <cstdint>

#include "packet_parse.h"
#include "packet_path.h"

namespace svcplane {

// Writes the reply to packet p into out[0..cap) and returns its length; 0 when none is due
// (a TCP RST, a later fragment, RejectMode::None) or, with *tooSmall set, when it does not fit.
uint32_t buildRejectReply(const uint8_t* p, const ParsedPacket& pp, RejectMode mode, uint8_t* out, uint32_t cap,
                          bool* tooSmall);

}  // namespace svcplane

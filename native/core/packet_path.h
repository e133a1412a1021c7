// Types of the batch packet path (Dataplane::processPackets): what the caller passes per
// batch, the node-level configuration masquerade needs, and the packet counters.
#pragma once
#include <cstdint>
#include <vector>

#include "cidr.h"
#include "packet_parse.h"
#include "service_table.h"
#include "types.h"

namespace svcplane {

// Which way packets of a batch travel. ToService: from clients (anywhere) towards services;
// new flows are created here. FromBackend: from endpoints; only tracked flows are translated
// (reverse NAT), nothing new is created.
enum class PacketDirection : uint8_t { ToService = 0, FromBackend = 1 };

// What a rejected packet is answered with, like iptables' --reject-with.
enum class RejectMode : uint8_t {
  None = 0,             // no reply is generated
  IcmpUnreachable = 1,  // ICMP port unreachable / ICMPv6 port unreachable (kube-proxy's REJECT)
  TcpReset = 2,         // TCP RST for TCP; ICMP port unreachable for the rest
};

struct PacketRef {
  uint8_t* data;
  uint32_t len;
};

// Where reject replies go: appended to data[used..capacity); offsets/lengths are indexed by
// the packet's position in the batch (length 0: no reply).
struct ReplySink {
  uint8_t* data = nullptr;
  uint32_t capacity = 0;
  uint32_t used = 0;
  uint32_t* offsets = nullptr;
  uint32_t* lengths = nullptr;
};

struct PacketOptions {
  PacketDirection dir = PacketDirection::ToService;
  LinkType link = LinkType::Ethernet;
  bool fromNode = false;  // every packet was sent by this node (hook OUTPUT)
  RejectMode reject = RejectMode::IcmpUnreachable;
  ReplySink* replies = nullptr;  // null: rejects get no reply
};

// Node-level facts the packet path needs. Set on the control path; read, never changed, by
// packets.
struct PacketConfig {
  std::vector<IpAddr> nodeAddrs;  // sources that are "this node" (loopback always is)
  std::vector<Cidr> podCidrs;     // sources that are pods
  bool masqueradeAll = false;
  bool hasMasq4 = false, hasMasq6 = false;
  IpAddr masq4{}, masq6{};  // what masquerade rewrites sources to, per family
  uint16_t natPortLow = 1024, natPortHigh = 65535;
};

enum PacketCounter : uint8_t {
  kPktIpv4 = 0,
  kPktIpv6,
  kPktTcp,
  kPktUdp,
  kPktSctp,
  kPktIcmp,
  kPktFirstFragments,
  kPktLaterFragments,
  kPktIcmpErrors,     // ICMP errors translated
  kPktRewritten,      // packets changed in place (forward, reply, ICMP errors, fragments)
  kPktMasqueraded,    // new flows given a NAT port
  kPktRejectReplies,  // reject replies written
  kPktCounters
};

struct PacketCounters {
  uint64_t packets = 0;
  uint64_t verdicts[kVerdicts] = {};
  uint64_t reasons[kPacketReasons] = {};
  uint64_t counts[kPktCounters] = {};
};

}  // namespace svcplane

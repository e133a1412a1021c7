// Plain value types shared by every part of the core: addresses, keys, protocols.
// No Node headers here: the core is linkable from C/C++ on its own.
#pragma once
#include <cstdint>
#include <cstring>

namespace svcplane {

enum class Protocol : uint8_t { TCP = 6, UDP = 17, SCTP = 132, ICMP = 1, ICMPv6 = 58 };

// Internal traffic comes from this node or its pods; external from anywhere else.
enum class Scope : uint8_t { Internal = 0, External = 1 };

// An IPv4 or IPv6 address in 16 bytes; IPv4 is stored v4-mapped (::ffff:a.b.c.d) so one key
// layout serves both families.
struct IpAddr {
  uint8_t b[16];

  static IpAddr v4(uint32_t hostOrder) {
    IpAddr a{};
    a.b[10] = 0xff;
    a.b[11] = 0xff;
    a.b[12] = uint8_t(hostOrder >> 24);
    a.b[13] = uint8_t(hostOrder >> 16);
    a.b[14] = uint8_t(hostOrder >> 8);
    a.b[15] = uint8_t(hostOrder);
    return a;
  }
  bool isV4() const {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return std::memcmp(b, prefix, 12) == 0;
  }
  bool operator==(const IpAddr& o) const { return std::memcmp(b, o.b, 16) == 0; }
  bool operator!=(const IpAddr& o) const { return !(*this == o); }
};

// An IPv4 address (its 4 bytes as a packet holds them, loaded as one word) as the v4-mapped
// IpAddr, built as one 16-byte value and stored at once: an address assembled from narrow
// stores and read back whole stalls on store forwarding, which cost more than the rest of a hit.
inline IpAddr fromV4Bytes(uint32_t v) {
  typedef uint32_t Words4 __attribute__((vector_size(16)));
  static constexpr uint8_t kMapped[4] = {0, 0, 0xff, 0xff};
  uint32_t mapped;
  std::memcpy(&mapped, kMapped, 4);
  const Words4 w = {0, 0, mapped, v};
  IpAddr a;
  std::memcpy(&a, &w, sizeof a);
  return a;
}

// A connection as seen in one direction. Fixed 40-byte layout, no padding holes, so it can be
// hashed and compared as raw words.
struct FlowKey {
  IpAddr src;
  IpAddr dst;
  uint16_t sport;
  uint16_t dport;
  uint8_t proto;
  uint8_t pad[3];

  // Five 8-byte words, compared without a call or an early exit (conntrack compares one per
  // packet).
  bool operator==(const FlowKey& o) const {
    uint64_t a[5], b[5];
    std::memcpy(a, this, sizeof a);
    std::memcpy(b, &o, sizeof b);
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4])) == 0;
  }
  FlowKey reversed() const {
    FlowKey r{};
    r.src = dst;
    r.dst = src;
    r.sport = dport;
    r.dport = sport;
    r.proto = proto;
    return r;
  }
};
static_assert(sizeof(FlowKey) == 40, "FlowKey must stay packed");

// A service frontend: what a packet's destination is matched against.
struct FrontendKey {
  IpAddr addr;
  uint16_t port;
  uint8_t proto;
  uint8_t scope;

  bool operator==(const FrontendKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
static_assert(sizeof(FrontendKey) == 20, "FrontendKey must stay packed");

// A FrontendKey for a hot path: port, protocol and scope stored as one word. Written as three
// narrow fields, they stall the hash's 4-byte load of them on store forwarding (measured: a
// quarter of a batch's hashing, and of steering).
inline FrontendKey frontendKey(const IpAddr& addr, uint16_t port, uint8_t proto, uint8_t scope) {
  static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the tail word's layout");
  FrontendKey k;
  k.addr = addr;
  const uint32_t tail = uint32_t(port) | uint32_t(proto) << 16 | uint32_t(scope) << 24;
  std::memcpy(reinterpret_cast<uint8_t*>(&k) + 16, &tail, 4);
  return k;
}

inline bool isKnownProtocol(uint8_t p) {
  return p == uint8_t(Protocol::TCP) || p == uint8_t(Protocol::UDP) || p == uint8_t(Protocol::SCTP);
}

}  // namespace svcplane

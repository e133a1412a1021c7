// Address prefixes (loadBalancerSourceRanges). IPv4 prefixes are stored v4-mapped, with 96
// added to the prefix length, so one comparison serves both families.
#pragma once
#include <cstdint>

#include "types.h"

namespace svcplane {

struct Cidr {
  IpAddr net;
  uint8_t bits;  // 0..128 over the 16-byte form

  bool contains(const IpAddr& a) const {
    uint8_t full = bits / 8, rest = bits % 8;
    for (uint8_t i = 0; i < full; ++i)
      if (a.b[i] != net.b[i]) return false;
    if (rest == 0) return true;
    uint8_t mask = uint8_t(0xff00 >> rest);
    return (a.b[full] & mask) == (net.b[full] & mask);
  }
};

}  // namespace svcplane

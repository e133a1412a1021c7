// Internet checksums (RFC 1071) and their incremental update for NAT (RFC 1624).
//
// Sums are kept in 32-bit accumulators of big-endian 16-bit words and folded with end-around
// carry at the end. The incremental form is RFC 1624's eqn. 3, HC' = ~(~HC + ~m + m'), which
// (unlike RFC 1141's) never turns a checksum a full recompute would give as 0x0000 into 0xFFFF.
// Every function reads and writes bytes one at a time: headers sit at any alignment.
#pragma once
#include <cstddef>
#include <cstdint>

namespace svcplane::csum {

inline uint16_t load16(const uint8_t* p) { return uint16_t((uint16_t(p[0]) << 8) | p[1]); }
inline void store16(uint8_t* p, uint16_t v) {
  p[0] = uint8_t(v >> 8);
  p[1] = uint8_t(v);
}

inline uint32_t fold(uint32_t s) {
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return s;
}

// Ones-complement sum of len bytes (an odd last byte is padded with zero, as RFC 1071 says),
// added to acc. The result is unfolded; fold() it before use.
inline uint32_t add(const uint8_t* p, size_t len, uint32_t acc = 0) {
  uint64_t s = acc;
  size_t i = 0;
  for (; i + 1 < len; i += 2) s += load16(p + i);
  if (i < len) s += uint32_t(p[i]) << 8;
  while (s >> 32) s = (s & 0xffffffffull) + (s >> 32);
  return uint32_t(s);
}

// The checksum field value for data whose ones-complement sum (unfolded) is acc.
inline uint16_t finish(uint32_t acc) { return uint16_t(~fold(acc)); }

// RFC 1624 difference of replacing `len` bytes (even) at oldp with newp: sum of ~m + m'.
inline uint32_t diff(const uint8_t* oldp, const uint8_t* newp, size_t len, uint32_t acc = 0) {
  for (size_t i = 0; i + 1 < len; i += 2) acc += uint32_t(uint16_t(~load16(oldp + i))) + load16(newp + i);
  return fold(acc);
}
inline uint32_t diff16(uint16_t oldv, uint16_t newv, uint32_t acc = 0) {
  return fold(acc + uint32_t(uint16_t(~oldv)) + newv);
}

// Applies a difference to a checksum field value: HC' = ~(~HC + diff).
inline uint16_t apply(uint16_t check, uint32_t d) { return uint16_t(~fold(uint32_t(uint16_t(~check)) + d)); }

// In place, on a checksum field in a packet.
inline void applyAt(uint8_t* field, uint32_t d) { store16(field, apply(load16(field), d)); }

// Sum of the TCP/UDP pseudo-header (RFC 793 / RFC 8200 section 8.1).
inline uint32_t pseudoHeader(const uint8_t* src, const uint8_t* dst, size_t addrLen, uint8_t proto, uint32_t l4len) {
  uint32_t s = add(src, addrLen);
  s = add(dst, addrLen, s);
  s += proto;
  s += l4len >> 16;
  s += l4len & 0xffff;
  return s;
}

}  // namespace svcplane::csum

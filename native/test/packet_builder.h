// Test packets built from scratch, with checksums from an implementation of their own (a plain
// byte-by-byte sum and a bitwise CRC32c), independent of native/core/csum.h and crc32c.cc, so
// that the core's incremental updates are checked against something they do not share code
// with.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

namespace pb {

using Bytes = std::vector<uint8_t>;

// RFC 1071, the slow obvious way: 16-bit big-endian words added into a 64-bit total, carries
// folded at the end.
inline uint16_t inetSum(const Bytes& data, size_t from, size_t to, uint64_t start = 0) {
  uint64_t total = start;
  for (size_t i = from; i < to; i += 2) {
    uint16_t hi = data[i];
    uint16_t lo = i + 1 < to ? data[i + 1] : 0;
    total += (hi << 8) | lo;
  }
  while (total > 0xffff) total = (total & 0xffff) + (total >> 16);
  return uint16_t(total);
}

inline uint32_t crc32cBitwise(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1)));
  }
  return ~crc;
}

struct Addr {
  uint8_t family;
  uint8_t b[16];
};
inline Addr v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) { return Addr{4, {a, b, c, d}}; }
inline Addr v6(std::initializer_list<uint16_t> words) {
  Addr x{6, {}};
  size_t i = 0;
  for (uint16_t w : words) {
    x.b[2 * i] = uint8_t(w >> 8);
    x.b[2 * i + 1] = uint8_t(w);
    ++i;
  }
  return x;
}

inline void put16(Bytes& p, size_t at, uint16_t v) {
  p[at] = uint8_t(v >> 8);
  p[at + 1] = uint8_t(v);
}
inline uint16_t get16(const Bytes& p, size_t at) { return uint16_t(p[at] << 8 | p[at + 1]); }

struct Spec {
  Addr src, dst;
  uint8_t proto = 6;
  uint16_t sport = 40000, dport = 80;
  uint8_t tcpFlags = 0x02;
  uint32_t seq = 1000, ack = 0;
  size_t payload = 0;  // payload bytes (values i*7)
  bool ethernet = false;
  int vlans = 0;
  size_t ipv4Options = 0;     // bytes, multiple of 4
  bool v6ExtHeaders = false;  // a hop-by-hop and a destination-options header
  bool udpNoChecksum = false;
  uint8_t ttl = 64;
  uint16_t ipId = 0x1234;
};

struct Built {
  Bytes bytes;
  size_t l3 = 0, l4 = 0;
};

// Full L4 checksum for the packet (pseudo-header for TCP/UDP/ICMPv6).
inline uint16_t l4Checksum(const Bytes& p, size_t l3, size_t l4, size_t end, uint8_t family, uint8_t proto,
                           size_t csumAt) {
  Bytes copy(p.begin(), p.end());
  copy[l4 + csumAt] = copy[l4 + csumAt + 1] = 0;
  uint64_t start = 0;
  if (!(family == 4 && proto == 1)) {
    Bytes ph;
    size_t alen = family == 4 ? 4 : 16;
    size_t so = family == 4 ? l3 + 12 : l3 + 8, dof = family == 4 ? l3 + 16 : l3 + 24;
    ph.insert(ph.end(), copy.begin() + long(so), copy.begin() + long(so + alen));
    ph.insert(ph.end(), copy.begin() + long(dof), copy.begin() + long(dof + alen));
    uint32_t len = uint32_t(end - l4);
    ph.push_back(0);
    ph.push_back(proto);
    if (family == 6) {
      ph.push_back(uint8_t(len >> 24));
      ph.push_back(uint8_t(len >> 16));
      ph.push_back(0);
      ph.push_back(0);
    }
    ph.push_back(uint8_t(len >> 8));
    ph.push_back(uint8_t(len));
    start = inetSum(ph, 0, ph.size());
  }
  uint16_t c = uint16_t(~inetSum(copy, l4, end, start));
  if (proto == 17 && c == 0) c = 0xffff;
  return c;
}

inline uint16_t ipv4HeaderChecksum(const Bytes& p, size_t l3) {
  Bytes copy(p.begin(), p.end());
  copy[l3 + 10] = copy[l3 + 11] = 0;
  size_t ihl = size_t(copy[l3] & 15) * 4;
  return uint16_t(~inetSum(copy, l3, l3 + ihl));
}

inline Built build(const Spec& s) {
  Built out;
  Bytes& p = out.bytes;
  if (s.ethernet) {
    p = Bytes{0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2};
    for (int v = 0; v < s.vlans; ++v) {
      p.push_back(v == 0 && s.vlans == 2 ? 0x88 : 0x81);
      p.push_back(v == 0 && s.vlans == 2 ? 0xa8 : 0x00);
      p.push_back(0);
      p.push_back(uint8_t(10 + v));
    }
    p.push_back(s.src.family == 4 ? 0x08 : 0x86);
    p.push_back(s.src.family == 4 ? 0x00 : 0xdd);
  }
  out.l3 = p.size();
  size_t l4len = (s.proto == 6 ? 20 : s.proto == 17 ? 8 : s.proto == 132 ? 12 : 8) + s.payload;
  size_t l4 = 0;
  if (s.src.family == 4) {
    size_t ihl = 20 + s.ipv4Options;
    p.resize(out.l3 + ihl);
    uint8_t* h = p.data() + out.l3;
    h[0] = uint8_t(0x40 | (ihl / 4));
    put16(p, out.l3 + 2, uint16_t(ihl + l4len));
    put16(p, out.l3 + 4, s.ipId);
    h[8] = s.ttl;
    h[9] = s.proto;
    std::memcpy(h + 12, s.src.b, 4);
    std::memcpy(h + 16, s.dst.b, 4);
    for (size_t i = 0; i < s.ipv4Options; ++i) h[20 + i] = 1;  // NOP options
    l4 = out.l3 + ihl;
  } else {
    size_t ext = s.v6ExtHeaders ? 16 : 0;
    p.resize(out.l3 + 40 + ext);
    uint8_t* h = p.data() + out.l3;
    h[0] = 0x60;
    put16(p, out.l3 + 4, uint16_t(ext + l4len));
    h[6] = s.v6ExtHeaders ? 0 : s.proto;
    h[7] = s.ttl;
    std::memcpy(h + 8, s.src.b, 16);
    std::memcpy(h + 24, s.dst.b, 16);
    if (s.v6ExtHeaders) {
      h[40] = 60;  // hop-by-hop -> destination options
      h[41] = 0;
      h[42] = 1;  // PadN
      h[43] = 4;
      h[48] = s.proto;
      h[49] = 0;
      h[50] = 1;
      h[51] = 4;
    }
    l4 = out.l3 + 40 + ext;
  }
  out.l4 = l4;
  p.resize(l4 + l4len);
  put16(p, l4, s.sport);
  put16(p, l4 + 2, s.dport);
  size_t hdr = l4len - s.payload;
  for (size_t i = 0; i < s.payload; ++i) p[l4 + hdr + i] = uint8_t(i * 7 + 3);
  if (s.proto == 6) {
    p[l4 + 4] = uint8_t(s.seq >> 24);
    p[l4 + 5] = uint8_t(s.seq >> 16);
    p[l4 + 6] = uint8_t(s.seq >> 8);
    p[l4 + 7] = uint8_t(s.seq);
    p[l4 + 8] = uint8_t(s.ack >> 24);
    p[l4 + 9] = uint8_t(s.ack >> 16);
    p[l4 + 10] = uint8_t(s.ack >> 8);
    p[l4 + 11] = uint8_t(s.ack);
    p[l4 + 12] = 5 << 4;
    p[l4 + 13] = s.tcpFlags;
    put16(p, l4 + 14, 65535);
    put16(p, l4 + 16, l4Checksum(p, out.l3, l4, p.size(), s.src.family, 6, 16));
  } else if (s.proto == 17) {
    put16(p, l4 + 4, uint16_t(l4len));
    if (!s.udpNoChecksum) put16(p, l4 + 6, l4Checksum(p, out.l3, l4, p.size(), s.src.family, 17, 6));
  } else if (s.proto == 132) {
    put16(p, l4 + 4, 0x1234);  // verification tag
    uint32_t c = crc32cBitwise(p.data() + l4, p.size() - l4);
    p[l4 + 8] = uint8_t(c);
    p[l4 + 9] = uint8_t(c >> 8);
    p[l4 + 10] = uint8_t(c >> 16);
    p[l4 + 11] = uint8_t(c >> 24);
  }
  if (s.src.family == 4) put16(p, out.l3 + 10, ipv4HeaderChecksum(p, out.l3));
  return out;
}

// Whether every checksum of a built-style packet (no fragments) is right, by full recompute.
inline bool checksumsValid(const Bytes& p, size_t l3) {
  uint8_t family = p[l3] >> 4;
  size_t l4;
  uint8_t proto;
  size_t end;
  if (family == 4) {
    if (ipv4HeaderChecksum(p, l3) != get16(p, l3 + 10)) return false;
    l4 = l3 + size_t(p[l3] & 15) * 4;
    proto = p[l3 + 9];
    end = l3 + get16(p, l3 + 2);
  } else {
    proto = p[l3 + 6];
    l4 = l3 + 40;
    while (proto == 0 || proto == 60 || proto == 43) {
      proto = p[l4];
      l4 += (size_t(p[l4 + 1]) + 1) * 8;
    }
    end = l3 + 40 + get16(p, l3 + 4);
  }
  if (proto == 6) return l4Checksum(p, l3, l4, end, family, 6, 16) == get16(p, l4 + 16);
  if (proto == 17) {
    uint16_t c = get16(p, l4 + 6);
    if (c == 0) return family == 4;
    return l4Checksum(p, l3, l4, end, family, 17, 6) == c;
  }
  if (proto == 1 || proto == 58) return l4Checksum(p, l3, l4, end, family, proto, 2) == get16(p, l4 + 2);
  if (proto == 132) {
    Bytes copy(p.begin(), p.end());
    std::memset(copy.data() + l4 + 8, 0, 4);
    uint32_t c = crc32cBitwise(copy.data() + l4, end - l4);
    return p[l4 + 8] == uint8_t(c) && p[l4 + 9] == uint8_t(c >> 8) && p[l4 + 10] == uint8_t(c >> 16) &&
           p[l4 + 11] == uint8_t(c >> 24);
  }
  return true;
}

}  // namespace pb

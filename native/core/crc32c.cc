#include "crc32c.h"

namespace svcplane {

namespace {

struct Tables {
  uint32_t t[8][256];
  constexpr Tables() : t{} {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; ++i)
      for (int s = 1; s < 8; ++s) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  }
};

constexpr Tables kTables;

}  // namespace

uint32_t crc32c(const uint8_t* p, size_t len, uint32_t crc) {
  const auto& t = kTables.t;
  crc = ~crc;
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint32_t lo =
        crc ^ (uint32_t(p[i]) | uint32_t(p[i + 1]) << 8 | uint32_t(p[i + 2]) << 16 | uint32_t(p[i + 3]) << 24);
    crc = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^ t[3][p[i + 4]] ^
          t[2][p[i + 5]] ^ t[1][p[i + 6]] ^ t[0][p[i + 7]];
  }
  for (; i < len; ++i) crc = (crc >> 8) ^ t[0][(crc ^ p[i]) & 0xff];
  return ~crc;
}

}  // namespace svcplane

// Keyed hashing. Attackers choose 5-tuples, so every table hashes with a per-instance secret
// (the Linux conntrack does the same with siphash and a boot-time key). The mixer is the
// 64x64->128 multiply-fold used by wyhash: fast (a few ns for a 40-byte key) and, keyed,
// not predictable from outside.
#pragma once
#include <cstdint>
#include <cstring>

namespace svcplane {

inline uint64_t mulFold(uint64_t a, uint64_t b) {
  __uint128_t r = (__uint128_t)a * b;
  return uint64_t(r) ^ uint64_t(r >> 64);
}

inline uint64_t load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

constexpr uint64_t kHashP0 = 0xa0761d6478bd642full;
constexpr uint64_t kHashP1 = 0xe7037ed1a0b428dbull;
constexpr uint64_t kHashP2 = 0x8ebc6af09c88c6e3ull;

// Hashes len bytes (len a multiple of 4) with a 64-bit secret.
inline uint64_t keyedHash(const void* data, size_t len, uint64_t seed) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = seed ^ kHashP0;
  size_t i = 0;
  for (; i + 16 <= len; i += 16) h = mulFold(load64(p + i) ^ kHashP1 ^ h, load64(p + i + 8) ^ seed ^ kHashP2);
  if (i + 8 <= len) {
    h = mulFold(load64(p + i) ^ kHashP1, h ^ kHashP2);
    i += 8;
  }
  if (i < len) {
    uint32_t tail;
    std::memcpy(&tail, p + i, 4);
    h = mulFold(uint64_t(tail) ^ kHashP2, h ^ kHashP1);
  }
  return mulFold(h ^ len, kHashP1 ^ seed);
}

// SplitMix64: expands one seed into independent secrets and drives the scheduler RNG.
inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace svcplane

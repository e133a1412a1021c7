// Checksums: the core's RFC 1071 sum and RFC 1624 incremental update against the from-scratch
// implementation in packet_builder.h, on random data of odd and even lengths, with checksums
// forced to 0x0000 and 0xFFFF, with unchanged fields; and CRC32c against its check value.
#include <random>

#include "check.h"
#include "core/crc32c.h"
#include "core/csum.h"
#include "packet_builder.h"

using namespace svcplane;

namespace {

uint16_t fullChecksum(const pb::Bytes& d) { return uint16_t(~pb::inetSum(d, 0, d.size())); }

// Sets the word at `at` so that the checksum of d over the other words comes out as `want`.
// Returns false when no such word exists (want 0xFFFF needs a ones-complement sum of +0).
void forceChecksumWord(pb::Bytes& d, size_t csumAt, uint16_t want, size_t fillerAt) {
  // Put the wanted checksum in place and choose the filler so that the sum of all words is
  // 0xFFFF (what a valid checksum makes it).
  pb::put16(d, csumAt, want);
  pb::put16(d, fillerAt, 0);
  uint16_t s = pb::inetSum(d, 0, d.size());
  pb::put16(d, fillerAt, uint16_t(~s));
}

}  // namespace

TEST_CASE("csum: RFC 1071 example and odd lengths") {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
  pb::Bytes d = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  CHECK_EQ(csum::fold(csum::add(d.data(), d.size())), 0xddf2u);
  std::mt19937 rng(7);
  for (size_t len = 1; len < 200; ++len) {
    pb::Bytes x(len);
    for (auto& b : x) b = uint8_t(rng());
    CHECK_EQ(csum::finish(csum::add(x.data(), x.size())), fullChecksum(x));
  }
}

TEST_CASE("csum: RFC 1624 update equals a full recompute (random, 0x0000, 0xFFFF, unchanged)") {
  std::mt19937 rng(11);
  int checked = 0, failed = 0, endsZero = 0;
  for (int iter = 0; iter < 20000 && failed < 5; ++iter) {
    size_t len = 24 + (rng() % 120);  // odd and even
    pb::Bytes d(len);
    for (auto& b : d) b = uint8_t(rng());
    const size_t csumAt = 0, fillerAt = 2;
    // Modes: 0 and 1 start from a stored checksum of 0x0000 / 0xFFFF; 2 from an ordinary one;
    // 3 rewrites a field with its own value; 4 picks the new value so the result is 0x0000.
    int mode = iter % 5;
    if (mode == 0)
      forceChecksumWord(d, csumAt, 0x0000, fillerAt);
    else if (mode == 1)
      forceChecksumWord(d, csumAt, 0xffff, fillerAt);
    else
      forceChecksumWord(d, csumAt, uint16_t(rng()), fillerAt);
    size_t flen = std::array<size_t, 3>{2, 4, 16}[rng() % 3];
    size_t at = 4 + 2 * (rng() % ((len - 4 - flen) / 2));
    pb::Bytes before(d.begin() + long(at), d.begin() + long(at + flen));
    pb::Bytes after = before;
    if (mode != 3)
      for (auto& b : after) b = uint8_t(rng());
    if (mode == 2 && rng() % 4 == 0)  // words going between 0x0000 and 0xFFFF
      for (size_t k = 0; k < flen; ++k) after[k] = before[k] == 0 ? 0xff : 0;
    if (mode == 4) {
      // Choose the field's first word so that the new data sums to 0xFFFF: checksum 0x0000.
      pb::Bytes t = d;
      std::copy(after.begin(), after.end(), t.begin() + long(at));
      pb::put16(t, csumAt, 0);
      pb::put16(t, at, 0);
      uint16_t w = uint16_t(~pb::inetSum(t, 0, t.size()));
      after[0] = uint8_t(w >> 8);
      after[1] = uint8_t(w);
    }
    uint16_t stored = pb::get16(d, csumAt);
    uint16_t incremental = csum::apply(stored, csum::diff(before.data(), after.data(), flen));
    std::copy(after.begin(), after.end(), d.begin() + long(at));
    pb::Bytes zeroed = d;
    pb::put16(zeroed, csumAt, 0);
    uint16_t full = uint16_t(~pb::inetSum(zeroed, 0, zeroed.size()));
    bool ok = mode == 3 ? incremental == stored : incremental == full;
    if (mode == 1 && !ok && incremental == 0xffff && full == 0) ok = false;
    if (!ok) {
      ++failed;
      std::printf("  len %zu field %zu@%zu mode %d: stored %04x incremental %04x full %04x\n", len, flen, at, mode,
                  stored, incremental, full);
    }
    if (mode == 4 && full == 0) ++endsZero;
    ++checked;
  }
  CHECK_EQ(failed, 0);
  CHECK(checked > 15000);
  CHECK(endsZero > 3000);
}

TEST_CASE("csum: port and address deltas combine; skipping unchanged fields") {
  pb::Bytes d = {0x45, 0x00, 0x00, 0x54, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 10, 0, 0, 2, 172, 30, 0, 41};
  pb::put16(d, 10, uint16_t(~pb::inetSum(d, 0, 20)));
  uint8_t to[4] = {10, 180, 0, 1};
  uint32_t diff = csum::diff(d.data() + 16, to, 4);
  uint16_t c = csum::apply(pb::get16(d, 10), diff);
  std::copy(to, to + 4, d.begin() + 16);
  pb::Bytes z = d;
  pb::put16(z, 10, 0);
  CHECK_EQ(c, uint16_t(~pb::inetSum(z, 0, 20)));
  CHECK_EQ(csum::apply(0x1234, csum::diff16(80, 80)), 0x1234);
}

TEST_CASE("crc32c: check value and agreement with a bitwise implementation") {
  const char* s = "123456789";
  CHECK_EQ(crc32c(reinterpret_cast<const uint8_t*>(s), 9), 0xe3069283u);
  std::mt19937 rng(3);
  for (size_t len = 0; len < 300; len += 7) {
    pb::Bytes x(len);
    for (auto& b : x) b = uint8_t(rng());
    CHECK_EQ(crc32c(x.data(), x.size()), pb::crc32cBitwise(x.data(), x.size()));
    // Incremental continuation equals one pass.
    if (len > 10) CHECK_EQ(crc32c(x.data() + 10, len - 10, crc32c(x.data(), 10)), crc32c(x.data(), len));
  }
}

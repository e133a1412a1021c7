// CRC32c (Castagnoli), the SCTP checksum (RFC 4960 appendix B / RFC 3309). Table-driven,
// slicing by 8: no CPU feature assumed. SCTP carries no pseudo-header, so NAT has to
// recompute it over the whole packet when a port changes.
#pragma once
#include <cstddef>
#include <cstdint>

namespace svcplane {

uint32_t crc32c(const uint8_t* p, size_t len, uint32_t crc = 0);

}  // namespace svcplane

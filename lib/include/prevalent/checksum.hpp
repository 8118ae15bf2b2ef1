// CRC-32C (Castagnoli), the checksum of every journal record and snapshot. Computed by Intel
// ISA-L's crc32_iscsi (hardware instructions) when prevalent is built with libisal, otherwise
// by Boost.CRC; never by a hand-written table. Both give the same values.
#pragma once

#include <cstdint>

#include "prevalent/bytes.hpp"

namespace prevalent {

// CRC-32C of `data`, continuing from `seed` (the value returned for the preceding bytes; 0 to
// start). crc32c(b, crc32c(a)) == crc32c(a + b).
std::uint32_t crc32c(byte_view data, std::uint32_t seed = 0) noexcept;

}  // namespace prevalent

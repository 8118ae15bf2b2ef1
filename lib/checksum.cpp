#include "prevalent/checksum.hpp"

#ifdef PREVALENT_HAVE_ISAL
#include <isa-l/crc.h>

#include <algorithm>
#include <climits>
#else
#include <boost/crc.hpp>
#endif

namespace prevalent {

#ifdef PREVALENT_HAVE_ISAL

std::uint32_t crc32c(byte_view data, std::uint32_t seed) noexcept {
  // ISA-L's crc32_iscsi is CRC-32C without the final inversion: start from the inverted seed
  // and invert the result. Lengths are int there, so large snapshots go in pieces.
  std::uint32_t crc = ~seed;
  const std::uint8_t* p = data.data();
  for (std::size_t left = data.size(); left > 0;) {
    const std::size_t n = std::min<std::size_t>(left, INT_MAX / 2 + 1);
    crc = crc32_iscsi(const_cast<std::uint8_t*>(p), static_cast<int>(n), crc);
    p += n;
    left -= n;
  }
  return ~crc;
}

#else

namespace {
// Boost.CRC takes an initial remainder in unreflected bit order; a finished reflected
// checksum is in reflected order, so continuing from one means reversing its bits.
std::uint32_t reverse_bits(std::uint32_t v) noexcept {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i, v >>= 1) r = (r << 1) | (v & 1u);
  return r;
}
}  // namespace

std::uint32_t crc32c(byte_view data, std::uint32_t seed) noexcept {
  // Castagnoli polynomial, reflected, with the usual pre/post inversion; seeding with the
  // previous result makes the checksum chainable.
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc(
      reverse_bits(seed ^ 0xFFFFFFFFu));
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

#endif

}  // namespace prevalent

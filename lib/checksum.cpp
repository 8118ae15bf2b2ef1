#include "prevalent/checksum.hpp"

#include <boost/crc.hpp>

namespace prevalent {

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

}  // namespace prevalent

#include "prevalent/checksum.hpp"

#include <boost/crc.hpp>

namespace prevalent {

std::uint32_t crc32c(byte_view data, std::uint32_t seed) noexcept {
  // Castagnoli polynomial, reflected, with the usual pre/post inversion. Seeding with the
  // previous result (un-inverted by the initial remainder) makes the checksum chainable.
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc(seed ^ 0xFFFFFFFFu);
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

}  // namespace prevalent

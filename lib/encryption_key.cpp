// The application's encryption key: construction, checks and zeroing (encryption_key.hpp).
#include "prevalent/encryption_key.hpp"

#include <algorithm>
#include <string>

#include "prevalent/error.hpp"

#ifdef PREVALENT_HAVE_SODIUM
#include <sodium.h>
#else
#include <string.h>  // explicit_bzero
#endif

namespace prevalent {
namespace {

void wipe(void* p, std::size_t n) noexcept {
#ifdef PREVALENT_HAVE_SODIUM
  sodium_memzero(p, n);
#else
  explicit_bzero(p, n);
#endif
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

encryption_key::encryption_key(byte_view key) {
  if (key.size() != size)
    throw error(errc::invalid_option, "encryption key is " + std::to_string(key.size()) +
                                          " bytes, expected " + std::to_string(size));
  std::copy(key.begin(), key.end(), bytes_.begin());
}

encryption_key encryption_key::from_hex(std::string_view hex) {
  if (hex.size() != 2 * size)
    throw error(errc::invalid_option, "encryption key in hex is " + std::to_string(hex.size()) +
                                          " characters, expected " + std::to_string(2 * size));
  encryption_key k;
  for (std::size_t i = 0; i < size; ++i) {
    const int hi = hex_digit(hex[2 * i]);
    const int lo = hex_digit(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      throw error(errc::invalid_option,
                  "encryption key in hex has a character that is not a "
                  "hexadecimal digit at position " +
                      std::to_string(hi < 0 ? 2 * i : 2 * i + 1));
    k.bytes_[i] = static_cast<std::uint8_t>(hi * 16 + lo);
  }
  return k;
}

encryption_key::encryption_key(const encryption_key& other) noexcept : bytes_(other.bytes_) {}

encryption_key& encryption_key::operator=(const encryption_key& other) noexcept {
  bytes_ = other.bytes_;
  return *this;
}

encryption_key::~encryption_key() { wipe(bytes_.data(), bytes_.size()); }

}  // namespace prevalent

// The key of a store's optional authenticated encryption at rest (journal_options::encryption_key,
// docs/SECURITY.md#encryption-at-rest): 32 bytes the application supplies and keeps away from the
// store's directory. The library never writes it to disk and never logs it; every copy is zeroed
// when destroyed. It has no stream operator and no way to print it, on purpose.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

#include "prevalent/bytes.hpp"

namespace prevalent {

class encryption_key {
 public:
  static constexpr std::size_t size = 32;

  // From exactly 32 bytes (throws errc::invalid_option naming the length otherwise).
  explicit encryption_key(byte_view key);
  // From 64 hexadecimal digits, as a key is kept in a file or a secret store (throws
  // errc::invalid_option saying what is wrong, without echoing the text).
  static encryption_key from_hex(std::string_view hex);

  encryption_key(const encryption_key& other) noexcept;
  encryption_key& operator=(const encryption_key& other) noexcept;
  ~encryption_key();  // zeroes the bytes (sodium_memzero, or explicit_bzero without libsodium)

  byte_view bytes() const noexcept { return {bytes_.data(), bytes_.size()}; }

 private:
  encryption_key() = default;
  std::array<std::uint8_t, size> bytes_{};
};

}  // namespace prevalent

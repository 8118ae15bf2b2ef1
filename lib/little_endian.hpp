// Little-endian integer encoding for the on-disk format, independent of the host's byte order.
#pragma once

#include <cstdint>
#include <cstring>

namespace prevalent::detail {

template <class T>
void put_le(std::uint8_t* out, T value) {
  auto v = static_cast<std::make_unsigned_t<T>>(value);
  for (std::size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * i));
}

template <class T>
T get_le(const std::uint8_t* in) {
  std::make_unsigned_t<T> v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<std::make_unsigned_t<T>>(in[i]) << (8 * i);
  return static_cast<T>(v);
}

}  // namespace prevalent::detail

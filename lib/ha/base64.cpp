#include "base64.hpp"

#include <sodium.h>

#include <stdexcept>

namespace prevalent::ha::detail {

std::string base64_encode(std::string_view bytes) {
  const auto variant = sodium_base64_VARIANT_ORIGINAL;
  std::string out(sodium_base64_ENCODED_LEN(bytes.size(), variant), '\0');
  sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                    bytes.size(), variant);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string base64_decode(std::string_view text, std::string_view what) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  size_t length = 0;
  const char* end = nullptr;
  if (sodium_base642bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(),
                        text.size(), nullptr, &length, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
      end != text.data() + text.size()) {
    throw std::invalid_argument(std::string(what) + " is not base64: \"" +
                                std::string(text.substr(0, 64)) + "\"");
  }
  out.resize(length);
  return out;
}

}  // namespace prevalent::ha::detail

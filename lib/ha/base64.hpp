// Base64 (the standard alphabet, with padding) for the keys and values etcd's JSON gateway
// carries, with libsodium's codec.
#pragma once

#include <string>
#include <string_view>

namespace prevalent::ha::detail {

std::string base64_encode(std::string_view bytes);
// Throws std::invalid_argument naming `what` when `text` is not base64.
std::string base64_decode(std::string_view text, std::string_view what);

}  // namespace prevalent::ha::detail

// Payload codecs: how commands and snapshot state become bytes. Text JSON by default, so
// journals read with ordinary tools; CBOR or MessagePack (nlohmann's own encoders) for speed
// and size. The codec of every segment and snapshot is recorded in its header.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "prevalent/bytes.hpp"
#include "prevalent/format.hpp"

namespace prevalent {

using format::codec;

// Encodes `value` with codec `c`, appending to `out`.
void encode_to(std::string& out, const nlohmann::json& value, codec c);

inline std::string encode(const nlohmann::json& value, codec c) {
  std::string out;
  encode_to(out, value, c);
  return out;
}

// Decodes `data`; nullopt when it is not a complete, valid value in codec `c`. Never throws
// on bad input, so it is safe at a trust boundary.
std::optional<nlohmann::json> decode(byte_view data, codec c);

}  // namespace prevalent

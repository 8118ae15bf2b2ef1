// Payload codecs: how commands and snapshot state become bytes. Text JSON by default, so
// journals read with ordinary tools; CBOR or MessagePack (nlohmann's own encoders) for speed
// and size. The codec of every segment and snapshot is recorded in its header.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "prevalent/bytes.hpp"

namespace prevalent {

// How payloads (commands and snapshot state) are encoded. The number is what segment and
// snapshot headers record (docs/FORMAT.md).
enum class codec : std::uint32_t { json = 1, cbor = 2, msgpack = 3 };
bool known_codec(codec c);
const char* codec_name(codec c);  // "json", "cbor", "msgpack", or "unknown"

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

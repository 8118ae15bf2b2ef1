#include "prevalent/codec.hpp"

namespace prevalent {

bool known_codec(codec c) { return c == codec::json || c == codec::cbor || c == codec::msgpack; }

const char* codec_name(codec c) {
  switch (c) {
    case codec::json: return "json";
    case codec::cbor: return "cbor";
    case codec::msgpack: return "msgpack";
  }
  return "unknown";
}

void encode_to(std::string& out, const nlohmann::json& value, codec c) {
  switch (c) {
    case codec::json: out += value.dump(); return;
    case codec::cbor: nlohmann::json::to_cbor(value, out); return;
    case codec::msgpack: nlohmann::json::to_msgpack(value, out); return;
  }
}

std::optional<nlohmann::json> decode(byte_view data, codec c) {
  nlohmann::json out;
  // allow_exceptions=false is not the whole story: nlohmann still throws out_of_range when a
  // CBOR or MessagePack header claims more elements than a container can hold (found by
  // fuzz_store; the input is kept in test/fuzz/corpus/fuzz_store/).
  try {
    switch (c) {
      case codec::json:
        out = nlohmann::json::parse(data.begin(), data.end(), nullptr, false);
        break;
      case codec::cbor:
        out = nlohmann::json::from_cbor(data.begin(), data.end(), true, false);
        break;
      case codec::msgpack:
        out = nlohmann::json::from_msgpack(data.begin(), data.end(), true, false);
        break;
      default: return std::nullopt;
    }
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  if (out.is_discarded()) return std::nullopt;
  return out;
}

}  // namespace prevalent

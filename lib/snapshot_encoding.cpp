#include "prevalent/snapshot_encoding.hpp"

#include <stdexcept>

namespace prevalent::detail {

namespace {
void append_big_endian(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}
}  // namespace

void append_container_open(std::string& out, codec c, bool object, std::uint64_t n) {
  switch (c) {
    case codec::json: out += object ? '{' : '['; return;
    case codec::cbor: {
      // Major type 5 (map, 0xA0) or 4 (array, 0x80); nlohmann's write_cbor.
      const unsigned base = object ? 0xA0 : 0x80;
      if (n <= 0x17) {
        out += static_cast<char>(base + n);
      } else if (n <= 0xff) {
        out += static_cast<char>(base + 0x18);
        append_big_endian(out, n, 1);
      } else if (n <= 0xffff) {
        out += static_cast<char>(base + 0x19);
        append_big_endian(out, n, 2);
      } else if (n <= 0xffffffffu) {
        out += static_cast<char>(base + 0x1a);
        append_big_endian(out, n, 4);
      } else {
        out += static_cast<char>(base + 0x1b);
        append_big_endian(out, n, 8);
      }
      return;
    }
    case codec::msgpack: {
      // fixmap 0x80 / map16 0xDE / map32 0xDF; fixarray 0x90 / array16 0xDC / array32 0xDD.
      if (n <= 15) {
        out += static_cast<char>((object ? 0x80 : 0x90) | n);
      } else if (n <= 0xffff) {
        out += static_cast<char>(object ? 0xDE : 0xDC);
        append_big_endian(out, n, 2);
      } else if (n <= 0xffffffffu) {
        out += static_cast<char>(object ? 0xDF : 0xDD);
        append_big_endian(out, n, 4);
      } else {
        throw std::length_error("MessagePack cannot hold a container of " + std::to_string(n) +
                                " entries");
      }
      return;
    }
  }
  throw std::invalid_argument("unknown codec");
}

void append_container_close(std::string& out, codec c, bool object) {
  if (c == codec::json) out += object ? '}' : ']';
}

void append_entry(std::string& out, codec c, const nlohmann::json* key, const nlohmann::json& value,
                  bool first) {
  if (c == codec::json) {
    if (!first) out += ',';
    if (key) {
      out += key->dump();
      out += ':';
    }
    out += value.dump();
    return;
  }
  if (key) encode_to(out, *key, c);
  encode_to(out, value, c);
}

}  // namespace prevalent::detail

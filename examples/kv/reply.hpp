// RESP2 reply writer: appends Redis protocol replies to a byte string. Commands build their
// whole reply this way (a MULTI batch is the concatenation of its commands' replies).
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

namespace kv::reply {

inline void simple(std::string& out, std::string_view s) {
  out += '+';
  out += s;
  out += "\r\n";
}
// `message` starts with the error code ("ERR ...", "WRONGTYPE ..."); like Redis, newlines in
// it become spaces so the reply stays one line.
inline void error(std::string& out, std::string_view message) {
  out += '-';
  const std::size_t at = out.size();
  out += message;
  std::replace(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), '\r', ' ');
  std::replace(out.begin() + static_cast<std::ptrdiff_t>(at), out.end(), '\n', ' ');
  out += "\r\n";
}
inline void integer(std::string& out, long long v) {
  out += ':';
  out += std::to_string(v);
  out += "\r\n";
}
inline void bulk(std::string& out, std::string_view s) {
  out += '$';
  out += std::to_string(s.size());
  out += "\r\n";
  out += s;
  out += "\r\n";
}
inline void null_bulk(std::string& out) { out += "$-1\r\n"; }
inline void array(std::string& out, std::size_t n) {
  out += '*';
  out += std::to_string(n);
  out += "\r\n";
}
inline void null_array(std::string& out) { out += "*-1\r\n"; }
inline void ok(std::string& out) { out += "+OK\r\n"; }

inline std::string error_text(std::string_view message) {
  std::string out;
  error(out, message);
  return out;
}

// Redis's common error texts.
inline constexpr std::string_view wrong_type =
    "WRONGTYPE Operation against a key holding the wrong kind of value";
inline constexpr std::string_view not_integer = "ERR value is not an integer or out of range";
inline constexpr std::string_view not_float = "ERR value is not a valid float";
inline constexpr std::string_view syntax = "ERR syntax error";
inline constexpr std::string_view no_such_key = "ERR no such key";

}  // namespace kv::reply

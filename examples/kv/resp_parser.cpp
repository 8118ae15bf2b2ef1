#include "resp_parser.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#include "redis_number.hpp"

namespace kv {
namespace {

// Redis's isspace() in sdssplitargs (C locale).
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}
bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

// Redis looks for line ends with strchr(): a NUL byte before `c` hides it (the request then
// waits for more bytes, up to the inline limit, as it does in Redis).
std::size_t find_before_nul(std::string_view in, char c) {
  const std::size_t at = in.find(c);
  if (at == std::string_view::npos || std::memchr(in.data(), '\0', at) != nullptr)
    return std::string_view::npos;
  return at;
}

// Where the "\r" of a header line starting at `in[0]` is, if one more byte follows it (Redis
// skips that byte without looking at it). npos: not complete yet.
std::size_t header_end(std::string_view in) {
  const std::size_t cr = find_before_nul(in, '\r');
  if (cr == std::string_view::npos || cr + 2 > in.size()) return std::string_view::npos;
  return cr;
}

}  // namespace

bool split_inline_args(std::string_view line, std::vector<std::string>& out) {
  // sdssplitargs works on a C string: a NUL byte ends the line.
  if (const auto nul = line.find('\0'); nul != std::string_view::npos) line = line.substr(0, nul);
  std::size_t p = 0;
  const auto at = [&](std::size_t i) { return i < line.size() ? line[i] : '\0'; };
  out.clear();
  for (;;) {
    while (p < line.size() && is_space(line[p])) ++p;
    if (p >= line.size()) return true;
    bool in_double = false, in_single = false, done = false;
    std::string current;
    while (!done) {
      const char c = at(p);
      if (in_double) {
        if (c == '\\' && at(p + 1) == 'x' && is_hex(at(p + 2)) && is_hex(at(p + 3))) {
          current.push_back(static_cast<char>(hex_value(at(p + 2)) * 16 + hex_value(at(p + 3))));
          p += 3;
        } else if (c == '\\' && at(p + 1) != '\0') {
          ++p;
          switch (at(p)) {
            case 'n': current.push_back('\n'); break;
            case 'r': current.push_back('\r'); break;
            case 't': current.push_back('\t'); break;
            case 'b': current.push_back('\b'); break;
            case 'a': current.push_back('\a'); break;
            default: current.push_back(at(p)); break;
          }
        } else if (c == '"') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else if (in_single) {
        if (c == '\\' && at(p + 1) == '\'') {
          ++p;
          current.push_back('\'');
        } else if (c == '\'') {
          if (at(p + 1) != '\0' && !is_space(at(p + 1))) return false;
          done = true;
        } else if (c == '\0') {
          return false;
        } else {
          current.push_back(c);
        }
      } else {
        switch (c) {
          case ' ':
          case '\n':
          case '\r':
          case '\t':
          case '\0': done = true; break;
          case '"': in_double = true; break;
          case '\'': in_single = true; break;
          default: current.push_back(c); break;
        }
      }
      if (at(p) != '\0') ++p;
    }
    out.push_back(std::move(current));
  }
}

RequestParser::status RequestParser::fail(std::string message) {
  // Redis replaces newlines in error texts with spaces (addReplyErrorFormat).
  std::replace(message.begin(), message.end(), '\r', ' ');
  std::replace(message.begin(), message.end(), '\n', ' ');
  error_ = "Protocol error: " + std::move(message);
  return status::error;
}

RequestParser::status RequestParser::parse_inline(std::string_view in, std::size_t& consumed) {
  const std::size_t nl = find_before_nul(in, '\n');
  if (nl == std::string_view::npos) {
    if (in.size() > limits_.max_inline_bytes) return fail("too big inline request");
    return status::need_more;
  }
  std::string_view line = in.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!split_inline_args(line, args_)) return fail("unbalanced quotes in request");
  consumed += nl + 1;
  return args_.empty() ? status::need_more : status::request;
}

RequestParser::status RequestParser::parse(std::string_view in, std::size_t& consumed) {
  consumed = 0;
  if (!error_.empty()) return status::error;
  for (;;) {
    std::string_view rest = in.substr(consumed);
    if (!in_multibulk_) {
      if (rest.empty()) return status::need_more;
      if (rest[0] != '*') {
        const std::size_t before = consumed;
        const status s = parse_inline(rest, consumed);
        if (s == status::need_more && consumed > before) continue;  // a blank line: skipped
        return s;
      }
      const std::size_t cr = header_end(rest);
      if (cr == std::string_view::npos) {
        if (rest.size() > limits_.max_inline_bytes) return fail("too big mbulk count string");
        return status::need_more;
      }
      const auto n = parse_ll(rest.substr(1, cr - 1));
      if (!n || *n > INT_MAX || (*n > 0 && static_cast<std::size_t>(*n) > limits_.max_array_length))
        return fail("invalid multibulk length");
      if (*n > 10 && unauthenticated_) return fail("unauthenticated multibulk length");
      consumed += cr + 2;
      if (*n <= 0) continue;  // "*0" and "*-1" are skipped
      in_multibulk_ = true;
      elements_left_ = *n;
      bulk_left_ = -1;
      args_.clear();
      args_.reserve(static_cast<std::size_t>(std::min<long long>(*n, 1024)));
      continue;
    }
    if (bulk_left_ < 0) {  // a "$<len>" header next
      if (rest.empty()) return status::need_more;
      const std::size_t cr = header_end(rest);
      if (cr == std::string_view::npos) {
        if (rest.size() > limits_.max_inline_bytes) return fail("too big bulk count string");
        return status::need_more;
      }
      if (rest[0] != '$') return fail(std::string("expected '$', got '") + rest[0] + "'");
      const auto len = parse_ll(rest.substr(1, cr - 1));
      if (!len || *len < 0 || static_cast<unsigned long long>(*len) > limits_.max_bulk_bytes)
        return fail("invalid bulk length");
      if (*len > 16384 && unauthenticated_) return fail("unauthenticated bulk length");
      consumed += cr + 2;
      bulk_left_ = *len + 2;  // Redis skips the 2 bytes after the payload without checking them
      args_.emplace_back();
      // Reserve what has arrived or a bounded amount, so a header alone cannot allocate a lot.
      args_.back().reserve(static_cast<std::size_t>(std::min<long long>(*len, 1 << 20)));
      continue;
    }
    // Payload bytes of the current bulk, then its 2 terminator bytes.
    const std::size_t take =
        std::min<std::size_t>(rest.size(), static_cast<std::size_t>(bulk_left_));
    if (take == 0) return status::need_more;
    const long long payload_left = bulk_left_ - 2;
    if (payload_left > 0)
      args_.back().append(rest.data(),
                          std::min<std::size_t>(take, static_cast<std::size_t>(payload_left)));
    consumed += take;
    bulk_left_ -= static_cast<long long>(take);
    if (bulk_left_ > 0) return status::need_more;
    bulk_left_ = -1;
    if (--elements_left_ == 0) {
      in_multibulk_ = false;
      return status::request;
    }
  }
}

}  // namespace kv

#include "redis_number.hpp"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace kv {

std::optional<long long> parse_ll(std::string_view s) {
  if (s.empty() || s.size() >= 21) return std::nullopt;
  if (s == "0") return 0;
  std::size_t i = 0;
  bool negative = false;
  if (s[0] == '-') {
    negative = true;
    if (++i == s.size()) return std::nullopt;
  }
  if (s[i] < '1' || s[i] > '9') return std::nullopt;
  unsigned long long v = static_cast<unsigned long long>(s[i++] - '0');
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    const unsigned digit = static_cast<unsigned>(s[i] - '0');
    if (v > ULLONG_MAX / 10) return std::nullopt;
    v *= 10;
    if (v > ULLONG_MAX - digit) return std::nullopt;
    v += digit;
  }
  if (i < s.size()) return std::nullopt;
  if (negative) {
    if (v > static_cast<unsigned long long>(-(LLONG_MIN + 1)) + 1) return std::nullopt;
    return static_cast<long long>(0 - v);
  }
  if (v > static_cast<unsigned long long>(LLONG_MAX)) return std::nullopt;
  return static_cast<long long>(v);
}

std::optional<long double> parse_ld(std::string_view s) {
  constexpr std::size_t max_chars = 5 * 1024;  // MAX_LONG_DOUBLE_CHARS
  if (s.empty() || s.size() >= max_chars) return std::nullopt;
  char buf[max_chars];
  std::memcpy(buf, s.data(), s.size());
  buf[s.size()] = '\0';
  errno = 0;
  char* end = nullptr;
  const long double v = std::strtold(buf, &end);
  if (std::isspace(static_cast<unsigned char>(buf[0])) || end[0] != '\0' ||
      end != buf + s.size() ||  // a NUL byte inside: not a number
      (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || std::fpclassify(v) == FP_ZERO)) ||
      std::isnan(v))
    return std::nullopt;
  return v;
}

std::string format_ld(long double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[5 * 1024];
  int n = std::snprintf(buf, sizeof buf, "%.17Lf", v);
  if (n < 0 || static_cast<std::size_t>(n) >= sizeof buf) return "0";
  std::size_t len = static_cast<std::size_t>(n);
  if (std::memchr(buf, '.', len) != nullptr) {
    while (buf[len - 1] == '0') --len;
    if (buf[len - 1] == '.') --len;
  }
  if (len == 2 && buf[0] == '-' && buf[1] == '0') return "0";
  return std::string(buf, len);
}

}  // namespace kv

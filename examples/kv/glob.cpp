#include "glob.hpp"

#include <utility>

namespace kv {
namespace {

// A transcription of Redis 7.0's stringmatchlen_impl over indexes; bytes past the end read as
// NUL, as they do in Redis's NUL-terminated strings.
bool match(std::string_view pat, std::size_t p, std::string_view str, std::size_t s,
           bool& skip_longer, int nesting) {
  if (nesting > 1000) return false;
  const auto pc = [&](std::size_t i) { return i < pat.size() ? pat[i] : '\0'; };
  const auto sc = [&](std::size_t i) { return i < str.size() ? str[i] : '\0'; };
  while (p < pat.size() && s < str.size()) {
    switch (pat[p]) {
      case '*':
        while (p + 1 < pat.size() && pat[p + 1] == '*') ++p;
        if (p + 1 == pat.size()) return true;
        while (s < str.size()) {
          if (match(pat, p + 1, str, s, skip_longer, nesting + 1)) return true;
          if (skip_longer) return false;
          ++s;
        }
        skip_longer = true;
        return false;
      case '?': ++s; break;
      case '[': {
        ++p;
        const bool negate = pc(p) == '^';
        if (negate) ++p;
        bool matched = false;
        for (;;) {
          if (pc(p) == '\\' && pat.size() - p >= 2) {
            ++p;
            if (pc(p) == sc(s)) matched = true;
          } else if (pc(p) == ']') {
            break;
          } else if (p >= pat.size()) {
            --p;
            break;
          } else if (pat.size() - p >= 3 && pc(p + 1) == '-') {
            int start = static_cast<signed char>(pc(p)), end = static_cast<signed char>(pc(p + 2));
            const int c = static_cast<signed char>(sc(s));
            if (start > end) std::swap(start, end);
            p += 2;
            if (c >= start && c <= end) matched = true;
          } else if (pc(p) == sc(s)) {
            matched = true;
          }
          ++p;
        }
        if (negate) matched = !matched;
        if (!matched) return false;
        ++s;
        break;
      }
      case '\\':
        if (pat.size() - p >= 2) ++p;
        [[fallthrough]];
      default:
        if (pc(p) != sc(s)) return false;
        ++s;
        break;
    }
    ++p;
    if (s == str.size()) {
      while (pc(p) == '*') ++p;
      break;
    }
  }
  return p >= pat.size() && s == str.size();
}

}  // namespace

bool glob_match(std::string_view pattern, std::string_view text) {
  bool skip_longer = false;
  return match(pattern, 0, text, 0, skip_longer, 0);
}

}  // namespace kv

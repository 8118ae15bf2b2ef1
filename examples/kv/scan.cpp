#include "scan.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "command_table.hpp"
#include "glob.hpp"
#include "redis_number.hpp"
#include "reply.hpp"

namespace kv {

std::optional<std::string> parse_scan(const args& a, scan_request& r) {
  // Redis's parseScanCursorOrReply: strtoul, no leading space, nothing left over.
  const std::string& c = a[1];
  errno = 0;
  char* end = nullptr;
  r.cursor = std::strtoull(c.c_str(), &end, 10);
  if (c.empty() || std::isspace(static_cast<unsigned char>(c[0])) || *end != '\0' ||
      errno == ERANGE)
    return std::string("ERR invalid cursor");
  for (std::size_t i = 2; i < a.size();) {
    const bool has_value = a.size() - i >= 2;
    if (iequals(a[i], "count") && has_value) {
      const auto n = parse_ll(a[i + 1]);
      if (!n) return std::string(reply::not_integer);
      if (*n < 1) return std::string(reply::syntax);
      r.count = static_cast<std::size_t>(*n);
    } else if (iequals(a[i], "match") && has_value) {
      r.match = a[i + 1];
      if (*r.match == "*") r.match.reset();
    } else if (iequals(a[i], "type") && has_value) {
      r.type = a[i + 1];
    } else {
      return std::string(reply::syntax);
    }
    i += 2;
  }
  return std::nullopt;
}

scan_page scan(const KvState& s, const scan_request& r, long long now) {
  scan_page page;
  auto it = s.keys().lower_bound(key_probe{r.cursor, {}});
  std::size_t examined = 0;
  std::uint64_t last_hash = 0;
  for (; it != s.keys().end(); ++it) {
    const auto& [slot, e] = *it;
    if (examined >= r.count && slot.hash != last_hash) break;
    last_hash = slot.hash;
    ++examined;
    if (e.expire_at != no_expiry && e.expire_at <= now) continue;
    if (r.match && !glob_match(*r.match, slot.name)) continue;
    if (r.type && !iequals(*r.type, e.is_string() ? "string" : "hash")) continue;
    page.keys.push_back(slot.name);
  }
  page.next_cursor = it == s.keys().end() ? 0 : it->first.hash;
  return page;
}

}  // namespace kv

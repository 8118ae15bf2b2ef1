// SCAN over the keyspace (kept in key order): a page of keys after a resume point, filtered by
// MATCH and TYPE. The cursor numbers a client sees map to resume keys per connection
// (connection.cpp), so every key present for a whole iteration is returned exactly once.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kv_commands.hpp"

namespace kv {

struct scan_request {
  unsigned long long cursor = 0;
  std::size_t count = 10;
  std::optional<std::string> match, type;
};
struct scan_page {
  std::vector<std::string> keys;
  std::string last;   // the last key examined: where the next page starts after
  bool done = false;  // no key after `last`
};

// SCAN's arguments (argv[1] cursor, then MATCH/COUNT/TYPE); an error text as Redis gives it.
std::optional<std::string> parse_scan(const args& a, scan_request& r);
// Examines up to r.count keys after `*after` (from the start if null).
scan_page scan(const KvState& s, const scan_request& r, const std::string* after, long long now);

}  // namespace kv

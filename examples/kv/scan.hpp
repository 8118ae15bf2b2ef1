// SCAN over the keyspace, which is kept in (hash, key) order: a cursor is the hash to resume
// from (0: the start; a reply's cursor 0: the end), so cursors need no server state, work on
// any connection and inside MULTI, and every key present for a whole iteration is returned
// exactly once (a page never ends inside a group of equal hashes).
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
  unsigned long long next_cursor = 0;  // 0: the iteration is complete
};

// SCAN's arguments (argv[1] cursor, then MATCH/COUNT/TYPE); an error text as Redis gives it.
std::optional<std::string> parse_scan(const args& a, scan_request& r);
// Examines about r.count keys from r.cursor on.
scan_page scan(const KvState& s, const scan_request& r, long long now);

}  // namespace kv

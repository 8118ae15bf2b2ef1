// Redis's glob-style pattern matching (stringmatchlen, case-sensitive) for KEYS and SCAN MATCH:
// *, ?, [abc], [^a-z], and \ to escape.
#pragma once

#include <string_view>

namespace kv {
bool glob_match(std::string_view pattern, std::string_view text);
}

// A journal timestamp as users read it, for error messages and the `prevalent` tool: one
// formatting shared by both, so a time in a library error matches the tool's output.
#pragma once

#include <cstdint>
#include <string>

namespace prevalent::detail {

// ISO 8601 UTC with nanoseconds: 2026-11-23T01:00:00.000000000Z (`ns` since the Unix epoch).
std::string iso_time(std::int64_t ns);

}  // namespace prevalent::detail

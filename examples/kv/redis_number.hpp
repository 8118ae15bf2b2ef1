// Number parsing and formatting exactly as Redis 7.0 does it (util.c): what counts as an
// integer or a float in a request, and how a float reply is written. Differences here show up
// as different replies, so these mirror string2ll, string2ld and ld2string(LD_STR_HUMAN).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kv {

// Redis's string2ll: optional '-', no '+', no leading zeros or spaces, at most 20 characters,
// in range of long long. "-0" is not an integer.
std::optional<long long> parse_ll(std::string_view s);

// Redis's string2ld: strtold on the bytes, no leading space, nothing left over (a NUL byte
// inside makes it no number), no NaN, no overflow to infinity.
std::optional<long double> parse_ld(std::string_view s);

// Redis's ld2string in human mode: "%.17Lf" without trailing zeros, "inf"/"-inf", "-0" as "0".
std::string format_ld(long double v);

inline std::string format_ll(long long v) { return std::to_string(v); }

}  // namespace kv

// The state of the scale benchmark (issue 9): a session store like examples/sessions, token
// hash (64 hex digits) -> a session whose JSON is ~100 bytes, in one big map whose type is the
// alias `session_map`. It is prevalent::cow_map where the library has it (unless built with
// -DSCALE_STD_MAP), std::map otherwise, so one source measures both.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <prevalent/prevalent.hpp>

#if __has_include(<prevalent/cow_map.hpp>) && !defined(SCALE_STD_MAP)
#include <prevalent/cow_map.hpp>
#define SCALE_COW_MAP 1
#endif

namespace scale {

struct Session {
  std::string user;
  std::int64_t created_ns = 0;
  std::int64_t expires_ns = 0;
  std::int64_t ttl_seconds = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Session, user, created_ns, expires_ns, ttl_seconds)
};

#ifdef SCALE_COW_MAP
using session_map = prevalent::cow_map<std::string, Session>;
inline constexpr std::string_view session_map_name = "prevalent::cow_map";
#else
using session_map = std::map<std::string, Session>;
inline constexpr std::string_view session_map_name = "std::map";
#endif

struct State {
  session_map by_hash;  // keyed by the token's SHA-256 in hex
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, by_hash)
};

inline constexpr std::int64_t ttl_seconds = 30 * 24 * 3600;  // no session expires in a run

struct CreateSession {
  static constexpr std::string_view name = "create_session";
  std::string user;
  std::int64_t ttl_seconds = 0;
  std::string token_hash;
  void apply(State& s, const prevalent::Context& ctx) const {
    const std::int64_t now = ctx.timestamp_ns();
    s.by_hash[token_hash] = Session{user, now, now + ttl_seconds * 1'000'000'000, ttl_seconds};
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(CreateSession, user, ttl_seconds, token_hash)
};

// Extends a session; the writer loop of the snapshot measurement runs it on existing sessions,
// so the state changes while a snapshot is written.
struct TouchSession {
  static constexpr std::string_view name = "touch_session";
  std::string token_hash;
  std::int64_t apply(State& s, const prevalent::Context& ctx) const {
    auto it = s.by_hash.find(token_hash);
    if (it == s.by_hash.end()) return 0;
    Session updated = it->second;
    updated.expires_ns = ctx.timestamp_ns() + updated.ttl_seconds * 1'000'000'000;
    s.by_hash[token_hash] = updated;
    return updated.expires_ns;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(TouchSession, token_hash)
};

using Store = prevalent::Store<State, CreateSession, TouchSession>;

// Session i's token hash: 64 hex digits of splitmix64, spread like real SHA-256 digests (keys
// that share long prefixes would flatter both the map and the peer's RDB compression).
inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline std::string token_hash(std::uint64_t i) {
  char hex[65];
  for (std::uint64_t k = 0; k < 4; ++k)
    std::snprintf(hex + 16 * k, 17, "%016llx",
                  static_cast<unsigned long long>(splitmix64(i * 4 + k)));
  return std::string(hex, 64);
}

inline std::string user_of(std::uint64_t i) {
  char user[16];
  std::snprintf(user, sizeof user, "user%07llu", static_cast<unsigned long long>(i % 200'000));
  return user;
}

inline CreateSession create_command(std::uint64_t i) {
  return CreateSession{user_of(i), ttl_seconds, token_hash(i)};
}

}  // namespace scale

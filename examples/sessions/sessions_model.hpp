// The sessions example's model: a token store with expiry. State and commands only; the
// command-line front end is sessions.cpp. The benchmark (bench/bench.cpp) reuses this model.
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <prevalent/prevalent.hpp>

namespace sessions {

struct Session {
  std::string token;
  std::string user;
  std::int64_t created_ns = 0;
  std::int64_t expires_ns = 0;
  std::int64_t ttl_seconds = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Session, token, user, created_ns, expires_ns, ttl_seconds)
};

struct State {
  std::map<std::string, Session> by_token;

  std::vector<Session> of_user(const std::string& user) const {
    std::vector<Session> out;
    for (const auto& [_, s] : by_token)
      if (s.user == user) out.push_back(s);
    return out;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, by_token)
};

inline std::int64_t ns(std::int64_t seconds) { return seconds * 1'000'000'000; }

// A fresh random token. Randomness is drawn by the caller, outside the command, so that the
// command itself stays deterministic and replays to the same token.
inline std::string new_token() {
  static thread_local std::mt19937_64 gen{std::random_device{}()};
  static const char* digits = "0123456789abcdef";
  std::string t;
  for (int i = 0; i < 32; ++i) t += digits[gen() % 16];
  return t;
}

struct CreateSession {
  static constexpr std::string_view name = "create_session";
  std::string user;
  std::int64_t ttl_seconds = 0;
  std::string token;

  void validate(const State& s, const prevalent::Context&) const {
    if (user.empty()) throw std::invalid_argument("user must not be empty");
    if (ttl_seconds <= 0) throw std::invalid_argument("ttl must be positive");
    if (token.size() < 16) throw std::invalid_argument("token too short");
    if (s.by_token.count(token)) throw std::invalid_argument("token already in use");
  }
  std::string apply(State& s, const prevalent::Context& ctx) const {
    const std::int64_t now = ctx.timestamp_ns();
    s.by_token[token] = Session{token, user, now, now + ns(ttl_seconds), ttl_seconds};
    return token;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(CreateSession, user, ttl_seconds, token)
};

// Extends a live session by its time to live; returns the new expiry (ns since epoch).
struct TouchSession {
  static constexpr std::string_view name = "touch_session";
  std::string token;

  void validate(const State& s, const prevalent::Context& ctx) const {
    auto it = s.by_token.find(token);
    if (it == s.by_token.end() || it->second.expires_ns <= ctx.timestamp_ns())
      throw std::invalid_argument("no live session with this token");
  }
  std::int64_t apply(State& s, const prevalent::Context& ctx) const {
    Session& session = s.by_token.at(token);
    session.expires_ns = ctx.timestamp_ns() + ns(session.ttl_seconds);
    return session.expires_ns;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(TouchSession, token)
};

// Removes a session; returns whether it existed.
struct RevokeSession {
  static constexpr std::string_view name = "revoke_session";
  std::string token;

  bool apply(State& s, const prevalent::Context&) const { return s.by_token.erase(token) > 0; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(RevokeSession, token)
};

// Removes every session whose expiry has passed at the command's own timestamp.
struct ExpireSessions {
  static constexpr std::string_view name = "expire_sessions";

  std::size_t apply(State& s, const prevalent::Context& ctx) const {
    return std::erase_if(
        s.by_token, [&](const auto& kv) { return kv.second.expires_ns <= ctx.timestamp_ns(); });
  }
  friend void to_json(nlohmann::json& j, const ExpireSessions&) { j = nlohmann::json::object(); }
  friend void from_json(const nlohmann::json&, ExpireSessions&) {}
};

using Store = prevalent::Store<State, CreateSession, TouchSession, RevokeSession, ExpireSessions>;

}  // namespace sessions

// The sessions example's model: a token store with expiry. State and commands only; the
// command-line front end is sessions.cpp. The benchmark (bench/bench.cpp) and
// test/sessions_test.cpp reuse this model.
//
// Bearer tokens never reach the store: the caller draws a token from the OS's cryptographic
// source (libsodium's randombytes_buf), hands it to the user once, and the commands carry only
// its SHA-256. The journal, the snapshots and every backup of them hold hashes, from which no
// token can be recovered; a presented token is hashed and looked up.
#pragma once

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>
#include <prevalent/cow_map.hpp>
#include <prevalent/prevalent.hpp>

namespace sessions {

inline void init_sodium() {
  if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
}

inline std::string to_hex(const unsigned char* bytes, std::size_t n) {
  std::string hex(2 * n + 1, '\0');
  sodium_bin2hex(hex.data(), hex.size(), bytes, n);
  hex.pop_back();
  return hex;
}

// Bits of randomness in a token.
inline constexpr std::size_t token_bytes = 32;

// A fresh bearer token: 256 bits from the OS's CSPRNG (getrandom(2) under libsodium), as 64
// hex digits. Drawn by the caller, outside the command, which only ever sees its hash.
inline std::string new_token() {
  init_sodium();
  std::array<unsigned char, token_bytes> raw{};
  randombytes_buf(raw.data(), raw.size());
  std::string token = to_hex(raw.data(), raw.size());
  sodium_memzero(raw.data(), raw.size());
  return token;
}

// What the store keeps instead of a token: SHA-256 of the token's text, 64 hex digits. An
// unkeyed hash is enough: a token has 256 random bits, so nobody can find one by trying
// candidates against the hash (a keyed hash matters for low-entropy secrets such as passwords).
inline std::string hash_token(std::string_view token) {
  init_sodium();
  std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};
  crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(token.data()),
                     token.size());
  return to_hex(digest.data(), digest.size());
}

// The short id `list` shows for a session: the first 12 hex digits of its hash (also
// `printf %s TOKEN | sha256sum | cut -c1-12`). It identifies a session, it does not open it.
inline std::string short_id(std::string_view hash) { return std::string(hash.substr(0, 12)); }

inline bool is_hash(std::string_view h) {
  return h.size() == 2 * crypto_hash_sha256_BYTES && std::all_of(h.begin(), h.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Version 1 of create, touch and revoke carried the token itself as "token"; version 2 carries
// "token_hash". Old journals are read by hashing the token as the record is decoded (it stays
// in the old file until a snapshot lets the store delete that segment).
inline void upgrade_token_to_hash(nlohmann::json& args, int from_version) {
  if (from_version < 2 && args.contains("token")) {
    args["token_hash"] = hash_token(args.at("token").get<std::string>());
    args.erase("token");
  }
}

struct Session {
  std::string token_hash;
  std::string user;
  std::int64_t created_ns = 0;
  std::int64_t expires_ns = 0;
  std::int64_t ttl_seconds = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Session, token_hash, user, created_ns, expires_ns, ttl_seconds)
};

struct State {
  // Keyed by the token's hash. A cow_map: a snapshot's capture shares its leaves instead of
  // copying a million sessions, and writers copy only the leaves they touch meanwhile.
  prevalent::cow_map<std::string, Session> by_hash;

  std::vector<Session> of_user(const std::string& user) const {
    std::vector<Session> out;
    for (const auto& [_, s] : by_hash)
      if (s.user == user) out.push_back(s);
    return out;
  }
  const Session* find_token(std::string_view token) const {
    auto it = by_hash.find(hash_token(token));
    return it == by_hash.end() ? nullptr : &it->second;
  }

  friend void to_json(nlohmann::json& j, const State& s) { j = {{"by_hash", s.by_hash}}; }
  // Snapshots written before tokens were hashed hold "by_token": token -> {token, ...}. They
  // load with each token replaced by its hash.
  friend void from_json(const nlohmann::json& j, State& s) {
    s.by_hash.clear();
    if (j.contains("by_hash")) {
      j.at("by_hash").get_to(s.by_hash);
      return;
    }
    for (const auto& [token, v] : j.at("by_token").items()) {
      Session session{hash_token(token), v.at("user").get<std::string>(),
                      v.at("created_ns").get<std::int64_t>(),
                      v.at("expires_ns").get<std::int64_t>(),
                      v.at("ttl_seconds").get<std::int64_t>()};
      s.by_hash.emplace(session.token_hash, session);
    }
  }
};

inline std::int64_t ns(std::int64_t seconds) { return seconds * 1'000'000'000; }

// Creates a session for the token whose hash is token_hash; returns that hash.
struct CreateSession {
  static constexpr std::string_view name = "create_session";
  static constexpr int version = 2;  // 1 carried the token itself
  std::string user;
  std::int64_t ttl_seconds = 0;
  std::string token_hash;

  static void upgrade(nlohmann::json& args, int from) { upgrade_token_to_hash(args, from); }
  void validate(const State& s, const prevalent::Context&) const {
    if (user.empty()) throw std::invalid_argument("user must not be empty");
    if (ttl_seconds <= 0) throw std::invalid_argument("ttl must be positive");
    if (!is_hash(token_hash)) throw std::invalid_argument("token_hash is not a SHA-256 in hex");
    if (s.by_hash.count(token_hash)) throw std::invalid_argument("token already in use");
  }
  std::string apply(State& s, const prevalent::Context& ctx) const {
    const std::int64_t now = ctx.timestamp_ns();
    s.by_hash[token_hash] = Session{token_hash, user, now, now + ns(ttl_seconds), ttl_seconds};
    return token_hash;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(CreateSession, user, ttl_seconds, token_hash)
};

// Extends a live session by its time to live; returns the new expiry (ns since epoch).
struct TouchSession {
  static constexpr std::string_view name = "touch_session";
  static constexpr int version = 2;  // 1 carried the token itself
  std::string token_hash;

  static void upgrade(nlohmann::json& args, int from) { upgrade_token_to_hash(args, from); }
  void validate(const State& s, const prevalent::Context& ctx) const {
    auto it = s.by_hash.find(token_hash);
    if (it == s.by_hash.end() || it->second.expires_ns <= ctx.timestamp_ns())
      throw std::invalid_argument("no live session with this token");
  }
  std::int64_t apply(State& s, const prevalent::Context& ctx) const {
    Session* found = s.by_hash.find_mutable(token_hash);
    if (found == nullptr) throw std::invalid_argument("no live session with this token");
    Session& session = *found;
    session.expires_ns = ctx.timestamp_ns() + ns(session.ttl_seconds);
    return session.expires_ns;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(TouchSession, token_hash)
};

// Removes a session; returns whether it existed.
struct RevokeSession {
  static constexpr std::string_view name = "revoke_session";
  static constexpr int version = 2;  // 1 carried the token itself
  std::string token_hash;

  static void upgrade(nlohmann::json& args, int from) { upgrade_token_to_hash(args, from); }
  bool apply(State& s, const prevalent::Context&) const { return s.by_hash.erase(token_hash) > 0; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(RevokeSession, token_hash)
};

// Removes every session whose expiry has passed at the command's own timestamp.
struct ExpireSessions {
  static constexpr std::string_view name = "expire_sessions";

  std::size_t apply(State& s, const prevalent::Context& ctx) const {
    return erase_if(s.by_hash,
                    [&](const auto& kv) { return kv.second.expires_ns <= ctx.timestamp_ns(); });
  }
  friend void to_json(nlohmann::json& j, const ExpireSessions&) { j = nlohmann::json::object(); }
  friend void from_json(const nlohmann::json&, ExpireSessions&) {}
};

using Store = prevalent::Store<State, CreateSession, TouchSession, RevokeSession, ExpireSessions>;

}  // namespace sessions

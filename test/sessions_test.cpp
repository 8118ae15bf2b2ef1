// The sessions example's token handling (issue 12, part 2): no bearer token reaches any file of
// the store, lookups go through the token's hash, tokens are 256 random bits from the OS's
// CSPRNG, and stores written before tokens were hashed still open.
#include <doctest/doctest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sessions_model.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace {

std::vector<unsigned char> from_hex(const std::string& hex) {
  std::vector<unsigned char> out(hex.size() / 2);
  std::size_t len = 0;
  REQUIRE(sodium_hex2bin(out.data(), out.size(), hex.data(), hex.size(), nullptr, &len, nullptr) ==
          0);
  REQUIRE(len == out.size());
  return out;
}

bool contains(const std::vector<std::uint8_t>& hay, const void* needle, std::size_t n) {
  auto* p = static_cast<const std::uint8_t*>(needle);
  return std::search(hay.begin(), hay.end(), p, p + n) != hay.end();
}

// Every byte of every file in `dir`, file by file.
std::vector<std::pair<fs::path, std::vector<std::uint8_t>>> all_files(const fs::path& dir) {
  std::vector<std::pair<fs::path, std::vector<std::uint8_t>>> out;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) out.emplace_back(e.path(), test::read_file(e.path()));
  return out;
}

// Checks that no token of `tokens` (as its hex text, or its raw 32 bytes) is in any file of
// `dir`, and that each hash of `hashes` is in at least one.
void check_no_tokens_at_rest(const fs::path& dir, const std::vector<std::string>& tokens,
                             const std::vector<std::string>& hashes) {
  auto files = all_files(dir);
  REQUIRE(files.size() >= 2);  // a journal segment and a snapshot at least
  for (const auto& token : tokens) {
    auto raw = from_hex(token);
    for (const auto& [path, bytes] : files) {
      INFO(path.string(), " token ", token);
      CHECK_FALSE(contains(bytes, token.data(), token.size()));
      CHECK_FALSE(contains(bytes, raw.data(), raw.size()));
    }
  }
  for (const auto& hash : hashes) {
    INFO("hash ", hash);
    CHECK(std::any_of(files.begin(), files.end(),
                      [&](const auto& f) { return contains(f.second, hash.data(), hash.size()); }));
  }
}

std::string run_cli_with(const std::string& command, const std::string& args) {
  std::string out;
  FILE* p = ::popen((command + " " + args + " 2>&1").c_str(), "r");
  REQUIRE(p != nullptr);
  char buf[256];
  while (std::fgets(buf, sizeof buf, p) != nullptr) out += buf;
  int status = ::pclose(p);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out = "exit failure: " + out;
  return out;
}

std::string run_cli(const std::string& args) {
  const char* exe = std::getenv("SESSIONS_EXE");
  REQUIRE_MESSAGE(exe != nullptr, "SESSIONS_EXE not set (meson sets it)");
  return run_cli_with(exe, args);
}

// run_cli with environment assignments ("NAME=value ") before the executable.
std::string run_cli_env(const std::string& env, const std::string& args) {
  const char* exe = std::getenv("SESSIONS_EXE");
  REQUIRE_MESSAGE(exe != nullptr, "SESSIONS_EXE not set (meson sets it)");
  return run_cli_with("env " + env + exe, args);
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// MT19937-64 output inverted back to the state word it came from (undoes the tempering).
std::uint64_t untemper(std::uint64_t y) {
  y ^= y >> 43;
  y ^= (y << 37) & 0xFFF7EEE000000000ULL;
  std::uint64_t x = y;
  for (int i = 0; i < 4; ++i) x = y ^ ((x << 17) & 0x71D67FFFEDA60000ULL);
  y = x;
  for (int i = 0; i < 3; ++i) x = y ^ ((x >> 29) & 0x5555555555555555ULL);
  return x;
}

// Given 312 consecutive outputs of a std::mt19937_64, the output that follows them.
std::uint64_t predict_mt_next(const std::vector<std::uint64_t>& outputs) {
  REQUIRE(outputs.size() == 312);
  std::stringstream state;
  for (auto o : outputs) state << untemper(o) << ' ';
  state << 312;  // libstdc++'s textual state: the 312 words, then the position
  std::mt19937_64 clone;
  state >> clone;
  return clone();
}

std::vector<std::uint64_t> words_of(const std::string& token) {
  auto raw = from_hex(token);
  std::vector<std::uint64_t> out(raw.size() / 8);
  std::memcpy(out.data(), raw.data(), out.size() * 8);
  return out;
}

// The token store as it was before tokens were hashed: version-1 commands carrying the token,
// state keyed by the token. Same names as today's commands, so today's store reads the files.
struct OldSession {
  std::string token, user;
  std::int64_t created_ns = 0, expires_ns = 0, ttl_seconds = 0;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(OldSession, token, user, created_ns, expires_ns, ttl_seconds)
};
struct OldState {
  std::map<std::string, OldSession> by_token;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(OldState, by_token)
};
struct OldCreate {
  static constexpr std::string_view name = "create_session";
  std::string user;
  std::int64_t ttl_seconds = 0;
  std::string token;
  void apply(OldState& s, const prevalent::Context& ctx) const {
    auto now = ctx.timestamp_ns();
    s.by_token[token] = {token, user, now, now + sessions::ns(ttl_seconds), ttl_seconds};
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(OldCreate, user, ttl_seconds, token)
};
struct OldTouch {
  static constexpr std::string_view name = "touch_session";
  std::string token;
  void apply(OldState& s, const prevalent::Context& ctx) const {
    auto& session = s.by_token.at(token);
    session.expires_ns = ctx.timestamp_ns() + sessions::ns(session.ttl_seconds);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(OldTouch, token)
};
struct OldRevoke {
  static constexpr std::string_view name = "revoke_session";
  std::string token;
  void apply(OldState& s, const prevalent::Context&) const { s.by_token.erase(token); }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(OldRevoke, token)
};
struct OldExpire {
  static constexpr std::string_view name = "expire_sessions";
  void apply(OldState&, const prevalent::Context&) const {}
};
using OldStore = prevalent::Store<OldState, OldCreate, OldTouch, OldRevoke, OldExpire>;

}  // namespace

TEST_CASE("sessions: no token in any file of the store, only its hash") {
  for (auto codec : {prevalent::codec::json, prevalent::codec::cbor}) {
    CAPTURE(prevalent::codec_name(codec));
    test::temp_dir dir;
    std::vector<std::string> tokens, live_hashes;
    {
      prevalent::store_options o;
      o.codec = codec;
      o.segment_bytes = 4096;  // several segments
      sessions::Store store(dir.path(), o);
      for (int i = 0; i < 40; ++i) {
        tokens.push_back(sessions::new_token());
        auto hash = store.execute(sessions::CreateSession{"user" + std::to_string(i % 3), 3600,
                                                          sessions::hash_token(tokens.back())});
        CHECK(hash == sessions::hash_token(tokens.back()));
        if (i == 20) store.snapshot();
      }
      for (int i = 0; i < 40; i += 2)
        store.execute(sessions::TouchSession{sessions::hash_token(tokens[i])});
      for (int i = 0; i < 40; i += 5)
        CHECK(store.execute(sessions::RevokeSession{sessions::hash_token(tokens[i])}));
      store.snapshot();
      for (int i = 0; i < 40; ++i)
        if (i % 5 != 0) live_hashes.push_back(sessions::hash_token(tokens[i]));
      CHECK(store.query([](const sessions::State& s) { return s.by_hash.size(); }) == 32);
    }
    // Positive control of the search: the hashes (in the journal and the snapshot) are found.
    check_no_tokens_at_rest(dir.path(), tokens, live_hashes);

    sessions::Store reopened(dir.path());
    reopened.query([&](const sessions::State& s) {
      for (int i = 0; i < 40; ++i) CHECK((s.find_token(tokens[i]) != nullptr) == (i % 5 != 0));
    });
  }
}

TEST_CASE("sessions: touch and revoke by token; a wrong token is refused") {
  sessions::Store store(prevalent::in_memory);
  const std::string token = sessions::new_token();
  store.execute(sessions::CreateSession{"alice", 60, sessions::hash_token(token)});

  // The hash of a token is not the token: presenting the stored hash opens nothing.
  const std::string hash = sessions::hash_token(token);
  for (const std::string& wrong :
       {sessions::new_token(), hash, token.substr(0, 63) + "x", std::string(), token + "0"}) {
    CAPTURE(wrong);
    CHECK_THROWS_AS(store.execute(sessions::TouchSession{sessions::hash_token(wrong)}),
                    std::invalid_argument);
    CHECK_FALSE(store.execute(sessions::RevokeSession{sessions::hash_token(wrong)}));
  }
  CHECK(store.execute(sessions::TouchSession{sessions::hash_token(token)}) > 0);
  CHECK(store.execute(sessions::RevokeSession{sessions::hash_token(token)}));
  CHECK_THROWS_AS(store.execute(sessions::TouchSession{sessions::hash_token(token)}),
                  std::invalid_argument);

  // A create must carry a hash, not something else (a token would be 64 hex digits too, but
  // the CLI and the tests only ever pass hash_token's output; a short string is refused).
  CHECK_THROWS_AS(store.execute(sessions::CreateSession{"bob", 60, "abc"}), std::invalid_argument);
  CHECK_THROWS_AS(store.execute(sessions::CreateSession{"bob", 60, std::string(64, 'G')}),
                  std::invalid_argument);
}

TEST_CASE("sessions: tokens are 256 random bits, unique, not a Mersenne Twister") {
  std::set<std::string> seen;
  std::size_t ones = 0;
  const int draws = 10'000;
  std::vector<std::uint64_t> words;
  for (int i = 0; i < draws; ++i) {
    std::string t = sessions::new_token();
    REQUIRE(t.size() == 64);
    auto raw = from_hex(t);
    REQUIRE(raw.size() == 32);
    for (unsigned char b : raw) ones += static_cast<std::size_t>(__builtin_popcount(b));
    seen.insert(t);
    if (words.size() < 316)
      for (auto w : words_of(t)) words.push_back(w);
  }
  CHECK(seen.size() == static_cast<std::size_t>(draws));
  // Every one of the 256 bits varies: a token with fewer random bits (say 128 bits padded)
  // would be far from half ones. 2,560,000 bits; one standard deviation is 0.03%.
  const double fraction = static_cast<double>(ones) / (draws * 256.0);
  CHECK(fraction > 0.49);
  CHECK(fraction < 0.51);

  // A Mersenne Twister's next output follows from 312 consecutive ones. Control first: the
  // predictor does predict std::mt19937_64.
  std::mt19937_64 mt{std::random_device{}()};
  mt.discard(1000);
  std::vector<std::uint64_t> mt_out(312);
  for (auto& o : mt_out) o = mt();
  CHECK(predict_mt_next(mt_out) == mt());
  // Tokens: 312 consecutive 64-bit words do not predict the next.
  std::vector<std::uint64_t> first(words.begin(), words.begin() + 312);
  CHECK(predict_mt_next(first) != words[312]);

  // Two processes started at the same moment draw different tokens.
  int fds[2][2];
  pid_t pids[2];
  for (int k = 0; k < 2; ++k) {
    REQUIRE(::pipe(fds[k]) == 0);
    pids[k] = ::fork();
    REQUIRE(pids[k] >= 0);
    if (pids[k] == 0) {
      std::string t = sessions::new_token();
      ssize_t n = ::write(fds[k][1], t.data(), t.size());
      ::_exit(n == static_cast<ssize_t>(t.size()) ? 0 : 1);
    }
    ::close(fds[k][1]);
  }
  std::string got[2];
  for (int k = 0; k < 2; ++k) {
    char buf[128];
    ssize_t n;
    while ((n = ::read(fds[k][0], buf, sizeof buf)) > 0) got[k].append(buf, static_cast<size_t>(n));
    ::close(fds[k][0]);
    int status = 0;
    ::waitpid(pids[k], &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  CHECK(got[0].size() == 64);
  CHECK(got[1].size() == 64);
  CHECK(got[0] != got[1]);
}

TEST_CASE("sessions CLI: prints the token once, stores only its hash, lists an id") {
  test::temp_dir dir;
  const std::string d = (dir / "store").string();
  std::string token_a = trimmed(run_cli(d + " create alice 3600"));
  std::string token_b = trimmed(run_cli(d + " create alice 3600"));
  REQUIRE(token_a.size() == 64);
  REQUIRE(token_b.size() == 64);
  CHECK(token_a != token_b);

  std::string listed = run_cli(d + " list alice");
  CHECK(listed.find("id " + sessions::short_id(sessions::hash_token(token_a))) !=
        std::string::npos);
  CHECK(listed.find(token_a) == std::string::npos);
  CHECK(listed.find("2 session(s) for alice") != std::string::npos);

  CHECK(run_cli(d + " touch " + token_a).rfind("expires ", 0) == 0);
  CHECK(run_cli(d + " touch " + sessions::new_token()).find("no live session") !=
        std::string::npos);
  CHECK(trimmed(run_cli(d + " revoke " + sessions::hash_token(token_b))) == "no such session");
  CHECK(trimmed(run_cli(d + " revoke " + token_b)) == "revoked");
  CHECK(run_cli(d + " snapshot").rfind("snapshot taken", 0) == 0);
  CHECK(run_cli(d + " list alice").find("1 session(s) for alice") != std::string::npos);

  check_no_tokens_at_rest(d, {token_a, token_b}, {sessions::hash_token(token_a)});
}

TEST_CASE("sessions: a store written with plaintext tokens (version 1) opens, tokens hashed") {
  for (bool with_snapshot : {false, true}) {
    CAPTURE(with_snapshot);
    test::temp_dir dir;
    const std::string t1 = "ea3d614fa7362e4518b88c24523fccbf";  // v1 tokens: 32 hex digits
    const std::string t2 = "0123456789abcdef0123456789abcdef";
    const std::string t3 = "fedcba9876543210fedcba9876543210";
    std::int64_t t1_expiry = 0;
    {
      OldStore old(dir.path());
      old.execute(OldCreate{"alice", 3600, t1});
      old.execute(OldCreate{"alice", 3600, t2});
      old.execute(OldTouch{t1});
      old.execute(OldRevoke{t2});
      if (with_snapshot) old.snapshot();
      old.execute(OldCreate{"bob", 600, t3});
      t1_expiry = old.query([&](const OldState& s) { return s.by_token.at(t1).expires_ns; });
    }
    // The v1 records really are there (otherwise this test proves nothing).
    bool v1_seen = false;
    for (const auto& [path, bytes] : all_files(dir.path())) {
      const std::string v1 = "\"cmd\":\"create_session\",\"v\":1";
      v1_seen = v1_seen || contains(bytes, v1.data(), v1.size());
    }
    CHECK(v1_seen);

    sessions::Store store(dir.path());
    store.query([&](const sessions::State& s) {
      CHECK(s.by_hash.size() == 2);
      const sessions::Session* a = s.find_token(t1);
      REQUIRE(a != nullptr);
      CHECK(a->user == "alice");
      CHECK(a->token_hash == sessions::hash_token(t1));
      CHECK(a->expires_ns == t1_expiry);
      CHECK(s.find_token(t2) == nullptr);
      REQUIRE(s.find_token(t3) != nullptr);
      CHECK(s.find_token(t3)->user == "bob");
    });
    CHECK(store.execute(sessions::TouchSession{sessions::hash_token(t3)}) > 0);
    CHECK(store.execute(sessions::RevokeSession{sessions::hash_token(t1)}));
  }
}

TEST_CASE("sessions CLI with SESSIONS_KEY_FILE: an encrypted store, unreadable without the key") {
  test::temp_dir tmp;
  const std::string d = (tmp / "store").string();
  const std::string key_file = (tmp / "key").string();
  {
    std::ofstream k(key_file);
    k << std::string(64, '7') << "\n";
  }
  const std::string with_key = "SESSIONS_KEY_FILE=" + key_file + " ";
  // run_cli prefixes the executable: set the variable through env(1).
  auto run_keyed = [&](const std::string& args) { return run_cli_env(with_key, args); };
  const std::string token = trimmed(run_keyed(d + " create mallory-hunter 3600"));
  REQUIRE(token.size() == 64);
  CHECK(run_keyed(d + " list mallory-hunter").find("1 session(s)") != std::string::npos);
  CHECK(run_keyed(d + " snapshot").rfind("snapshot taken", 0) == 0);
  // The user name is in the commands and the state; encrypted, it is in no file.
  const std::string user = "mallory-hunter";
  for (auto& e : std::filesystem::directory_iterator(d)) {
    auto bytes = test::read_file(e.path());
    INFO(e.path().string());
    CHECK_FALSE(contains(bytes, user.data(), user.size()));
  }
  const std::string without = run_cli(d + " list mallory-hunter");
  CHECK(without.rfind("exit failure", 0) == 0);
  CHECK(without.find("without an encryption key") != std::string::npos);
}

TEST_CASE("sessions: replay is deterministic (the determinism check passes)") {
  // Over 1,024 sessions, so that the snapshots write the cow_map in parts, as the check's own
  // serialization of the replayed state must too.
  test::temp_dir dir;
  prevalent::store_options o;
  o.sync = prevalent::sync_policy::none();
  std::vector<std::string> tokens;
  {
    sessions::Store store(dir.path(), o);
    for (int i = 0; i < 1100; ++i) {
      tokens.push_back(sessions::new_token());
      store.execute(sessions::CreateSession{"user" + std::to_string(i % 7), 60 + i % 5,
                                            sessions::hash_token(tokens.back())});
    }
    store.snapshot();
    for (int i = 0; i < 50; ++i)
      store.execute(sessions::TouchSession{sessions::hash_token(tokens[i])});
    for (int i = 50; i < 80; ++i)
      store.execute(sessions::RevokeSession{sessions::hash_token(tokens[i])});
    store.execute(sessions::ExpireSessions{});
    store.execute(sessions::CreateSession{"late", 5, sessions::hash_token(sessions::new_token())});
    store.snapshot();
  }
  const auto report = prevalent::check_determinism<sessions::Store>(dir.path());
  INFO(report.summary);
  CHECK(report.checked);
  CHECK(report.consistent);
  CHECK(report.from_seq == 1100);
  CHECK(report.replayed == 82);
  // And from the empty state: the whole journal.
  const auto whole = prevalent::check_determinism<sessions::Store>(
      dir.path(), prevalent::determinism_options{.from = 0});
  INFO(whole.summary);
  CHECK(whole.consistent);
  CHECK(whole.replayed == 1182);
}

TEST_CASE("the CLI's stats prints the store's metrics and metrics prints the exposition") {
  test::temp_dir tmp;
  const std::string dir = tmp.path().string();
  run_cli(dir + " create alice 3600");
  run_cli(dir + " create bob 3600");
  // Each run opens the store: this one replays the two records the others wrote.
  const std::string stats = run_cli(dir + " stats");
  CHECK(stats.find("2 session(s)") != std::string::npos);
  CHECK(stats.find("2 record(s) replayed, 0 torn tail(s)") != std::string::npos);
  CHECK(stats.find("journal: 1 segment(s)") != std::string::npos);
  const std::string text = run_cli(dir + " metrics");
  CHECK(text.find("# TYPE prevalent_commands_total counter\n") != std::string::npos);
  CHECK(text.find("prevalent_recovery_replayed_records{store=\"" + dir + "\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("prevalent_journal_segments{store=\"" + dir + "\"} 1\n") != std::string::npos);
  // Stderr is not a terminal here: no progress line.
  CHECK(text.find("opening:") == std::string::npos);
}

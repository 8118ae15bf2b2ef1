// sessions: a command-line front end to a durable session/token store.
//
//   sessions DIR create USER TTL_SECONDS   prints the new token (once: the store keeps its hash)
//   sessions DIR touch TOKEN               extends the session, prints the new expiry
//   sessions DIR revoke TOKEN
//   sessions DIR list USER                 shows each session's id (a prefix of its hash)
//   sessions DIR expire                    removes expired sessions
//   sessions DIR snapshot
//   sessions DIR stats
//
// Each run opens the store, runs one command and exits: run it twice to see state survive.
//
// With SESSIONS_KEY_FILE set, the store is encrypted at rest with the key in that file (64 hex
// digits; keep the file outside DIR and its backups): docs/SECURITY.md#encryption-at-rest.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <string>

#include "sessions_model.hpp"

namespace {

std::string format_time(std::int64_t ns_since_epoch) {
  std::time_t t = static_cast<std::time_t>(ns_since_epoch / 1'000'000'000);
  std::tm parts{};
  ::gmtime_r(&t, &parts);
  char buf[32];
  return std::string(buf, std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &parts));
}

int usage() {
  std::cerr << "usage: sessions DIR create USER TTL_SECONDS | touch TOKEN | revoke TOKEN |\n"
               "                    list USER | expire | snapshot | stats\n";
  return 2;
}

// The key in the file SESSIONS_KEY_FILE names: its first word, 64 hex digits.
prevalent::encryption_key key_from_file(const std::string& path) {
  std::ifstream in(path);
  std::string hex;
  if (!(in >> hex)) throw std::runtime_error("cannot read an encryption key from " + path);
  return prevalent::encryption_key::from_hex(hex);
}

int run(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string dir = argv[1], verb = argv[2];
  prevalent::store_options options;
  options.log = [](const std::string& msg) { std::cerr << "prevalent: " << msg << "\n"; };
  // Read once, before any thread starts.
  if (const char* key_file = std::getenv("SESSIONS_KEY_FILE"))  // NOLINT(concurrency-mt-unsafe)
    options.encryption_key = key_from_file(key_file);
  sessions::Store store(dir, options);

  if (verb == "create" && argc == 5) {
    const std::string token = sessions::new_token();
    store.execute(
        sessions::CreateSession{argv[3], std::stoll(argv[4]), sessions::hash_token(token)});
    std::cout << token << "\n";
  } else if (verb == "touch" && argc == 4) {
    std::cout << "expires "
              << format_time(store.execute(sessions::TouchSession{sessions::hash_token(argv[3])}))
              << "\n";
  } else if (verb == "revoke" && argc == 4) {
    std::cout << (store.execute(sessions::RevokeSession{sessions::hash_token(argv[3])})
                      ? "revoked"
                      : "no such session")
              << "\n";
  } else if (verb == "list" && argc == 4) {
    auto list = store.query([&](const sessions::State& s) { return s.of_user(argv[3]); });
    for (const auto& s : list)
      std::cout << "id " << sessions::short_id(s.token_hash) << "  created "
                << format_time(s.created_ns) << "  expires " << format_time(s.expires_ns) << "\n";
    std::cout << list.size() << " session(s) for " << argv[3] << "\n";
  } else if (verb == "expire" && argc == 3) {
    std::cout << store.execute(sessions::ExpireSessions{}) << " expired session(s) removed\n";
  } else if (verb == "snapshot" && argc == 3) {
    store.snapshot();
    std::cout << "snapshot taken at sequence " << store.last_sequence() << "\n";
  } else if (verb == "stats" && argc == 3) {
    auto n = store.query([](const sessions::State& s) { return s.by_hash.size(); });
    std::cout << n << " session(s), last sequence " << store.last_sequence() << ", "
              << store.recovery().records << " journal record(s) verified on open\n";
  } else {
    return usage();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "sessions: " << e.what() << "\n";
    return 1;
  }
}

// sessions: a command-line front end to a durable session/token store.
//
//   sessions DIR create USER TTL_SECONDS   prints the new token (once: the store keeps its hash)
//   sessions DIR touch TOKEN               extends the session, prints the new expiry
//   sessions DIR revoke TOKEN
//   sessions DIR list USER                 shows each session's id (a prefix of its hash)
//   sessions DIR expire                    removes expired sessions
//   sessions DIR snapshot
//   sessions DIR stats                     sessions, and the store's metrics (this run's open)
//   sessions DIR metrics                   the metrics in the Prometheus text format
//
// Each run opens the store, runs one command and exits: run it twice to see state survive.
// Opening a large store shows its progress on stderr when stderr is a terminal.
//
// With SESSIONS_KEY_FILE set, the store is encrypted at rest with the key in that file (64 hex
// digits; keep the file outside DIR and its backups): docs/SECURITY.md#encryption-at-rest.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <stdexcept>
#include <string>

#include <unistd.h>
#include <prevalent/prometheus.hpp>

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
               "                    list USER | expire | snapshot | stats | metrics\n";
  return 2;
}

// The key in the file SESSIONS_KEY_FILE names: its first word, 64 hex digits.
prevalent::encryption_key key_from_file(const std::string& path) {
  std::ifstream in(path);
  std::string hex;
  if (!(in >> hex)) throw std::runtime_error("cannot read an encryption key from " + path);
  return prevalent::encryption_key::from_hex(hex);
}

// Progress of a long open on a terminal: one line on stderr, rewritten in place, once the
// open has taken half a second (a small store opens without a word).
void show_progress(const prevalent::recovery_progress& p) {
  using clock = std::chrono::steady_clock;
  static const clock::time_point started = clock::now();
  static bool shown = false;
  const bool done = p.phase == prevalent::recovery_phase::done;
  if (!shown && clock::now() - started < std::chrono::milliseconds(500)) return;
  shown = true;
  auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  std::cerr << std::fixed << std::setprecision(1) << "\r\033[Kopening: snapshot "
            << mib(p.snapshot_bytes_loaded) << "/" << mib(p.snapshot_bytes_total)
            << " MiB, journal " << mib(p.journal_bytes_read) << "/" << mib(p.journal_bytes_total)
            << " MiB, " << p.records_replayed << " records" << (done ? "\n" : "") << std::flush;
}

// `stats`: what this run's open found, the journal now, and this run's commands.
void print_stats(const prevalent::store_metrics& m) {
  std::cout << std::fixed << std::setprecision(1) << "open: " << m.recovery_seconds * 1e3
            << " ms (snapshot " << m.recovery_snapshot_seconds * 1e3 << " ms), "
            << m.recovery_replayed_records << " record(s) replayed, " << m.recovery_torn_tails
            << " torn tail(s) cut (" << m.recovery_torn_bytes << " bytes)\n"
            << "journal: " << m.journal_segments << " segment(s), " << m.journal_bytes
            << " bytes, durable through sequence " << m.durable_sequence << "\n"
            << "this run: " << m.commands_applied << " command(s) applied, " << m.commands_rejected
            << " rejected, " << m.commands_failed << " failed, " << m.journal_syncs << " sync(s), "
            << m.snapshot_seconds.count << " snapshot(s)\n";
}

int run(int argc, char** argv) {
  if (argc < 3) return usage();
  const std::string dir = argv[1], verb = argv[2];
  prevalent::store_options options;
  options.log = [](const std::string& msg) { std::cerr << "prevalent: " << msg << "\n"; };
  // Read once, before any thread starts.
  if (const char* key_file = std::getenv("SESSIONS_KEY_FILE"))  // NOLINT(concurrency-mt-unsafe)
    options.encryption_key = key_from_file(key_file);
  if (::isatty(STDERR_FILENO)) options.on_recovery_progress = show_progress;
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
              << store.recovery().records << " journal record(s) verified on open" << std::endl;
    print_stats(store.metrics());
  } else if (verb == "metrics" && argc == 3) {
    std::cout << prevalent::prometheus_text(store.metrics(), {{"store", dir}});
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

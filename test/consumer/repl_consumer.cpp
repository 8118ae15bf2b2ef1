// A consumer of prevalent-repl (replicas of a store), built by tools/consumer-check against the
// installed copy: a primary store in one new directory serves its journal on a free loopback
// port (ReplicationPrimary), a Replica in another directory follows it, a command executed
// under acks = replicated(1) is acknowledged only once the replica has it, and the replica's
// query sees it; the replica refuses commands. Exits 1 on any mismatch, 2 on a setup failure.
#include <prevalent/prevalent.hpp>
#include <prevalent/repl/replica.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <string>
#include <thread>

namespace {

struct Bank {
  std::map<std::string, long> balances;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Bank, balances)
};

struct Deposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  long amount = 0;
  long apply(Bank& b, const prevalent::Context&) const { return b.balances[account] += amount; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};

int failures = 0;

void expect(bool ok, const std::string& what) {
  if (!ok) {
    std::cerr << "repl-consumer: FAILED: " << what << "\n";
    ++failures;
  }
}

int run(const std::filesystem::path& dir) {
  using namespace std::chrono_literals;
  prevalent::store_options options;
  options.acks = prevalent::ack_policy::replicated(1, 10s);
  prevalent::Store<Bank, Deposit> primary(dir / "primary", options);
  prevalent::repl::ReplicationPrimary serving(primary, 0);  // any free port on 127.0.0.1
  expect(serving.port() != 0, "the primary serves on a port");
  prevalent::repl::Replica<Bank, Deposit> replica(dir / "replica",
                                                  "127.0.0.1:" + std::to_string(serving.port()));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (serving.connected_replicas() < 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  expect(serving.connected_replicas() == 1, "the replica connected within 10 s");

  // Acknowledged only once the replica reported the record durable (or throws after 10 s).
  const long balance = primary.execute(Deposit{"alice", 42});
  expect(balance == 42, "the primary's deposit returned 42");
  const std::uint64_t seq = primary.last_sequence();
  expect(
      replica.store().durable_sequence() >= seq,
      "the replica had record " + std::to_string(seq) + " durable when the primary acknowledged");
  expect(replica.wait_applied(seq, deadline), "the replica applied record " + std::to_string(seq));
  const long seen = replica.query([](const Bank& b) {
    const auto it = b.balances.find("alice");
    return it == b.balances.end() ? -1L : it->second;
  });
  expect(seen == 42, "the replica's query sees alice's 42 (saw " + std::to_string(seen) + ")");

  try {
    replica.execute(Deposit{"bob", 1});
    expect(false, "the replica refused a command");
  } catch (const prevalent::error& e) {
    expect(e.code() == make_error_code(prevalent::errc::read_only_replica),
           std::string("the replica refused with read_only_replica, not: ") + e.what());
  }
  replica.close();
  serving.stop();
  return failures;
}

}  // namespace

int main() {
  std::string tmpl =
      (std::filesystem::temp_directory_path() / "prevalent-repl-consumer-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    std::perror("mkdtemp");
    return 2;
  }
  const std::filesystem::path dir(tmpl);
  int result = 0;
  try {
    result = run(dir) == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << "repl-consumer: FAILED: " << e.what() << "\n";
    result = 1;
  }
  std::filesystem::remove_all(dir);
  if (result == 0) std::puts("repl-consumer: ok");
  return result;
}

// Promotion and demotion without reopening (include/prevalent/repl/replication_node.hpp,
// replicated_store.hpp; docs/REPLICATION.md "Promotion and demotion"), on loopback: a replica
// promoted to primary of a higher epoch accepts commands in a new segment of that epoch and the old
// primary follows it; a primary told to stop acknowledging refuses commands and fails the callers
// waiting for replicas at once; an old primary with records nobody else had cuts them when it
// follows.
#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <thread>

#include <prevalent/error.hpp>
#include <prevalent/state_digest.hpp>

#include "prevalent/repl/replicated_store.hpp"
#include "replication_bank.hpp"
#include "support.hpp"

using namespace prevalent;
using clock_type = std::chrono::steady_clock;

using namespace replication_bank;

namespace {

using Node = repl::ReplicatedStore<Bank, Deposit>;

repl::endpoint at(const Node& n) { return {"127.0.0.1", n.node().port()}; }

// Until `n` has applied `seq` and shows `digest`.
bool converged(const Node& n, std::uint64_t seq, const digest128& digest) {
  const auto until = deadline();
  while (n.last_sequence() != seq || digest_of(n) != digest)
    if (clock_type::now() > until)
      return false;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return true;
}

void deposit(Node& n, int from, int to, const std::string& who = "acct") {
  for (int i = from; i < to; ++i) n.execute(Deposit{who + std::to_string(i % 5), i + 1});
}

store_options options(ack_policy acks = ack_policy::local()) {
  store_options o;
  o.preallocate_bytes = 0;
  o.acks = acks;
  return o;
}

template <class F>
errc code_of(F&& f) {
  try {
    f();
  } catch (const error& e) {
    return static_cast<errc>(e.code().value());
  }
  return errc{};
}

}  // namespace

TEST_CASE("a replica promoted to a higher epoch takes commands; the old primary follows it") {
  test::temp_dir a_dir, b_dir;
  Node a(a_dir.path(), options()), b(b_dir.path(), options());
  CHECK(a.node().role() == repl::node_role::none);
  CHECK(code_of([&] { a.execute(Deposit{"x", 1}); }) == errc::read_only_replica);

  a.node().become_primary(1);
  b.node().follow(at(a), 1);
  deposit(a, 0, 30);
  REQUIRE(converged(b, 30, digest_of(a)));
  CHECK(b.node().role() == repl::node_role::replica);
  CHECK(code_of([&] { b.execute(Deposit{"x", 1}); }) == errc::read_only_replica);
  CHECK(b.node().lag().applied_seq == 30);
  REQUIRE(a.node().replicas().size() == 1);
  CHECK(a.node().replicas().front().durable_seq == 30);

  // Failover by hand: a stops acknowledging, b is promoted to epoch 2, a follows b.
  a.node().stop_acknowledging("lease lost (test)");
  CHECK(a.node().role() == repl::node_role::fenced);
  CHECK(code_of([&] { a.execute(Deposit{"x", 1}); }) == errc::read_only_replica);
  b.node().become_primary(2);
  deposit(b, 30, 45, "new");
  a.node().follow(at(b), 2);
  REQUIRE(converged(a, 45, digest_of(b)));
  CHECK(a.node().lag().cuts == 0);  // a was merely behind: nothing cut
  // b's records from 31 on are in a segment of epoch 2, on both nodes.
  b.with_store([](const auto& s) {
    CHECK(s.segments().back().epoch == 2);
    CHECK(s.segments().back().first_seq == 31);
  });
  a.with_store([](const auto& s) { CHECK(s.segments().back().epoch == 2); });
  // A stale promotion is refused: epochs never decrease along the journal.
  a.node().stop();
  CHECK(code_of([&] { a.node().become_primary(1); }) == errc::stale_epoch);
}

TEST_CASE("stop_acknowledging fails the callers waiting for replicas and refuses commands") {
  // Injected: a primary under replicated(1) with no replica, so a command waits for one; then
  // the node is told to stop acknowledging. Verified: that command fails with read_only_replica
  // (not replication_timeout after its 60 s), saying it is durable here; later ones refused.
  test::temp_dir dir;
  Node a(dir.path(), options(ack_policy::replicated(1, std::chrono::seconds(60))));
  a.node().become_primary(1);
  std::atomic<int> outcome{-1};
  std::string message;
  std::thread writer([&] {
    try {
      a.execute(Deposit{"waiting", 1});
      outcome = 0;
    } catch (const error& e) {
      message = e.what();
      outcome = e.code().value();
    }
  });
  const auto until = deadline();
  while (a.durable_sequence() < 1 && clock_type::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  a.node().stop_acknowledging("lease lost (test)");
  writer.join();
  CHECK(outcome.load() == static_cast<int>(errc::read_only_replica));
  CHECK(message.find("lease lost (test)") != std::string::npos);
  CHECK(message.find("durable on this node") != std::string::npos);
  CHECK(code_of([&] { a.execute(Deposit{"later", 1}); }) == errc::read_only_replica);
  CHECK(a.query([](const Bank& b) { return b.balances.count("later"); }) == 0);
}

TEST_CASE("an old primary with records nobody else had cuts them when it follows the new one") {
  test::temp_dir a_dir, b_dir;
  Node a(a_dir.path(), options()), b(b_dir.path(), options());
  a.node().become_primary(1);
  b.node().follow(at(a), 1);
  deposit(a, 0, 20);
  REQUIRE(converged(b, 20, digest_of(a)));
  b.node().stop();             // b hears nothing more from a
  deposit(a, 20, 28, "lost");  // acknowledged under local only: never replicated
  a.node().stop_acknowledging("lease lost (test)");
  b.node().become_primary(2);
  deposit(b, 20, 25, "new");
  a.node().follow(at(b), 2);
  REQUIRE(converged(a, 25, digest_of(b)));
  CHECK(a.node().lag().cuts == 1);
  CHECK(a.query([](const Bank& bank) { return bank.balances.count("lost0"); }) == 0);
  bool kept = false;
  for (const auto& e : std::filesystem::directory_iterator(a_dir.path()))
    kept |= e.path().filename().string().ends_with(".cut-20");
  CHECK(kept);
  // And a follows on: new records of b arrive.
  deposit(b, 25, 30, "new");
  REQUIRE(converged(a, 30, digest_of(b)));
}

// Replicas of a Store (include/prevalent/repl/replica.hpp, docs/REPLICATION.md "Replicas") over
// loopback: a replica's state equals its primary's at the same sequence number (state digests), it
// refuses commands naming the primary, a restarted replica resumes from its own journal, its reads
// never go backwards; acks = replicated(k) waits for k replicas and times out without them;
// a replica too far behind catches up from the primary's newest snapshot.
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <thread>

#include <prevalent/encryption_key.hpp>
#include <prevalent/error.hpp>
#include <prevalent/state_digest.hpp>
#include <prevalent/store.hpp>
#include <prevalent/testing/fault_injecting_directory.hpp>

#include "prevalent/format.hpp"
#include "prevalent/repl/replica.hpp"
#include "replication_bank.hpp"
#include "support.hpp"

using namespace prevalent;
using clock_type = std::chrono::steady_clock;

using namespace replication_bank;

namespace {

using BankReplica = repl::Replica<Bank, Deposit>;

void deposit(BankStore& s, int from, int to) {
  for (int i = from; i < to; ++i) s.execute(Deposit{"acct" + std::to_string(i % 7), i + 1});
}

// Until the primary has heard from `n` replicas (their hello).
bool wait_connected(const repl::ReplicationPrimary& serving, unsigned n) {
  const auto until = deadline();
  while (serving.connected_replicas() < n)
    if (clock_type::now() > until)
      return false;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return true;
}

store_options quick() {
  store_options o;
  o.preallocate_bytes = 0;
  return o;
}

}  // namespace

TEST_CASE("a replica follows its primary: equal state at the same seq, commands refused") {
  test::temp_dir primary_dir, replica_dir;
  BankStore primary(primary_dir.path(), quick());
  repl::ReplicationPrimary serving(primary);
  deposit(primary, 0, 40);  // before the replica exists
  BankReplica replica(replica_dir.path(), address(serving.port()), quick());
  deposit(primary, 40, 100);  // while it follows
  REQUIRE(replica.wait_applied(100, deadline()));
  CHECK(replica.last_sequence() == primary.last_sequence());
  CHECK(digest_of(replica) == digest_of(primary));
  CHECK(replica.query([](const Bank& b) { return b.total; }) == 100 * 101 / 2);

  const auto lag = replica.lag();
  CHECK(lag.applied_seq == 100);
  CHECK(lag.durable_seq == 100);
  CHECK(lag.primary_seq == 100);
  CHECK(lag.records_behind() == 0);
  CHECK(lag.connected);
  CHECK(lag.since_heard != clock_type::duration::max());

  // A command is refused before it runs: nothing changes, the error names the primary.
  try {
    replica.execute(Deposit{"mallory", 5});
    FAIL("a replica accepted a command");
  } catch (const error& e) {
    CHECK(e.code() == make_error_code(errc::read_only_replica));
    CHECK(std::string(e.what()).find(address(serving.port())) != std::string::npos);
  }
  CHECK(replica.query([](const Bank& b) { return b.balances.count("mallory"); }) == 0);
  CHECK(replica.last_sequence() == 100);
}

TEST_CASE("a restarted replica resumes from its own journal and catches up") {
  test::temp_dir primary_dir, replica_dir;
  BankStore primary(primary_dir.path(), quick());
  repl::ReplicationPrimary serving(primary);
  deposit(primary, 0, 50);
  {
    BankReplica replica(replica_dir.path(), address(serving.port()), quick());
    REQUIRE(replica.wait_applied(50, deadline()));
  }
  deposit(primary, 50, 80);  // while the replica is down
  serving.stop();            // the replica's open below must come from its own disk
  repl::ReplicationPrimary serving_again(primary);
  BankReplica replica(replica_dir.path(), address(serving_again.port()), quick());
  // Recovery replayed the 50 records it held; it asks the primary for 51 on.
  CHECK(replica.store().recovery().replayed == 50);
  CHECK(replica.last_sequence() >= 50);
  REQUIRE(replica.wait_applied(80, deadline()));
  CHECK(digest_of(replica) == digest_of(primary));
}

TEST_CASE("a replica's reads never go backwards while it follows") {
  test::temp_dir primary_dir, replica_dir;
  BankStore primary(primary_dir.path(), quick());
  repl::ReplicationPrimary serving(primary);
  BankReplica replica(replica_dir.path(), address(serving.port()), quick());
  std::atomic<bool> done{false};
  std::atomic<int> backwards{0}, reads{0};
  std::thread reader([&] {
    long last_total = 0;
    std::uint64_t last_seq = 0;
    while (!done) {
      const long total = replica.query([](const Bank& b) { return b.total; });
      const std::uint64_t seq = replica.last_sequence();
      if (total < last_total || seq < last_seq) ++backwards;
      last_total = total;
      last_seq = seq;
      ++reads;
    }
  });
  deposit(primary, 0, 300);  // every amount is positive: the total only grows
  REQUIRE(replica.wait_applied(300, deadline()));
  done = true;
  reader.join();
  CHECK(backwards == 0);
  CHECK(reads > 0);
  CHECK(digest_of(replica) == digest_of(primary));
}

TEST_CASE("a malformed primary address is refused naming it") {
  test::temp_dir dir;
  for (const char* bad : {"localhost", "127.0.0.1:", ":7000", "127.0.0.1:70000", "h:12x"}) {
    try {
      BankReplica replica(dir.path(), bad, quick());
      FAIL("accepted " << bad);
    } catch (const error& e) {
      CHECK(e.code() == make_error_code(errc::invalid_option));
      CHECK(std::string(e.what()).find(bad) != std::string::npos);
    }
  }
}

TEST_CASE("acks = replicated(k): times out without k replicas, acknowledges what is on theirs") {
  test::temp_dir primary_dir, replica_dir;
  store_options o = quick();
  // Long enough for a replica's fdatasync on a busy machine: no assertion depends on speed.
  o.acks = ack_policy::replicated(1, std::chrono::milliseconds(1500));
  BankStore primary(primary_dir.path(), o);
  repl::ReplicationPrimary serving(primary);

  // No replica: the command fails after the timeout, saying how many acknowledged; it is
  // applied and durable locally (what the caller may assume: docs/REPLICATION.md).
  auto times_out = [&](const std::string& acked) {
    const std::uint64_t before = primary.last_sequence();
    try {
      primary.execute(Deposit{"alice", 1});
      FAIL("acknowledged without enough replicas");
    } catch (const error& e) {
      CHECK(e.code() == make_error_code(errc::replication_timeout));
      CHECK(std::string(e.what()).find(acked) != std::string::npos);
    }
    CHECK(primary.last_sequence() == before + 1);
    CHECK(primary.durable_sequence() == before + 1);
  };
  times_out("acknowledged by 0 of the 1 replicas");

  {
    BankReplica replica(replica_dir.path(), address(serving.port()), quick());
    REQUIRE(wait_connected(serving, 1));
    // Each acknowledged command is on the replica's disk (its journal's durable mark, which
    // moves only after its fdatasync) when execute() returns.
    for (int i = 0; i < 30; ++i) {
      const long balance = primary.execute(Deposit{"bob", 1});
      CHECK(balance == i + 1);
      CHECK(replica.store().durable_sequence() >= primary.last_sequence());
    }
    // Concurrent writers share the replica's batches (group commit on both sides).
    std::vector<std::thread> writers;
    std::atomic<int> failures{0};
    for (int t = 0; t < 8; ++t)
      writers.emplace_back([&, t] {
        for (int i = 0; i < 20; ++i) {
          try {
            primary.execute(Deposit{"w" + std::to_string(t), 1});
          } catch (...) {
            ++failures;
          }
        }
      });
    for (auto& w : writers) w.join();
    CHECK(failures == 0);
    CHECK(replica.store().durable_sequence() >= primary.last_sequence());
    REQUIRE(replica.wait_applied(primary.last_sequence(), deadline()));
    CHECK(digest_of(replica) == digest_of(primary));
  }
  // The replica stopped: replicated(1) times out again.
  times_out("acknowledged by 0 of the 1 replicas");
}

TEST_CASE("acks = replicated(2) with one replica says one of two acknowledged") {
  test::temp_dir primary_dir, replica_dir;
  store_options o = quick();
  o.acks = ack_policy::replicated(2, std::chrono::milliseconds(1500));
  BankStore primary(primary_dir.path(), o);
  repl::ReplicationPrimary serving(primary);
  BankReplica replica(replica_dir.path(), address(serving.port()), quick());
  REQUIRE(wait_connected(serving, 1));
  try {
    primary.execute(Deposit{"alice", 1});
    FAIL("acknowledged by one replica under replicated(2)");
  } catch (const error& e) {
    CHECK(e.code() == make_error_code(errc::replication_timeout));
    CHECK(std::string(e.what()).find("acknowledged by 1 of the 2 replicas") != std::string::npos);
  }
  CHECK(replica.wait_applied(1, deadline()));
}

TEST_CASE("acks = replicated(k) needs a positive timeout") {
  test::temp_dir dir;
  store_options o = quick();
  o.acks = ack_policy::replicated(1, std::chrono::milliseconds(0));
  try {
    BankStore s(dir.path(), o);
    FAIL("opened with a zero timeout");
  } catch (const error& e) {
    CHECK(e.code() == make_error_code(errc::invalid_option));
    CHECK(std::string(e.what()).find("acks.timeout") != std::string::npos);
  }
}

namespace {
bytes file_bytes(const std::filesystem::path& dir, const std::string& name) {
  return read_all(*open_posix_directory(dir)->open(name, Directory::open_mode::read));
}
// A primary that keeps few segments: small ones, one snapshot.
store_options few_segments() {
  store_options o = quick();
  o.segment_bytes = 2048;
  o.keep_snapshots = 1;
  return o;
}
}  // namespace

TEST_CASE("a new replica too far behind installs the primary's newest snapshot, then follows") {
  test::temp_dir primary_dir, replica_dir;
  BankStore primary(primary_dir.path(), few_segments());
  repl::ReplicationPrimary serving(primary);
  deposit(primary, 0, 200);
  primary.snapshot();  // drops the segments before record 201
  deposit(primary, 200, 250);
  REQUIRE(primary.segments().front().first_seq > 1);
  BankReplica replica(replica_dir.path(), address(serving.port()), quick());
  REQUIRE(replica.wait_applied(250, deadline()));
  CHECK(replica.lag().catch_ups == 1);
  CHECK(digest_of(replica) == digest_of(primary));
  // The snapshot file as stored on the primary, byte for byte.
  const std::string name = format::snapshot_file_name(200);
  CHECK(file_bytes(replica_dir.path(), name) == file_bytes(primary_dir.path(), name));
  // It goes on following after the catch-up, and still refuses commands.
  deposit(primary, 250, 260);
  REQUIRE(replica.wait_applied(260, deadline()));
  CHECK(digest_of(replica) == digest_of(primary));
  CHECK_THROWS_AS(replica.execute(Deposit{"x", 1}), error);
}

TEST_CASE("a replica restarted far behind catches up from a snapshot, its old segments gone") {
  test::temp_dir primary_dir, replica_dir;
  BankStore primary(primary_dir.path(), few_segments());
  repl::ReplicationPrimary serving(primary);
  deposit(primary, 0, 50);
  {
    BankReplica replica(replica_dir.path(), address(serving.port()), quick());
    REQUIRE(replica.wait_applied(50, deadline()));
  }
  deposit(primary, 50, 300);
  primary.snapshot();
  deposit(primary, 300, 320);
  REQUIRE(primary.segments().front().first_seq > 51);
  BankReplica replica(replica_dir.path(), address(serving.port()), quick());
  CHECK(replica.store().recovery().replayed == 50);  // it resumed from its own journal first
  REQUIRE(replica.wait_applied(320, deadline()));
  CHECK(replica.lag().catch_ups == 1);
  CHECK(digest_of(replica) == digest_of(primary));
  // Its journal now starts after the snapshot: the records 1..50 it held were removed.
  CHECK(replica.store().segments().front().first_seq == 301);
}

TEST_CASE("a snapshot catch-up cut by a power loss at any step leaves a replica that opens") {
  // The primary's snapshot at 200, and a replica directory holding records 1..30 (and a
  // snapshot of its own at 20) on a simulated disk.
  auto primary_dir = make_memory_directory();
  digest128 at_200{};
  {
    BankStore primary(primary_dir, few_segments());
    deposit(primary, 0, 200);
    primary.snapshot();
    at_200 = digest_of(primary);
  }
  const std::string name = format::snapshot_file_name(200);
  const repl::detail::snapshot_file file{
      name, 200, read_all(*primary_dir->open(name, Directory::open_mode::read))};
  auto replica_base = std::make_shared<testing::FaultInjectingDirectory>();
  digest128 at_30{};
  {
    store_options o = few_segments();
    o.keep_snapshots = 2;
    BankStore replica(replica_base, o);
    deposit(replica, 0, 20);
    replica.snapshot();
    deposit(replica, 20, 30);
    at_30 = digest_of(replica);
  }
  // A dry run sizes the crash points.
  auto dry = testing::FaultInjectingDirectory::holding(*replica_base);
  const auto before = dry->operations();
  repl::detail::install_snapshot(dry, file);
  const auto steps = dry->operations() - before;
  REQUIRE(steps > 5);
  int old_states = 0, new_states = 0;
  for (std::uint64_t k = 1; k <= steps; ++k) {
    for (std::uint64_t seed = 0; seed < 4; ++seed) {
      CAPTURE(k);
      CAPTURE(seed);
      auto disk = testing::FaultInjectingDirectory::holding(*replica_base);
      disk->crash_after(k);  // the k-th disk operation of the install and all later ones fail
      CHECK_THROWS(repl::detail::install_snapshot(disk, file));
      auto image = disk->power_loss(seed);
      // What the next Replica open does, then the store's own open: it must open, at the old
      // state or at the snapshot's, never anything in between.
      repl::detail::finish_catch_up(image);
      BankStore reopened(image, quick());
      const auto seq = reopened.last_sequence();
      const auto digest = digest_of(reopened);
      if (seq == 30) {
        CHECK(digest == at_30);
        ++old_states;
      } else {
        CHECK(seq == 200);
        CHECK(digest == at_200);
        ++new_states;
      }
    }
  }
  // Both outcomes occur: the cut points span the moment the staged snapshot became durable.
  CHECK(old_states > 0);
  CHECK(new_states > 0);
}

TEST_CASE("a replica whose primary is not up says why, and follows once it is") {
  test::temp_dir primary_dir, replica_dir;
  BankStore primary(primary_dir.path(), quick());
  deposit(primary, 0, 10);
  std::uint16_t port = 0;
  {
    repl::ReplicationPrimary probe(primary);  // a free port, then nobody listening there
    port = probe.port();
  }
  BankReplica replica(replica_dir.path(), address(port), quick(), std::chrono::milliseconds(20));
  const auto until = deadline();
  while (replica.lag().last_error.empty() && clock_type::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const auto lag = replica.lag();
  CHECK(!lag.connected);
  CHECK(lag.last_error.find("cannot connect to the primary " + address(port)) != std::string::npos);
  CHECK(lag.since_heard == clock_type::duration::max());
  CHECK(replica.last_sequence() == 0);
  repl::ReplicationPrimary serving(primary, port);  // the same port: the replica retries there
  REQUIRE(replica.wait_applied(10, deadline()));
  CHECK(digest_of(replica) == digest_of(primary));
}

TEST_CASE("an encrypted primary's replica stores sealed records and snapshots, and applies them") {
  test::temp_dir primary_dir, replica_dir;
  store_options o = few_segments();
  o.encryption_key = encryption_key(bytes(encryption_key::size, 0x5a));
  o.epoch = 1;  // sealed records of epoch >= 1 can be stored elsewhere (docs/REPLICATION.md)
  BankStore primary(primary_dir.path(), o);
  repl::ReplicationPrimary serving(primary);
  for (int i = 0; i < 150; ++i) primary.execute(Deposit{"secret-account", 1});
  primary.snapshot();  // a new replica catches up from this sealed snapshot
  for (int i = 0; i < 20; ++i) primary.execute(Deposit{"secret-account", 1});
  store_options r = quick();
  r.encryption_key = o.encryption_key;
  {
    BankReplica replica(replica_dir.path(), address(serving.port()), r);
    REQUIRE(replica.wait_applied(170, deadline()));
    CHECK(replica.lag().catch_ups == 1);
    CHECK(digest_of(replica) == digest_of(primary));
    CHECK(replica.query([](const Bank& b) { return b.balances.at("secret-account"); }) == 170);
  }
  // Nothing in the replica's files is readable without the key.
  const std::string plain = "secret-account";
  for (const auto& entry : std::filesystem::directory_iterator(replica_dir.path())) {
    const bytes content = file_bytes(replica_dir.path(), entry.path().filename().string());
    CHECK_MESSAGE(
        std::search(content.begin(), content.end(), plain.begin(), plain.end()) == content.end(),
        entry.path());
  }
}

namespace {
struct Withdraw {  // a command the replica program below does not know
  static constexpr std::string_view name = "withdraw";
  std::string account;
  long amount = 0;
  long apply(Bank& b, const Context&) const {
    b.total -= amount;
    return b.balances[account] -= amount;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Withdraw, account, amount)
};
}  // namespace

TEST_CASE("a record the replica cannot apply stops its state, not its journal; a reopen resumes") {
  test::temp_dir primary_dir, replica_dir;
  Store<Bank, Deposit, Withdraw> primary(primary_dir.path(), quick());
  repl::ReplicationPrimary serving(primary);
  primary.execute(Deposit{"alice", 10});
  {
    BankReplica replica(replica_dir.path(), address(serving.port()), quick());
    REQUIRE(replica.wait_applied(1, deadline()));
    primary.execute(Withdraw{"alice", 3});  // unknown to Replica<Bank, Deposit>
    primary.execute(Deposit{"alice", 5});
    const auto until = deadline();
    while (replica.lag().durable_seq < 3 && clock_type::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    const auto lag = replica.lag();
    CHECK(lag.durable_seq == 3);  // stored: the journal is the primary's
    CHECK(lag.applied_seq == 1);  // never applied: the state stops rather than drift
    CHECK(lag.last_error.find("withdraw") != std::string::npos);
    CHECK_THROWS_WITH_AS(replica.query([](const Bank& b) { return b.total; }),
                         doctest::Contains("could not be rebuilt"), error);
  }
  // The program that knows every command opens the same directory and goes on.
  repl::Replica<Bank, Deposit, Withdraw> replica(replica_dir.path(), address(serving.port()),
                                                 quick());
  CHECK(replica.store().recovery().replayed == 3);
  REQUIRE(replica.wait_applied(3, deadline()));
  CHECK(replica.query([](const Bank& b) { return b.balances.at("alice"); }) == 12);
  CHECK(digest_of(replica) == digest_of(primary));
}

TEST_CASE("a replica's own automatic snapshots bound its journal while it follows") {
  test::temp_dir primary_dir, replica_dir;
  BankStore primary(primary_dir.path(), quick());
  repl::ReplicationPrimary serving(primary);
  store_options r = few_segments();
  r.snapshots.every_commands = 50;
  {
    BankReplica replica(replica_dir.path(), address(serving.port()), r);
    deposit(primary, 0, 400);
    REQUIRE(replica.wait_applied(400, deadline()));
    CHECK(digest_of(replica) == digest_of(primary));
    // Snapshots were taken on the replica, and retention dropped the segments before them.
    const auto until = deadline();
    while (replica.store().segments().front().first_seq == 1 && clock_type::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK(replica.store().segments().front().first_seq > 1);
  }
  // It reopens from its own snapshot and journal, and resumes.
  deposit(primary, 400, 420);
  BankReplica replica(replica_dir.path(), address(serving.port()), r);
  CHECK(replica.store().recovery().replayed < 400);
  REQUIRE(replica.wait_applied(420, deadline()));
  CHECK(digest_of(replica) == digest_of(primary));
}

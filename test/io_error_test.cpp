// Fail-stop on I/O errors (rule R5 in docs/RELIABILITY.md): a failed journal write or fsync is
// reported to the caller, never retried, and stops the store from accepting commands; queries
// keep answering from what is durable; a reopen recovers every acknowledged command. Each case
// names what it injected.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include <prevalent/snapshot_store.hpp>
#include <prevalent/testing/fault_injecting_directory.hpp>

#include <prevalent/journal.hpp>

#include "support.hpp"

using namespace prevalent;
using prevalent::testing::FaultInjectingDirectory;
using test::Deposit;
using op = FaultInjectingDirectory::op;

namespace {

std::int64_t balance(const test::LedgerStore& s) {
  return s.query([](const test::Ledger& l) {
    auto it = l.balances.find("a");
    return it == l.balances.end() ? 0 : it->second;
  });
}

bool is_journal(const std::string& name) { return name.rfind("journal-", 0) == 0; }

}  // namespace

TEST_CASE("fdatasync of the journal fails: caller gets EIO, store stops, queries go on") {
  auto disk = make_memory_directory();
  auto faulty = std::make_shared<FaultInjectingDirectory>(disk);
  {
    test::LedgerStore store(faulty);
    store.execute(Deposit{"a", 1});
    store.execute(Deposit{"a", 2});
    // Injected: every later fdatasync of a journal segment fails with EIO.
    faulty->fail_when(
        [](op o, const std::string& name) { return o == op::sync && is_journal(name); });
    try {
      store.execute(Deposit{"a", 4});
      FAIL("execute succeeded although its fdatasync failed");
    } catch (const error& e) {
      CHECK(e.code() == std::errc::io_error);
    }
    CHECK(store.failed());
    // Verified: later commands are refused without touching the disk ...
    try {
      store.execute(Deposit{"a", 8});
      FAIL("a failed store accepted a command");
    } catch (const error& e) {
      CHECK(e.code() == errc::store_failed);
      CHECK(std::string(e.what()).find("reopen") != std::string::npos);
    }
    // ... and queries answer from the durable prefix (the unsynced command is not shown).
    CHECK(balance(store) == 3);
    CHECK(store.last_sequence() == 2);
  }
  faulty->fail_when({});
  test::LedgerStore reopened(faulty);
  // The unacknowledged command may or may not have reached the disk; acknowledged ones did.
  CHECK((balance(reopened) == 3 || balance(reopened) == 7));
  CHECK(reopened.execute(Deposit{"a", 0}) >= 3);
}

TEST_CASE("a journal write fails: the command is not applied and the store stops") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  test::LedgerStore store(faulty);
  store.execute(Deposit{"a", 5});
  // Injected: the next append to a journal segment fails with EIO before writing anything.
  faulty->fail_when(
      [](op o, const std::string& name) { return o == op::write && is_journal(name); });
  CHECK_THROWS_AS(store.execute(Deposit{"a", 100}), error);
  CHECK(store.failed());
  CHECK(balance(store) == 5);  // verified: the failed command's effect was rolled back
  CHECK_THROWS_AS(store.execute(Deposit{"a", 1}), error);
  faulty->fail_when({});
  CHECK_THROWS_AS(store.execute(Deposit{"a", 1}), error);  // never retried, even once healthy
}

TEST_CASE("a query through a const store drops what never became durable after an I/O error") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  test::LedgerStore store(faulty);
  const test::LedgerStore& view = store;  // query() needs only a const store
  store.execute(Deposit{"a", 3});
  // Injected: the next fdatasync of the journal stalls until `release`, then fails with EIO.
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<bool> armed{true};
  faulty->fail_when([&](op o, const std::string& name) {
    if (o != op::sync || !is_journal(name)) return false;
    if (armed.exchange(false)) {
      entered.set_value();
      released.wait();
    }
    return true;
  });
  std::atomic<bool> writer_failed{false};
  std::thread writer([&] {
    try {
      store.execute(Deposit{"a", 4});
    } catch (const error&) {
      writer_failed = true;
    }
  });
  entered.get_future().wait();  // deposit 4 is applied and queued; its fdatasync has begun
  CHECK(view.last_sequence() == 2);
  std::thread releaser([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    release.set_value();
  });
  // The query sees deposit 4, waits for it to be durable, sees the journal fail, and answers
  // again from the durable prefix (whether it or the writer rolled the state back).
  CHECK(balance(view) == 3);
  releaser.join();
  writer.join();
  CHECK(writer_failed);
  CHECK(view.failed());
  CHECK(view.last_sequence() == 1);
  faulty->fail_when({});
}

TEST_CASE("Journal::close reports a failed final sync that nobody waited for") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  journal_options options;
  options.sync = sync_policy::none();
  auto j = Journal::open(faulty, options, 1, 1, {});
  j->wait(j->append(1, "acknowledged under sync policy none"));  // returns at once
  j->flush_through(1);                                           // written, not synced
  // Injected: the final fdatasync of the journal fails with EIO.
  faulty->fail_when(
      [](op o, const std::string& name) { return o == op::sync && is_journal(name); });
  auto close_error = [&] {
    try {
      j->close();
    } catch (const error& e) {
      return e.code();
    }
    return std::error_code();
  };
  CHECK(close_error() == std::errc::io_error);
  CHECK(j->failed());
  CHECK(close_error() == std::errc::io_error);  // a second close still reports it
  try {
    j->append(2, "after close");
    FAIL("a closed journal accepted a record");
  } catch (const error& e) {
    CHECK(e.code() == errc::closed);
  }
  faulty->fail_when({});
}

TEST_CASE("a store whose last sync fails when it is destroyed says so in its log") {
  auto faulty = std::make_shared<FaultInjectingDirectory>(make_memory_directory());
  std::vector<std::string> logs;
  {
    store_options o;
    o.sync = sync_policy::none();
    o.log = [&](const std::string& m) { logs.push_back(m); };
    test::LedgerStore store(faulty, o);
    store.execute(Deposit{"a", 1});
    // Injected: every fdatasync of the journal fails with EIO, so the one at close does.
    faulty->fail_when(
        [](op o, const std::string& name) { return o == op::sync && is_journal(name); });
  }
  faulty->fail_when({});
  REQUIRE(logs.size() == 1);
  CHECK(logs[0].find("did not close cleanly, records may be lost") != std::string::npos);
  CHECK(logs[0].find(std::make_error_code(std::errc::io_error).message()) != std::string::npos);
}

TEST_CASE("a failing removal of a leftover snapshot temp file is reported, not swallowed") {
  auto disk = std::make_shared<FaultInjectingDirectory>();
  SnapshotStore snapshots(disk, 2);
  const std::string payload = "{}";
  // A temp file left by a publish of the same sequence number that a crash interrupted.
  disk->open(format::snapshot_file_name(5) + format::temp_suffix, Directory::open_mode::create_new);
  // Injected: removing it fails with EIO. Before, the EIO was dropped and the publish failed
  // on the file still being there (EEXIST), naming the wrong cause.
  disk->fail_nth(FaultInjectingDirectory::op::remove, 1, EIO);
  try {
    snapshots.publish(5, 0, as_bytes(payload), codec::json);
    FAIL("publish succeeded although the temp file could not be removed");
  } catch (const error& e) {
    CHECK(e.code() == std::errc::io_error);
  }
  // Without a fault the leftover is removed (and a missing one is no error).
  CHECK(snapshots.publish(5, 0, as_bytes(payload), codec::json) == format::snapshot_file_name(5));
  CHECK(snapshots.publish(6, 0, as_bytes(payload), codec::json) == format::snapshot_file_name(6));
}

TEST_CASE("a snapshot that cannot be written leaves the journal and the store working") {
  auto disk = make_memory_directory();
  auto faulty = std::make_shared<FaultInjectingDirectory>(disk);
  {
    test::LedgerStore store(faulty);
    for (int i = 0; i < 10; ++i) store.execute(Deposit{"a", 1});
    // Injected: fdatasync of the temporary snapshot file fails (a full or failing disk).
    faulty->fail_when([](op o, const std::string& name) {
      return o == op::sync && name.find(".snap.tmp") != std::string::npos;
    });
    CHECK_THROWS_AS(store.snapshot(), error);
    CHECK(!store.failed());
    store.execute(Deposit{"a", 1});
    faulty->fail_when({});
  }
  // Verified: no snapshot was published, the journal holds everything, the leftover
  // temporary file is cleaned up on open.
  test::LedgerStore reopened(faulty);
  CHECK(balance(reopened) == 11);
  for (auto& name : disk->list()) CHECK(name.find(".snap") == std::string::npos);
}

// Rebuilding the state from disk (after a command's apply threw, or after an I/O error) while
// a snapshot is published concurrently, and the journal's own checks that a rebuild read
// exactly the records it asked for.
#include <doctest/doctest.h>

#include <thread>

#include <prevalent/testing/fault_injecting_directory.hpp>
#include "pausing_directory.hpp"
#include "support.hpp"

using namespace prevalent;
using prevalent::testing::FaultInjectingDirectory;
using test::Deposit;
using test::LedgerStore;

namespace {

std::int64_t balance(const LedgerStore& store, const std::string& account) {
  return store.query([&](const test::Ledger& l) {
    auto it = l.balances.find(account);
    return it == l.balances.end() ? 0 : it->second;
  });
}

std::size_t count_prefix(const Directory& dir, const std::string& prefix) {
  std::size_t n = 0;
  for (auto& name : dir.list()) n += name.rfind(prefix, 0) == 0;
  return n;
}

}  // namespace

TEST_CASE("a rebuild after a throwing apply is not broken by a snapshot published meanwhile") {
  // Thread B publishes a snapshot at 150 (keep_snapshots = 1: the one at 50 and every segment
  // before the active one go) while thread A, whose command's apply threw, is rebuilding from
  // the snapshot at 50 and the journal after it. Before the fix, A read the snapshot at 50 and
  // then found only the segments B left, so the live state silently showed 55 instead of 150.
  auto memory = make_memory_directory();
  auto dir = std::make_shared<test::PausingDirectory>(memory);
  store_options options;
  options.segment_bytes = 512;
  options.keep_snapshots = 1;
  std::string live;
  {
    LedgerStore store(dir, options);
    for (int i = 0; i < 50; ++i) store.execute(Deposit{"a", 1});
    store.snapshot();
    for (int i = 0; i < 100; ++i) store.execute(Deposit{"a", 1});
    REQUIRE(store.segments().size() > 3);

    // B: captured at 150, stops as it creates the new snapshot's temporary file.
    std::thread b([&] {
      dir->arm("B", format::snapshot_file_name(150));
      store.snapshot();
    });
    auto b_at = dir->wait_until_paused("B");
    REQUIRE(b_at);
    CHECK(*b_at == format::snapshot_file_name(150) + format::temp_suffix);

    // A: apply throws; the rebuild stops as it opens the snapshot it chose (the one at 50).
    bool a_threw = false;
    std::thread a([&] {
      dir->arm("A", "snapshot-");
      try {
        store.execute(test::BrokenTransfer{"a", "b", 7});
      } catch (const std::runtime_error&) {
        a_threw = true;
      }
    });
    auto a_at = dir->wait_until_paused("A");
    REQUIRE(a_at);
    CHECK(*a_at == format::snapshot_file_name(50));

    // B finishes its publish while A holds the old snapshot open, then A goes on.
    dir->release("B");
    b.join();
    CHECK(count_prefix(*memory, "snapshot-") == 2);  // A still reads the one at 50: kept
    dir->release("A");
    a.join();
    CHECK(a_threw);

    CHECK(!store.failed());
    CHECK(balance(store, "a") == 150);
    CHECK(balance(store, "b") == 0);
    CHECK(store.last_sequence() == 150);
    // What the publish could not delete while A was reading is gone once A is done.
    CHECK(count_prefix(*memory, "snapshot-") == 1);
    CHECK(store.segments().front().first_seq <= 151);
    CHECK(store.segments().size() == count_prefix(*memory, "journal-"));
    store.execute(Deposit{"a", 1});
    live = test::dump_state(store);
  }
  LedgerStore reopened(memory, options);
  CHECK(test::dump_state(reopened) == live);
  CHECK(balance(reopened, "a") == 151);
}

TEST_CASE("a rebuild that cannot read what it needs fails the store instead of drifting") {
  // A segment the rebuild needs lost its records behind the store's back: the journal's
  // for_each notices the gap, and the store refuses queries and commands from then on.
  auto dir = make_memory_directory();
  store_options options;
  options.segment_bytes = 512;
  std::vector<std::string> logged;
  options.log = [&](const std::string& m) { logged.push_back(m); };
  LedgerStore store(dir, options);
  for (int i = 0; i < 60; ++i) store.execute(Deposit{"a", 1});
  const auto segs = store.segments();
  REQUIRE(segs.size() > 3);
  dir->open(segs[1].file, Directory::open_mode::write)->truncate(format::segment_header_size);

  CHECK_THROWS_WITH_AS(store.execute(test::BrokenTransfer{"a", "b", 7}),
                       "injected failure half-way through apply", std::runtime_error);
  CHECK(store.failed());
  auto refused = [&](auto&& f) {
    try {
      f();
    } catch (const error& e) {
      CHECK(e.code() == errc::store_failed);
      return std::string(e.what());
    }
    FAIL("not refused");
    return std::string();
  };
  const std::string gap = "record " + std::to_string(segs[2].first_seq) + " where " +
                          std::to_string(segs[1].first_seq) + " was expected";
  CHECK(refused([&] { balance(store, "a"); }).find(gap) != std::string::npos);
  CHECK(refused([&] { store.execute(Deposit{"a", 1}); }).find(gap) != std::string::npos);
  CHECK(refused([&] { store.snapshot(); }).find(gap) != std::string::npos);  // half-applied
  CHECK(store.last_sequence() == 60);
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].find("rebuilding the state from disk failed") != std::string::npos);
  CHECK(logged[0].find(segs[2].file) != std::string::npos);
}

TEST_CASE("a rollback after an I/O error is not broken by a snapshot published meanwhile") {
  // As above, but A's rebuild is the rollback to the durable prefix after its command's
  // fdatasync failed.
  auto memory = make_memory_directory();
  auto failing = std::make_shared<FaultInjectingDirectory>(memory);
  auto dir = std::make_shared<test::PausingDirectory>(failing);
  store_options options;
  options.segment_bytes = 512;
  options.keep_snapshots = 1;
  LedgerStore store(dir, options);
  for (int i = 0; i < 50; ++i) store.execute(Deposit{"a", 1});
  store.snapshot();
  for (int i = 0; i < 100; ++i) store.execute(Deposit{"a", 1});

  std::thread b([&] {
    dir->arm("B", format::snapshot_file_name(150));
    store.snapshot();
  });
  REQUIRE(dir->wait_until_paused("B"));

  failing->fail_when([](FaultInjectingDirectory::op o, const std::string& name) {
    return o == FaultInjectingDirectory::op::sync && name.rfind("journal-", 0) == 0;
  });
  bool a_failed = false;
  std::thread a([&] {
    dir->arm("A", "snapshot-");
    try {
      store.execute(Deposit{"a", 1000});
    } catch (const error&) {
      a_failed = true;
    }
  });
  auto a_at = dir->wait_until_paused("A");
  REQUIRE(a_at);
  CHECK(*a_at == format::snapshot_file_name(50));
  dir->release("B");
  b.join();
  dir->release("A");
  a.join();

  CHECK(a_failed);
  CHECK(store.failed());
  CHECK(balance(store, "a") == 150);  // the durable prefix, read whole
  CHECK(store.last_sequence() == 150);
  CHECK(count_prefix(*memory, "snapshot-") == 1);
}

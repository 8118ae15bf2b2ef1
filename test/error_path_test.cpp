// Error paths: a scripted workload (commands and snapshots) runs once per disk operation,
// with that one operation failing (EIO or ENOSPC): every write, file sync, create, rename,
// remove and directory sync in turn. Checked each time: the failing call reports the error;
// after a journal failure the store refuses commands but still answers queries; after a
// failed snapshot it goes on; and a reopen recovers every acknowledged command, with the state
// equal to the model applied to a prefix.
#include <doctest/doctest.h>

#include <prevalent/testing/fault_injecting_directory.hpp>

#include "support.hpp"

using namespace prevalent;
using prevalent::testing::FaultInjectingDirectory;
using test::Deposit;
using op = FaultInjectingDirectory::op;

namespace {

store_options small() {
  store_options o;
  o.segment_bytes = 300;
  o.keep_snapshots = 1;
  return o;
}

struct outcome {
  std::size_t acknowledged = 0;
  std::size_t attempted = 0;  // acknowledged plus the one that failed, if any
  int errors = 0;
};

// 30 deposits of 1..30 into one account, a snapshot after every 7th.
outcome run(test::LedgerStore& store) {
  outcome o;
  for (int i = 1; i <= 30; ++i) {
    try {
      store.execute(Deposit{"a", i});
      ++o.acknowledged;
      o.attempted = o.acknowledged;
    } catch (const error& e) {
      ++o.errors;
      if (o.attempted == o.acknowledged) o.attempted = o.acknowledged + 1;
      // Refused from now on, without touching the disk; queries still answer.
      CHECK(store.failed());
      CHECK_THROWS_AS(store.execute(Deposit{"a", 1000}), error);
      CHECK_NOTHROW(store.query([](const test::Ledger& l) { return l.total(); }));
      return o;
    }
    if (i % 7 == 0) {
      try {
        store.snapshot();
      } catch (const error&) {
        ++o.errors;  // a failed snapshot leaves the journal, and the store, working
        if (!store.failed()) continue;
        return o;
      }
    }
  }
  return o;
}

std::int64_t sum_to(std::size_t n) { return static_cast<std::int64_t>(n * (n + 1) / 2); }

}  // namespace

TEST_CASE("each disk operation of a workload fails in turn; nothing acknowledged is lost") {
  std::map<op, std::uint64_t> counts;  // a dry run counts each kind of operation
  {
    auto disk = std::make_shared<FaultInjectingDirectory>();
    {
      test::LedgerStore store(disk, small());
      run(store);
    }
    for (op k : {op::write, op::sync, op::create, op::rename, op::remove, op::dir_sync})
      counts[k] = disk->operations(k);
  }
  int cases = 0, failures_seen = 0;
  const std::pair<op, const char*> kinds[] = {{op::write, "write"},   {op::sync, "sync"},
                                              {op::create, "create"}, {op::rename, "rename"},
                                              {op::remove, "remove"}, {op::dir_sync, "dir sync"}};
  for (auto [kind, name] : kinds) {
    REQUIRE(counts[kind] > 0);
    for (std::uint64_t n = 1; n <= counts[kind]; ++n) {
      const int err = n % 2 ? EIO : ENOSPC;
      CAPTURE(name);
      CAPTURE(n);
      auto disk = std::make_shared<FaultInjectingDirectory>();
      outcome o;
      bool opened = true;
      try {
        test::LedgerStore store(disk, small());
        disk->fail_nth(kind, n, err);
        o = run(store);
      } catch (const error&) {
        opened = false;  // the fault hit the store's creation: it reported it; nothing acked
      }
      ++cases;
      if (o.errors > 0 || !opened) ++failures_seen;
      // Reopened on a copy: a fault planned past the workload's last operation must not fire
      // in the reopen (which syncs the last segment before appending).
      test::LedgerStore reopened(FaultInjectingDirectory::holding(*disk), small());
      const std::uint64_t last = reopened.last_sequence();
      REQUIRE(last >= o.acknowledged);
      REQUIRE(last <= std::max(o.attempted, o.acknowledged));
      auto total = reopened.query([](const test::Ledger& l) { return l.total(); });
      CHECK(total == sum_to(last));
    }
  }
  MESSAGE(cases, " fault cases, ", failures_seen, " of them hit a running operation");
  CHECK(failures_seen > 50);
}

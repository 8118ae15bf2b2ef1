// Automatic cut-back on divergence (lib/repl/, docs/REPLICATION.md "Cut-back"): a replica
// whose journal holds records of an older epoch that the new primary never had is told where
// the histories part (Raft's rule: the last record of an epoch <= the replica's last epoch
// that the primary holds), cuts them off into .cut-<N> files and follows the new primary to
// its digest; a replica merely behind is not cut; a cut nothing could rebuild falls back to
// catching up from the primary; a primary that stops answering is noticed (read timeout).
#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <map>
#include <thread>

#include <prevalent/error.hpp>
#include <prevalent/state_digest.hpp>
#include <prevalent/store.hpp>

#include "prevalent/repl/replica.hpp"
#include "replication_bank.hpp"
#include "replication_net.hpp"
#include "support.hpp"

using namespace prevalent;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

using namespace replication_bank;

namespace {

using BankReplica = repl::Replica<Bank, Deposit>;

store_options at_epoch(std::uint64_t epoch) {
  store_options o;
  o.preallocate_bytes = 0;
  o.epoch = epoch;
  return o;
}

void deposit(BankStore& s, int from, int to, const std::string& who = "acct") {
  for (int i = from; i < to; ++i) s.execute(Deposit{who + std::to_string(i % 7), i + 1});
}

std::vector<std::string> cut_files(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().find(".cut-") != std::string::npos)
      names.push_back(e.path().filename().string());
  return names;
}

// Copies a closed store directory (the new primary's history as of that moment).
void copy_store(const fs::path& from, const fs::path& to) {
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
}

}  // namespace

TEST_CASE("a replica with records of epoch 1 the new primary never had cuts them and follows") {
  test::temp_dir old_dir, new_dir, replica_dir, behind_dir;
  {
    BankStore old_primary(old_dir.path(), at_epoch(1));
    deposit(old_primary, 0, 20);
  }
  copy_store(old_dir.path(), new_dir.path());     // the new primary had records 1..20
  copy_store(old_dir.path(), behind_dir.path());  // a replica merely behind: 1..20 of epoch 1
  {
    BankStore old_primary(old_dir.path(), at_epoch(1));
    repl::ReplicationPrimary serving(old_primary);
    deposit(old_primary, 20, 30, "lost");  // 21..30 reach only the replica below
    BankReplica replica(replica_dir.path(), address(serving.port()), at_epoch(0));
    REQUIRE(replica.wait_applied(30, deadline()));
    CHECK(digest_of(replica) == digest_of(old_primary));
  }
  // Failover: the new primary (epoch 2) writes 21..35 of its own.
  BankStore new_primary(new_dir.path(), at_epoch(2));
  deposit(new_primary, 20, 35, "new");
  repl::ReplicationPrimary serving(new_primary);

  BankReplica replica(replica_dir.path(), address(serving.port()), at_epoch(0));
  REQUIRE(replica.wait_applied(35, deadline()));
  // Applied through 35 can be the old history (30 records) cut and the new one followed.
  const auto until = deadline();
  while (digest_of(replica) != digest_of(new_primary) && clock_type::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(digest_of(replica) == digest_of(new_primary));
  CHECK(replica.last_sequence() == 35);
  CHECK(replica.query([](const Bank& b) { return b.balances.count("lost0"); }) == 0);
  CHECK(replica.lag().cuts == 1);
  // The cut records are kept: the segment holding 21..30 was copied whole to .cut-20.
  const auto kept = cut_files(replica_dir.path());
  REQUIRE(!kept.empty());
  for (const auto& name : kept) CHECK(name.ends_with(".cut-20"));
  CHECK(replica.store().segments().back().epoch == 2);

  // Merely behind (1..20 of epoch 1, all in the new primary's history): followed, not cut.
  BankReplica behind(behind_dir.path(), address(serving.port()), at_epoch(0));
  REQUIRE(behind.wait_applied(35, deadline()));
  CHECK(digest_of(behind) == digest_of(new_primary));
  CHECK(behind.lag().cuts == 0);
  CHECK(cut_files(behind_dir.path()).empty());
}

TEST_CASE("the primary tells where histories part by the replica's last epoch (Raft's rule)") {
  test::temp_dir dir;
  {
    BankStore s(dir.path(), at_epoch(3));
    deposit(s, 0, 10);
  }
  BankStore s(dir.path(), at_epoch(5));
  deposit(s, 10, 16);
  auto journal = detail::store_access<Bank, Deposit>::core(s).journal_handle();
  CHECK(repl::common_prefix_end(*journal, 0) == 0);   // nothing of epoch <= 0 here
  CHECK(repl::common_prefix_end(*journal, 3) == 10);  // epoch 3 ends at 10
  CHECK(repl::common_prefix_end(*journal, 4) == 10);  // no epoch 4: the same
  CHECK(repl::common_prefix_end(*journal, 5) == 16);  // everything
  CHECK(repl::common_prefix_end(*journal, 9) == 16);
}

TEST_CASE("a cut below everything the replica can rebuild sets its files aside and catches up") {
  test::temp_dir old_dir, new_dir, replica_dir;
  {
    BankStore old_primary(old_dir.path(), at_epoch(1));
    deposit(old_primary, 0, 5);
  }
  copy_store(old_dir.path(), new_dir.path());
  {
    BankStore old_primary(old_dir.path(), at_epoch(1));
    repl::ReplicationPrimary serving(old_primary);
    deposit(old_primary, 5, 40, "lost");
    store_options o = at_epoch(0);
    o.segment_bytes = 1024;
    o.keep_snapshots = 1;
    BankReplica replica(replica_dir.path(), address(serving.port()), o);
    REQUIRE(replica.wait_applied(40, deadline()));
  }
  {
    // The replica snapshots at 40 and drops its segments: nothing rebuilds record 5 there.
    store_options o = at_epoch(0);
    o.segment_bytes = 1024;
    o.keep_snapshots = 1;
    BankStore r(replica_dir.path(), o);
    r.snapshot();
    REQUIRE(r.segments().front().first_seq > 6);
  }
  BankStore new_primary(new_dir.path(), at_epoch(2));
  deposit(new_primary, 5, 12, "new");
  repl::ReplicationPrimary serving(new_primary);
  BankReplica replica(replica_dir.path(), address(serving.port()), at_epoch(0));
  const auto until = deadline();
  while ((replica.last_sequence() != 12 || digest_of(replica) != digest_of(new_primary)) &&
         clock_type::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(digest_of(replica) == digest_of(new_primary));
  CHECK(replica.lag().cuts == 1);
  // Every file it had is kept aside, the snapshot of 40 among them.
  const auto kept = cut_files(replica_dir.path());
  CHECK(std::find(kept.begin(), kept.end(), format::snapshot_file_name(40) + ".cut-5") !=
        kept.end());
}

TEST_CASE("a primary that stops answering without closing the connection is given up") {
  // Injected: a "primary" that accepts the connection and never sends a byte (what a SIGSTOPped
  // process looks like). Verified: run() ends with replication_timeout, naming the wait.
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, {asio::ip::address_v4::loopback(), 0});
  std::thread accepting([&] {
    asio::ip::tcp::socket s(io);
    silent.accept(s);
    std::this_thread::sleep_for(std::chrono::seconds(3));  // holds it open, says nothing
  });
  test::temp_dir dir;
  BankStore replica_store(dir.path(), at_epoch(0));
  repl::ReplicationClient client(
      detail::store_access<Bank, Deposit>::core(replica_store).journal_handle(), "127.0.0.1",
      silent.local_endpoint().port());
  client.read_timeout = std::chrono::milliseconds(300);
  try {
    client.run();
    FAIL("run() returned although the primary said nothing");
  } catch (const error& e) {
    CHECK(e.code() == make_error_code(errc::replication_timeout));
    CHECK(std::string(e.what()).find("no message from the primary") != std::string::npos);
  }
  accepting.join();
}

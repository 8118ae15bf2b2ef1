// The replication wire protocol (lib/repl/, docs/REPLICATION.md) on loopback: a replica that
// connects receives the primary's durable records, stores them verbatim and acknowledges them;
// one too far behind is told so by the primary.
#include <doctest/doctest.h>

#include <thread>

#include <prevalent/error.hpp>
#include <prevalent/journal.hpp>

#include "replication_net.hpp"
#include "support.hpp"

using namespace prevalent;
using clock_type = std::chrono::steady_clock;

namespace {

std::shared_ptr<Journal> open_journal(const std::filesystem::path& dir, std::uint64_t epoch,
                                      std::uint64_t segment_bytes = 1 << 20) {
  journal_options o;
  o.epoch = epoch;
  o.segment_bytes = segment_bytes;
  o.preallocate_bytes = 0;
  return Journal::open(open_posix_directory(dir), o, 1, 1, {});
}

std::string payload_for(std::uint64_t i) { return "{\"n\":" + std::to_string(i) + "}"; }

std::vector<raw_record> read_all(const Journal& j) {
  RecordStream s(j, 1);
  std::vector<raw_record> out;
  while (s.read(out) > 0) {
  }
  return out;
}

}  // namespace

TEST_CASE("a replica follows the primary over TCP and acknowledges what is durable") {
  test::temp_dir primary_dir, replica_dir;
  auto primary = open_journal(primary_dir.path(), 2, 500);
  for (std::uint64_t i = 1; i <= 30; ++i)
    primary->append(static_cast<std::int64_t>(i), payload_for(i));
  primary->sync_through(30);
  repl::ReplicationServer server(primary);
  auto replica = open_journal(replica_dir.path(), 0);
  repl::ReplicationClient client(replica, "127.0.0.1", server.port());
  std::exception_ptr client_error;
  std::thread follower([&] {
    try {
      client.run();
    } catch (...) {
      client_error = std::current_exception();
    }
  });
  // Deadlines only bound the test if something is lost; nothing here is timed.
  const auto deadline = clock_type::now() + std::chrono::seconds(60);
  CHECK(server.wait_acked(30, deadline));
  // Written while the replica follows: it arrives too, across a new epoch.
  primary->set_epoch(3);
  for (std::uint64_t i = 31; i <= 60; ++i)
    primary->append(static_cast<std::int64_t>(i), payload_for(i));
  primary->sync_through(60);
  CHECK(server.wait_acked(60, deadline));
  CHECK(replica->durable_seq() == 60);
  client.stop();
  follower.join();
  CHECK_FALSE(client_error);
  server.stop();
  const auto want = read_all(*primary);
  const auto got = read_all(*replica);
  REQUIRE(got.size() == want.size());
  for (std::size_t k = 0; k < got.size(); ++k) {
    CHECK(got[k].seq == want[k].seq);
    CHECK(got[k].timestamp_ns == want[k].timestamp_ns);
    CHECK(got[k].epoch == want[k].epoch);
    CHECK(got[k].payload == want[k].payload);
  }
  CHECK(replica->segments().back().epoch == 3);
}

TEST_CASE("a replica too far behind is told so by the primary") {
  test::temp_dir primary_dir, replica_dir;
  auto primary = open_journal(primary_dir.path(), 1, 200);
  for (std::uint64_t i = 1; i <= 20; ++i) primary->append(0, payload_for(i));
  primary->sync_through(20);
  primary->drop_below(15);
  REQUIRE(primary->first_seq() > 1);
  repl::ReplicationServer server(primary);
  auto replica = open_journal(replica_dir.path(), 0);  // empty: asks for record 1
  repl::ReplicationClient client(replica, "127.0.0.1", server.port());
  try {
    client.run();
    FAIL("the client ran without an error");
  } catch (const prevalent::error& e) {
    CHECK(e.code() == make_error_code(errc::too_far_behind));
    CHECK(std::string(e.what()).find("record 1 was already dropped") != std::string::npos);
  }
  CHECK(replica->last_appended() == 0);
}

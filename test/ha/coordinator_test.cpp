// Coordinator against a real etcd (test/ha/etcd_process.hpp): one primary per epoch, the epoch
// is the leader key's create_revision, the most advanced member wins, the leader key goes with
// the lease, and fail-stop: with etcd stopped, the primary stops acknowledging before TTL has
// passed since the last refresh it sent that succeeded (asserted on the recorded times).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "etcd_process.hpp"
#include "prevalent/ha/coordinator.hpp"

using namespace prevalent::ha;
using namespace std::chrono_literals;
using prevalent::ha::test::EtcdProcess;
using steady = std::chrono::steady_clock;

namespace {

// A node's coordinator and what its callbacks were told.
struct Node {
  std::atomic<std::uint64_t> seq;
  mutable std::mutex m;
  std::condition_variable cv;
  std::vector<std::int64_t> primary_epochs;
  steady::time_point primary_at{};  // when became_primary() was last called
  std::string followed_address;
  std::int64_t followed_epoch = 0;
  int stops = 0;
  steady::time_point stopped_at{};
  lease_status lease_at_stop{};
  bool acknowledged_after_stop = false;
  std::unique_ptr<Coordinator> c;

  Node(const std::string& endpoint, const std::string& name, std::uint64_t durable_seq,
       std::chrono::milliseconds grace = 300ms, const std::string& client = "")
      : seq(durable_seq) {
    coordinator_options o;
    o.cluster = "test";
    o.node = name;
    o.address = name + ":6379";
    o.client_address = client;
    o.lease_ttl = 2s;
    o.election_grace = grace;
    o.poll_interval = 100ms;
    // A quarter of the TTL: the watchdog thread may be woken late on a loaded machine.
    o.safety_margin = 500ms;
    coordinator_callbacks cb;
    cb.durable_seq = [this] { return seq.load(); };
    cb.became_primary = [this](std::int64_t epoch) {
      const auto now = steady::now();
      std::lock_guard lock(m);
      primary_epochs.push_back(epoch);
      primary_at = now;
      cv.notify_all();
    };
    cb.follow = [this](const std::string& address, std::int64_t epoch) {
      std::lock_guard lock(m);
      followed_address = address;
      followed_epoch = epoch;
      cv.notify_all();
    };
    cb.must_stop_acknowledging = [this] {
      const auto now = steady::now();
      const auto lease = c->lease();
      const bool may = c->may_acknowledge();
      std::lock_guard lock(m);
      ++stops;
      stopped_at = now;
      lease_at_stop = lease;
      acknowledged_after_stop = may;
      cv.notify_all();
    };
    cb.log = [name](const std::string& line) { MESSAGE(line); };
    c = std::make_unique<Coordinator>(etcd_options{endpoint, 1000ms}, o, cb);
  }

  template <class Pred>
  bool wait(Pred pred, std::chrono::seconds limit = 15s) {
    // Woken by the callbacks; also re-checks every 20 ms for conditions no callback signals.
    const auto give_up = steady::now() + limit;
    std::unique_lock lock(m);
    while (!pred()) {
      if (steady::now() >= give_up) return false;
      cv.wait_for(lock, 20ms);
    }
    return true;
  }
  std::optional<std::int64_t> epoch() const {
    std::lock_guard lock(m);
    if (primary_epochs.empty()) return std::nullopt;
    return primary_epochs.back();
  }
};

}  // namespace

TEST_CASE("coordinator: of two equal nodes one becomes primary, the other follows it") {
  const EtcdProcess etcd;
  Node a(etcd.endpoint(), "a", 7);
  Node b(etcd.endpoint(), "b", 7);
  a.c->start();
  b.c->start();
  REQUIRE(a.wait([&] { return !a.primary_epochs.empty(); }));  // ties: the smaller name
  REQUIRE(b.wait([&] { return b.followed_epoch != 0; }));
  CHECK(b.primary_epochs.empty());
  CHECK(a.primary_epochs.size() == 1);
  CHECK(b.followed_address == "a:6379");
  CHECK(b.followed_epoch == *a.epoch());
  CHECK(a.c->may_acknowledge());
  CHECK_FALSE(b.c->may_acknowledge());

  // The epoch is the leader key's create_revision; primary() and members() read etcd.
  const EtcdClient client({etcd.endpoint(), 2000ms});
  const auto leader = client.get("/prevalent/test/leader");
  REQUIRE(leader);
  CHECK(leader->create_revision == *a.epoch());
  CHECK(leader->lease == a.c->lease().lease_id);
  const auto p = b.c->primary();
  REQUIRE(p);
  CHECK(p->node == "a");
  CHECK(p->address == "a:6379");
  CHECK(p->epoch == *a.epoch());
  REQUIRE(a.wait([&] {
    const auto ms = a.c->members();
    return ms.size() == 2 && ms[0].role == "primary";
  }));
  const auto ms = b.c->members();
  REQUIRE(ms.size() == 2);
  CHECK(ms[0].node == "a");
  CHECK(ms[0].epoch == *a.epoch());
  CHECK(ms[1].node == "b");
  CHECK(ms[1].role == "replica");
  CHECK(ms[1].durable_seq == 7);
  CHECK(ms[1].address == "b:6379");
}

TEST_CASE("coordinator: a client address is published in the leader and member keys") {
  // prevalent-kv --etcd publishes where its clients connect, so any node can name the
  // primary's (INFO replication, prevalent_primary) from the leader key as last polled.
  const EtcdProcess etcd;
  Node a(etcd.endpoint(), "a", 7, 300ms, "10.0.0.1:6380");
  Node b(etcd.endpoint(), "b", 7);        // publishes none
  CHECK_FALSE(b.c->last_seen_primary());  // nothing polled yet
  a.c->start();
  b.c->start();
  REQUIRE(a.wait([&] { return !a.primary_epochs.empty(); }));
  REQUIRE(b.wait([&] { return b.followed_epoch != 0; }));
  const EtcdClient client({etcd.endpoint(), 2000ms});
  const auto leader = client.get("/prevalent/test/leader");
  REQUIRE(leader);
  CHECK(leader->value.find("\"client\":\"10.0.0.1:6380\"") != std::string::npos);
  const auto seen = b.c->last_seen_primary();  // polled before follow() was called
  REQUIRE(seen);
  CHECK(seen->node == "a");
  CHECK(seen->address == "a:6379");
  CHECK(seen->client_address == "10.0.0.1:6380");
  CHECK(seen->epoch == *a.epoch());
  CHECK(b.c->primary()->client_address == "10.0.0.1:6380");
  REQUIRE(a.wait([&] { return a.c->members().size() == 2; }));
  const auto ms = b.c->members();
  REQUIRE(ms.size() == 2);
  CHECK(ms[0].client_address == "10.0.0.1:6380");
  CHECK(ms[1].client_address.empty());
  const auto b_key = client.get("/prevalent/test/members/b");
  REQUIRE(b_key);
  CHECK(b_key->value.find("client") == std::string::npos);
  // The leader key gone (a stops and revokes its lease): the next poll forgets it.
  a.c->stop();
  CHECK(b.wait([&] {
    const auto p = b.c->last_seen_primary();
    return !p || p->node != "a";
  }));
}

TEST_CASE("coordinator: the most advanced member wins, whatever its name") {
  const EtcdProcess etcd;
  Node a(etcd.endpoint(), "a", 5);
  Node b(etcd.endpoint(), "b", 10);
  Node c(etcd.endpoint(), "c", 9);
  a.c->start();
  b.c->start();
  c.c->start();
  REQUIRE(b.wait([&] { return !b.primary_epochs.empty(); }));
  REQUIRE(a.wait([&] { return a.followed_epoch != 0; }));
  REQUIRE(c.wait([&] { return c.followed_epoch != 0; }));
  CHECK(a.primary_epochs.empty());
  CHECK(c.primary_epochs.empty());
  CHECK(a.followed_address == "b:6379");
  CHECK(c.followed_epoch == *b.epoch());

  // The primary leaves (stop revokes its lease): the leader key goes at once, and the next
  // most advanced (c, 9 > 5) wins a later epoch; a follows it.
  const auto first = *b.epoch();
  b.c->stop();
  CHECK(b.stops == 1);  // a stopping primary stops acknowledging first
  REQUIRE(c.wait([&] { return !c.primary_epochs.empty(); }));
  CHECK(*c.epoch() > first);
  REQUIRE(a.wait([&] { return a.followed_epoch == *c.epoch(); }));
  CHECK(a.followed_address == "c:6379");
  CHECK(a.primary_epochs.empty());
}

TEST_CASE("coordinator: the leader key vanishes when the primary's lease is revoked") {
  const EtcdProcess etcd;
  Node a(etcd.endpoint(), "a", 1);
  a.c->start();
  REQUIRE(a.wait([&] { return !a.primary_epochs.empty(); }));
  const auto epoch = *a.epoch();
  const EtcdClient client({etcd.endpoint(), 2000ms});
  client.revoke(a.c->lease().lease_id);  // as if it had expired
  CHECK_FALSE(client.get("/prevalent/test/leader"));
  // The primary notices (its next refresh or read), stops acknowledging, takes a new lease
  // and, being the only member, wins the next epoch.
  REQUIRE(a.wait([&] { return a.stops == 1 && a.primary_epochs.size() == 2; }));
  CHECK_FALSE(a.acknowledged_after_stop);
  CHECK(a.primary_epochs[1] > epoch);
  CHECK(a.c->may_acknowledge());
}

TEST_CASE("coordinator: a leader key on the node's own lease (a lost campaign answer) is its") {
  const EtcdProcess etcd;
  Node a(etcd.endpoint(), "a", 1, 30s);  // it would not campaign itself for 30 s
  a.c->start();
  REQUIRE(a.wait([&] { return a.c->lease().lease_id != 0; }));
  // What a campaign whose answer timed out leaves behind: the key, on a's lease.
  const EtcdClient client({etcd.endpoint(), 2000ms});
  const auto created =
      client.txn({etcd_compare::create_revision_is("/prevalent/test/leader", 0)},
                 {etcd_op::put("/prevalent/test/leader", R"({"node":"a","address":"a:6379"})",
                               a.c->lease().lease_id)});
  REQUIRE(created.succeeded);
  REQUIRE(a.wait([&] { return !a.primary_epochs.empty(); }));
  CHECK(*a.epoch() == created.revision);
  CHECK(a.c->may_acknowledge());
}

TEST_CASE("coordinator: when a primary's lease expires its key goes, and a follower takes over") {
  const EtcdProcess etcd;
  const EtcdClient client({etcd.endpoint(), 2000ms});
  // A primary that dies: its leader key on a lease of 2 s that nobody refreshes.
  const auto granted_sent = steady::now();
  const etcd_lease lease = client.grant(2);
  const auto created = client.txn(
      {etcd_compare::create_revision_is("/prevalent/test/leader", 0)},
      {etcd_op::put("/prevalent/test/leader", R"({"node":"old","address":"old:1"})", lease.id)});
  REQUIRE(created.succeeded);
  Node b(etcd.endpoint(), "b", 3);
  b.c->start();
  REQUIRE(b.wait([&] { return b.followed_epoch != 0; }));
  CHECK(b.followed_address == "old:1");
  CHECK(b.followed_epoch == created.revision);
  REQUIRE(b.wait([&] { return !b.primary_epochs.empty(); }));
  CHECK(*b.epoch() > created.revision);
  // Not before the old lease could have expired: TTL after its grant was sent.
  CHECK(b.primary_at - granted_sent >= std::chrono::seconds(lease.ttl));
  const auto leader = client.get("/prevalent/test/leader");
  REQUIRE(leader);
  CHECK(leader->create_revision == *b.epoch());
  CHECK(leader->lease == b.c->lease().lease_id);
}

TEST_CASE(
    "coordinator: with etcd stopped, the primary stops acknowledging before its lease "
    "can expire, and takes a new epoch once etcd is back") {
  const EtcdProcess etcd;
  Node a(etcd.endpoint(), "a", 1);
  Node b(etcd.endpoint(), "b", 0);
  a.c->start();
  b.c->start();
  REQUIRE(a.wait([&] { return !a.primary_epochs.empty(); }));
  REQUIRE(b.wait([&] { return b.followed_epoch != 0; }));
  const auto epoch = *a.epoch();
  CHECK(a.c->may_acknowledge());

  etcd.pause();
  const auto paused = steady::now();
  REQUIRE(a.wait([&] { return a.stops == 1; }));
  // Recorded in must_stop_acknowledging(): the last successful refresh was sent at
  // lease_at_stop.last_refresh_sent, etcd cannot expire the lease before that + TTL; the
  // callback came before that instant, and no acknowledgement was allowed from then on.
  const auto ttl = std::chrono::seconds(a.lease_at_stop.ttl);
  CHECK(a.lease_at_stop.ttl == 2);
  CHECK(a.stopped_at < a.lease_at_stop.last_refresh_sent + ttl);
  CHECK(a.stopped_at >= a.lease_at_stop.deadline);  // not before its own deadline either
  CHECK(a.lease_at_stop.last_refresh_sent <= paused);
  CHECK_FALSE(a.acknowledged_after_stop);
  CHECK_FALSE(a.c->may_acknowledge());
  CHECK(b.primary_epochs.empty());  // nobody could campaign while etcd was stopped

  etcd.resume();
  // Either node may win the next epoch (a's durable_seq is higher, so a does unless its new
  // lease comes later than b's grace); there is exactly one primary and the epoch grew.
  REQUIRE(a.wait([&] { return a.primary_epochs.size() == 2 || b.epoch().has_value(); }, 20s));
  const auto next = a.primary_epochs.size() == 2 ? a.primary_epochs[1] : *b.epoch();
  CHECK(next > epoch);
  const EtcdClient client({etcd.endpoint(), 2000ms});
  const auto leader = client.get("/prevalent/test/leader");
  REQUIRE(leader);
  CHECK(leader->create_revision == next);
}

TEST_CASE("coordinator: bad options are refused, naming the option") {
  coordinator_callbacks cb;
  cb.durable_seq = [] { return std::uint64_t{0}; };
  coordinator_options o;
  o.cluster = "c";
  o.node = "n";
  o.address = "n:1";
  CHECK_THROWS_WITH_AS(Coordinator(
                           {},
                           [&] {
                             auto x = o;
                             x.cluster = "a/b";
                             return x;
                           }(),
                           cb),
                       doctest::Contains("cluster"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Coordinator(
                           {},
                           [&] {
                             auto x = o;
                             x.node = "";
                             return x;
                           }(),
                           cb),
                       doctest::Contains("node"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Coordinator({}, o, {}), doctest::Contains("durable_seq"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(Coordinator(
                           {},
                           [&] {
                             auto x = o;
                             x.lease_ttl = 0s;
                             return x;
                           }(),
                           cb),
                       doctest::Contains("lease_ttl"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(Coordinator(
                           {},
                           [&] {
                             auto x = o;
                             x.safety_margin = 5s;
                             x.lease_ttl = 3s;
                             return x;
                           }(),
                           cb),
                       doctest::Contains("safety_margin"), std::invalid_argument);
}

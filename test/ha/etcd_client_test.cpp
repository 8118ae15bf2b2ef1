// EtcdClient against a real etcd (test/ha/etcd_process.hpp): every operation round-trips,
// create-only-once transactions, leases and their keys, and deadlines: a stopped etcd makes
// every call fail with a timeout that names the endpoint, never hang.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "etcd_process.hpp"
#include "prevalent/ha/etcd_client.hpp"

using namespace prevalent::ha;
using namespace std::chrono_literals;
using prevalent::ha::test::EtcdProcess;

TEST_CASE("client: put, get, prefix, delete round-trip, with bytes that are not text") {
  const EtcdProcess etcd;
  const EtcdClient c({etcd.endpoint(), 2000ms});
  const std::string binary("a\0b\xff\x01z", 6);
  const auto rev = c.put("/t/a", binary);
  CHECK(rev > 0);
  c.put("/t/b", "two");
  c.put("/u/c", "elsewhere");

  const auto a = c.get("/t/a");
  REQUIRE(a);
  CHECK(a->key == "/t/a");
  CHECK(a->value == binary);
  CHECK(a->create_revision == rev);
  CHECK(a->mod_revision == rev);
  CHECK(a->version == 1);
  CHECK(a->lease == 0);
  CHECK_FALSE(c.get("/t/none"));

  const auto prefix = c.get_prefix("/t/");
  REQUIRE(prefix.kvs.size() == 2);
  CHECK(prefix.kvs[0].key == "/t/a");
  CHECK(prefix.kvs[1].key == "/t/b");
  CHECK(prefix.revision >= rev + 2);

  const auto rev2 = c.put("/t/a", "again");
  const auto a2 = c.get("/t/a");
  REQUIRE(a2);
  CHECK(a2->create_revision == rev);
  CHECK(a2->mod_revision == rev2);
  CHECK(a2->version == 2);

  CHECK(c.del("/t/a") == 1);
  CHECK(c.del("/t/a") == 0);
  CHECK_FALSE(c.get("/t/a"));
  CHECK(c.del_prefix("/t/") == 1);
  CHECK(c.get_prefix("/t/").kvs.empty());
  CHECK(c.get("/u/c"));  // outside the prefix
}

TEST_CASE("client: leases carry keys; revoke deletes them; keepalive of a gone lease is 0") {
  const EtcdProcess etcd;
  const EtcdClient c({etcd.endpoint(), 2000ms});
  const etcd_lease lease = c.grant(30);
  CHECK(lease.id != 0);
  CHECK(lease.ttl == 30);
  c.put("/l/k", "v", lease.id);
  const auto k = c.get("/l/k");
  REQUIRE(k);
  CHECK(k->lease == lease.id);
  CHECK(c.keepalive(lease.id) == 30);
  c.revoke(lease.id);
  CHECK_FALSE(c.get("/l/k"));
  CHECK(c.keepalive(lease.id) == 0);
  // etcd refuses a second revoke: an error that names the endpoint and the path.
  try {
    c.revoke(lease.id);
    FAIL("revoking a gone lease did not throw");
  } catch (const etcd_error& e) {
    CHECK(e.error_kind() == etcd_error::kind::status);
    CHECK(e.grpc_code() == 5);
    CHECK(std::string(e.what()).find(etcd.endpoint()) != std::string::npos);
    CHECK(std::string(e.what()).find("/v3/lease/revoke") != std::string::npos);
    CHECK(std::string(e.what()).find("lease not found") != std::string::npos);
  }
  // A put on a lease that does not exist fails the same way.
  CHECK_THROWS_AS(c.put("/l/k", "v", lease.id), etcd_error);
}

TEST_CASE("client: txn creates a key only once; compares on mod_revision and value") {
  const EtcdProcess etcd;
  const EtcdClient c({etcd.endpoint(), 2000ms});
  const auto create = [&](const std::string& value) {
    return c.txn({etcd_compare::create_revision_is("/x/leader", 0)},
                 {etcd_op::put("/x/leader", value), etcd_op::get("/x/leader")},
                 {etcd_op::get("/x/leader")});
  };
  const auto first = create("one");
  CHECK(first.succeeded);
  REQUIRE(first.ranges.size() == 2);
  CHECK(first.ranges[0].kvs.empty());  // the put's response
  REQUIRE(first.ranges[1].kvs.size() == 1);
  CHECK(first.ranges[1].kvs[0].create_revision == first.revision);

  const auto second = create("two");
  CHECK_FALSE(second.succeeded);
  REQUIRE(second.ranges.size() == 1);
  REQUIRE(second.ranges[0].kvs.size() == 1);
  CHECK(second.ranges[0].kvs[0].value == "one");
  CHECK(second.revision == first.revision);  // nothing written

  const auto mod = first.ranges[1].kvs[0].mod_revision;
  CHECK_FALSE(c.txn({etcd_compare::mod_revision_is("/x/leader", mod + 1)},
                    {etcd_op::put("/x/leader", "stale")})
                  .succeeded);
  CHECK(c.txn({etcd_compare::mod_revision_is("/x/leader", mod)}, {etcd_op::put("/x/leader", "3")})
            .succeeded);
  CHECK_FALSE(
      c.txn({etcd_compare::value_is("/x/leader", "one")}, {etcd_op::del("/x/leader")}).succeeded);
  CHECK(c.txn({etcd_compare::value_is("/x/leader", "3")}, {etcd_op::del("/x/leader")}).succeeded);
  CHECK_FALSE(c.get("/x/leader"));
  const auto prefix = c.txn({}, {etcd_op::put("/x/a", "1"), etcd_op::get_prefix("/x/")});
  REQUIRE(prefix.ranges.size() == 2);
  CHECK(prefix.ranges[1].kvs.size() == 1);
}

TEST_CASE("client: of many concurrent create-if-absent transactions exactly one wins") {
  const EtcdProcess etcd;
  constexpr int campaigners = 8;
  std::atomic<int> winners{0};
  std::atomic<std::int64_t> won_revision{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < campaigners; ++i) {
    threads.emplace_back([&, i] {
      const EtcdClient c({etcd.endpoint(), 5000ms});
      const auto r = c.txn({etcd_compare::create_revision_is("/race/leader", 0)},
                           {etcd_op::put("/race/leader", std::to_string(i))});
      if (r.succeeded) {
        ++winners;
        won_revision = r.revision;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(winners == 1);
  const auto leader = EtcdClient({etcd.endpoint(), 2000ms}).get("/race/leader");
  REQUIRE(leader);
  CHECK(leader->create_revision == won_revision);
}

TEST_CASE("client: a lease's key vanishes once its TTL has passed, never before") {
  const EtcdProcess etcd;
  const EtcdClient c({etcd.endpoint(), 2000ms});
  const auto sent = std::chrono::steady_clock::now();
  const etcd_lease lease = c.grant(2);
  c.put("/e/k", "v", lease.id);
  // The first answer without the key: etcd read it after the lease expired, and it expires
  // no sooner than TTL after it received the grant, which was after `sent`: the inequality
  // the coordinator's fail-stop deadline rests on (docs/REPLICATION.md).
  std::optional<std::chrono::steady_clock::time_point> gone_answered;
  while (std::chrono::steady_clock::now() < sent + 15s) {
    const bool present = c.get("/e/k").has_value();
    if (!present) {
      gone_answered = std::chrono::steady_clock::now();
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  REQUIRE(gone_answered);
  CHECK(*gone_answered - sent >= std::chrono::seconds(lease.ttl));
}

TEST_CASE("client: with etcd stopped (SIGSTOP) every call times out, naming endpoint and path") {
  const EtcdProcess etcd;
  const EtcdClient c({etcd.endpoint(), 300ms});
  const etcd_lease lease = c.grant(60);
  etcd.pause();
  int timeouts = 0;
  const auto expect_timeout = [&](const char* path, auto&& call) {
    const auto start = std::chrono::steady_clock::now();
    try {
      call();
      FAIL(path << " returned while etcd was stopped");
    } catch (const etcd_error& e) {
      CHECK(e.error_kind() == etcd_error::kind::timeout);
      const std::string what = e.what();
      CHECK(what.find(etcd.endpoint()) != std::string::npos);
      CHECK(what.find(path) != std::string::npos);
      CHECK(what.find("no answer within 300 ms") != std::string::npos);
      ++timeouts;
    }
    // Returned at the deadline, not much later (generous: loaded CI machines).
    CHECK(std::chrono::steady_clock::now() - start < 5s);
  };
  expect_timeout("/v3/lease/grant", [&] { c.grant(5); });
  expect_timeout("/v3/lease/keepalive", [&] { c.keepalive(lease.id); });
  expect_timeout("/v3/lease/revoke", [&] { c.revoke(lease.id); });
  expect_timeout("/v3/kv/put", [&] { c.put("/s/k", "v"); });
  expect_timeout("/v3/kv/range", [&] { c.get("/s/k"); });
  expect_timeout("/v3/kv/range", [&] { c.get_prefix("/s/"); });
  expect_timeout("/v3/kv/deleterange", [&] { c.del("/s/k"); });
  expect_timeout("/v3/kv/txn", [&] { c.txn({}, {etcd_op::get("/s/k")}); });
  CHECK(timeouts == 8);
  CHECK_FALSE(c.healthy());
  etcd.resume();
  // The same etcd works again. What the timed-out calls asked may have been applied after
  // all (they waited in etcd's socket): the revoke, for one, so the lease may be gone.
  const EtcdClient patient({etcd.endpoint(), 5000ms});
  CHECK(patient.healthy());
  patient.put("/s/after", "v");
  CHECK(patient.get("/s/after")->value == "v");
  const auto ttl = patient.keepalive(lease.id);
  CHECK((ttl == 0 || ttl == 60));
}

TEST_CASE("client: nothing listening, and bad endpoints, give clear errors") {
  const int port = prevalent::ha::test::free_port();  // nothing listens there
  const std::string endpoint = "http://127.0.0.1:" + std::to_string(port);
  const EtcdClient c({endpoint, 1000ms});
  try {
    c.get("/k");
    FAIL("get without a server returned");
  } catch (const etcd_error& e) {
    CHECK(e.error_kind() == etcd_error::kind::connection);
    CHECK(std::string(e.what()).find(endpoint) != std::string::npos);
    CHECK(std::string(e.what()).find("connect failed") != std::string::npos);
  }
  CHECK_FALSE(c.healthy());
  CHECK_THROWS_WITH_AS(EtcdClient({"https://127.0.0.1:2379"}),
                       doctest::Contains("https is not supported"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(EtcdClient({"127.0.0.1:2379"}), doctest::Contains("http://HOST:PORT"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(EtcdClient({"http://127.0.0.1:x"}),
                       doctest::Contains("port is not a number"), std::invalid_argument);
  CHECK_THROWS_AS(EtcdClient({endpoint, 0ms}), std::invalid_argument);
}

// Failover in process (issue 11, docs/REPLICATION.md "Failover in process"): a real etcd
// (etcd_process.hpp), three stores in temporary directories, each a ReplicatedStore whose
// ReplicationNode is driven by a Coordinator (2 s leases). The winner becomes primary of
// epoch = the leader key's revision and the others follow it; writes go under replicated(1).
// Injected: the replicas stop hearing the primary, which then writes one record nobody else
// has (not acknowledged: replicated(1) times out), then the primary "crashes" (coordinator
// abandoned without revoking its lease, node stopped). Verified: another node takes over with
// a higher epoch once the lease ran out; every acknowledged write is on it; the old primary
// rejoins as a replica, cuts its unacknowledged record off (kept in a .cut file) and all
// three converge to the same digest at the same sequence number. Bounded: about 10 s.
#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include <prevalent/error.hpp>
#include <prevalent/state_digest.hpp>

#include "../support.hpp"
#include "etcd_process.hpp"
#include "prevalent/ha/coordinator.hpp"
#include "prevalent/repl/replicated_store.hpp"

using namespace prevalent;
using namespace std::chrono_literals;
using prevalent::ha::test::EtcdProcess;
using steady = std::chrono::steady_clock;

namespace {

struct Ledger {
  std::map<std::string, long> entries;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Ledger, entries)
};

struct Put {
  static constexpr std::string_view name = "put";
  std::string key;
  long value = 0;
  void apply(Ledger& l, const Context&) const { l.entries[key] = value; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Put, key, value)
};

using Store3 = repl::ReplicatedStore<Ledger, Put>;

// One node: its directory, store, replication port and coordinator.
struct ClusterNode {
  std::string name;
  ::test::temp_dir dir;
  std::uint16_t port;
  std::unique_ptr<Store3> store;
  std::unique_ptr<ha::Coordinator> coordinator;

  ClusterNode(const std::string& etcd, std::string node_name)
      : name(std::move(node_name)), port(static_cast<std::uint16_t>(ha::test::free_port())) {
    store_options o;
    o.preallocate_bytes = 0;
    o.acks = ack_policy::replicated(1, 1500ms);
    repl::node_options n;
    n.read_timeout = 1000ms;
    store = std::make_unique<Store3>(dir.path(), o, n);
    start_coordinator(etcd);
  }
  void start_coordinator(const std::string& etcd) {
    ha::coordinator_options o;
    o.cluster = "failover";
    o.node = name;
    o.address = "127.0.0.1:" + std::to_string(port);
    o.lease_ttl = 2s;
    o.election_grace = 300ms;
    o.poll_interval = 100ms;
    o.safety_margin = 500ms;
    ha::coordinator_callbacks cb;
    Store3* s = store.get();
    cb.durable_seq = [s] { return s->durable_sequence(); };
    cb.became_primary = [s, p = port](std::int64_t epoch) {
      s->node().become_primary(static_cast<std::uint64_t>(epoch), p);
    };
    cb.follow = [s](const std::string& address, std::int64_t epoch) {
      s->node().follow(repl::endpoint::parse(address), static_cast<std::uint64_t>(epoch));
    };
    cb.must_stop_acknowledging = [s] { s->node().stop_acknowledging("lease lost"); };
    cb.log = [n = name](const std::string& line) { MESSAGE(n << ": " << line); };
    coordinator = std::make_unique<ha::Coordinator>(ha::etcd_options{etcd, 1000ms}, o, cb);
    coordinator->start();
  }
  bool is_primary() const {
    return coordinator && coordinator->may_acknowledge() &&
           store->node().role() == repl::node_role::primary;
  }
  digest128 digest() const {
    return store->query([](const Ledger& l) {
      return state_digest(detail::store_access<Ledger, Put>::serialize(l, codec::json));
    });
  }
};

// The write path of a server: acknowledged only if the node may acknowledge before and after.
bool write(ClusterNode& n, const std::string& key, long value) {
  if (!n.coordinator->may_acknowledge()) return false;
  try {
    n.store->execute(Put{key, value});
  } catch (const error&) {
    return false;  // refused, or not replicated in time: not acknowledged
  }
  return n.coordinator->may_acknowledge();
}

ClusterNode* wait_primary(std::vector<std::unique_ptr<ClusterNode>>& nodes,
                          const ClusterNode* not_this, steady::time_point until) {
  while (steady::now() < until) {
    for (auto& n : nodes)
      if (n.get() != not_this && n->is_primary()) return n.get();
    std::this_thread::sleep_for(10ms);
  }
  return nullptr;
}

}  // namespace

TEST_CASE("failover: a crashed primary's successor has every acknowledged write; it rejoins") {
  const EtcdProcess etcd;
  const auto until = steady::now() + 45s;
  std::vector<std::unique_ptr<ClusterNode>> nodes;
  for (const char* name : {"a", "b", "c"})
    nodes.push_back(std::make_unique<ClusterNode>(etcd.endpoint(), name));

  ClusterNode* first = wait_primary(nodes, nullptr, until);
  REQUIRE(first != nullptr);
  const auto first_epoch = first->store->node().epoch();
  CHECK(first_epoch == static_cast<std::uint64_t>(first->coordinator->epoch()));
  // Both others follow it (their follow() may come a poll after the election).
  while (first->store->node().replicas().size() < 2 && steady::now() < until)
    std::this_thread::sleep_for(10ms);
  REQUIRE(first->store->node().replicas().size() == 2);
  std::map<std::string, long> acknowledged;
  for (int i = 0; acknowledged.size() < 40 && steady::now() < until; ++i)
    if (write(*first, "k" + std::to_string(i), i)) acknowledged["k" + std::to_string(i)] = i;
  REQUIRE(acknowledged.size() == 40);
  for (auto& n : nodes)  // one primary in this epoch
    if (n.get() != first) CHECK(n->store->node().role() == repl::node_role::replica);

  // The replicas stop hearing the primary; its next write reaches nobody (not acknowledged).
  for (auto& n : nodes)
    if (n.get() != first) n->store->node().stop();
  CHECK_FALSE(write(*first, "unreplicated", -1));
  const std::uint64_t first_last = first->store->last_sequence();
  // Crash: the lease is not revoked (the successor waits for it to run out), serving stops.
  const auto crashed_at = steady::now();
  first->coordinator->abandon();
  first->store->node().stop();

  ClusterNode* second = wait_primary(nodes, first, until);
  REQUIRE(second != nullptr);
  bool written = false;
  while (!written && steady::now() < until) written = write(*second, "after", 1);
  const auto failover = steady::now() - crashed_at;
  REQUIRE(written);
  acknowledged["after"] = 1;
  MESSAGE("failover (crash to the first acknowledged write on the new primary): "
          << std::chrono::duration_cast<std::chrono::milliseconds>(failover).count()
          << " ms with a 2 s lease");
  CHECK(second->store->node().epoch() > first_epoch);
  // Every acknowledged write is on the new primary.
  second->store->query([&](const Ledger& l) {
    for (const auto& [key, value] : acknowledged) {
      const auto it = l.entries.find(key);
      CHECK_MESSAGE(it != l.entries.end(), key);
      if (it != l.entries.end()) CHECK(it->second == value);
    }
    CHECK(l.entries.count("unreplicated") == 0);
  });

  // The old primary comes back (a new coordinator, as a restarted process would have) and
  // follows the new one, cutting off the record only it had.
  first->start_coordinator(etcd.endpoint());
  for (int i = 0; i < 10; ++i)
    if (write(*second, "more" + std::to_string(i), i)) acknowledged["more" + std::to_string(i)] = i;
  bool converged = false;
  while (!converged && steady::now() < until) {
    const auto seq = second->store->last_sequence();
    const auto d = second->digest();
    converged = true;
    for (auto& n : nodes) converged &= n->store->last_sequence() == seq && n->digest() == d;
    if (!converged) std::this_thread::sleep_for(20ms);
  }
  CHECK(converged);
  CHECK(first->store->node().role() == repl::node_role::replica);
  CHECK(first->store->node().lag().cuts == 1);
  CHECK(first->store->query([](const Ledger& l) { return l.entries.count("unreplicated"); }) == 0);
  bool kept = false;
  for (const auto& e : std::filesystem::directory_iterator(first->dir.path()))
    kept |= e.path().filename().string().find(".cut-" + std::to_string(first_last - 1)) !=
            std::string::npos;
  CHECK(kept);
  for (auto& n : nodes) n->coordinator->stop();
  for (auto& n : nodes) n->store->close();
}

// Replication in prevalent-kv (issue 11, docs/REPLICATION.md "In the kv server"): a primary
// serves its journal to replicas (--repl-port, prevalent-repl's ReplicationPrimary on the
// AsyncStore's store), a fixed replica (--replica-of HOST:PORT) follows one (prevalent-repl's
// ReplicaLink applying into the AsyncStore's store, which refuses commands), or a node of a
// cluster with automatic failover (--etcd: a ReplicationNode driven by a prevalent-ha
// Coordinator, cluster.cpp). What INFO replication, ROLE and WAIT report comes from here.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "prevalent/repl/replica.hpp"
#include "server.hpp"

namespace prevalent::repl {
class ReplicationNode;
}
namespace prevalent::ha {
class Coordinator;
}

namespace kv {

// prevalent-kv --etcd URL --cluster NAME --node NAME [--lease-ttl S] [--advertise HOST].
struct cluster_config {
  std::string etcd;     // http://host:port of etcd's client URL
  std::string cluster;  // keys under /prevalent/<cluster>/
  std::string node;     // this node's name, unique in the cluster
  unsigned lease_ttl = 10;
  std::string advertise;  // the host others reach this node at (published)
  std::uint16_t repl_port = 0;
  int client_port = 0;
};

// What a cluster node does when it must restart itself (a snapshot catch-up, a cut-back, a
// coordinator callback that failed): prevalent-kv closes the store, does the change and
// re-executes itself.
struct cluster_hooks {
  std::function<void(const prevalent::repl::detail::snapshot_file&)> install;
  std::function<void(std::uint64_t keep_through)> cut;
  std::function<void(const std::string& why)> restart;
};

class Replication {
 public:
  // A primary serving replicas on 127.0.0.1:`port` (0: any free port).
  Replication(KvAsyncStore& store, std::uint16_t port);
  // A replica of `primary` ("host:port"): marks the store read-only and follows. `install`
  // runs on the link's thread when the replica is too far behind and must install the
  // primary's snapshot (prevalent-kv closes the store, installs it and re-executes itself).
  Replication(KvAsyncStore& store, const std::string& primary,
              std::function<void(const prevalent::repl::detail::snapshot_file&)> install);
  // A node of a cluster with automatic failover: the store is read-only until the coordinator
  // makes it primary (start() starts the coordinator).
  Replication(KvAsyncStore& store, const cluster_config& config, cluster_hooks hooks);
  ~Replication();
  Replication(const Replication&) = delete;
  Replication& operator=(const Replication&) = delete;

  // Writes get -READONLY: a fixed replica, or a cluster node that is not an acknowledging
  // primary at the moment.
  bool is_replica() const;
  bool is_fixed_replica() const { return link_ != nullptr; }
  bool is_cluster_node() const { return node_ != nullptr; }
  // False while a cluster node may not acknowledge (not primary, or its lease's deadline
  // passed): a write made durable meanwhile is answered with an error, not +OK.
  bool may_acknowledge() const;
  std::uint16_t repl_port() const { return primary_ ? primary_->port() : 0; }
  // A cluster node: starts its coordinator (after the server listens).
  void start();
  // Stops serving or following (before the store closes); a cluster node's coordinator stops
  // first and revokes its lease, so a successor need not wait for the TTL.
  void stop();

  // INFO's Replication section's fields, in Redis's names (offsets are sequence numbers).
  void info(const std::function<void(std::string_view, const std::string&)>& field) const;
  // ROLE's reply.
  std::string role_reply() const;
  // How many replicas acknowledged `seq` durable (WAIT); 0 on a replica.
  unsigned replicas_at(std::uint64_t seq) const;

 private:
  KvAsyncStore& store_;
  std::unique_ptr<prevalent::repl::ReplicationPrimary> primary_;
  prevalent::repl::endpoint primary_at_;
  std::unique_ptr<prevalent::repl::detail::ReplicaLink> link_;
  // A cluster node (cluster.cpp).
  void cluster_info(const std::function<void(std::string_view, const std::string&)>& field) const;
  std::string cluster_role_reply() const;
  std::string primary_client_address() const;
  cluster_config config_;
  std::string client_address_;
  // The node's role as the write path sees it, without ReplicationNode's mutex (held across
  // role changes, which may take a while): true once become_primary() returned, false before
  // follow() or stop_acknowledging() start.
  std::atomic<bool> acting_primary_{false};
  std::unique_ptr<prevalent::repl::ReplicationNode> node_;
  // After node_, so it is destroyed (stopped) first; shared_ptr so that this header and the
  // build without prevalent-ha (cluster_stub.cpp) need no complete Coordinator.
  std::shared_ptr<prevalent::ha::Coordinator> coordinator_;
};

namespace detail {
// The AsyncStore's store core (replication hooks) and its typed replay of durable records
// (`batch`, or null: whatever the journal holds past the state).
prevalent::detail::StoreCore& core_of(KvAsyncStore& store);
void apply_records(KvAsyncStore& store, const std::vector<prevalent::raw_record>* batch);
}  // namespace detail

// Standalone (no --repl-port, no --replica-of): INFO's fields of a master without replicas.
void standalone_info(KvAsyncStore& store,
                     const std::function<void(std::string_view, const std::string&)>& field);

}  // namespace kv

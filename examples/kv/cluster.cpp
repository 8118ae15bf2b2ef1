// prevalent-kv --etcd (issue 11, docs/REPLICATION.md "In the kv server"): a node of a cluster
// with automatic failover. A prevalent-ha Coordinator elects the primary through etcd and
// drives a ReplicationNode over the AsyncStore's store: primary of an epoch (serving replicas
// on --repl-port), replica of the elected node, or fenced when its lease can no longer be
// proven. The write path asks may_acknowledge() as it hands +OK to the socket (connection.cpp).
// Built without prevalent-ha (PREVALENT_KV_HA 0: lib/ha needs Boost >= 1.81 and libsodium),
// --etcd is refused with a message saying so, and the other modes work as ever.
#if PREVALENT_KV_HA
#include <chrono>
#include <iostream>
#include <prevalent/ha/coordinator.hpp>

#include "prevalent/repl/replication_node.hpp"
#include "replication.hpp"
#include "reply.hpp"

namespace kv {
namespace {

void log_line(const std::string& line) { std::cerr << "prevalent-kv: " << line << std::endl; }

}  // namespace

Replication::Replication(KvAsyncStore& store, const cluster_config& config, cluster_hooks hooks)
    : store_(store),
      config_(config),
      client_address_(config.advertise + ":" + std::to_string(config.client_port)) {
  using node_hooks = prevalent::repl::ReplicationNode::hooks;
  node_ = std::make_unique<prevalent::repl::ReplicationNode>(
      node_hooks{[this](const std::function<void(prevalent::detail::StoreCore&)>& f) {
                   f(detail::core_of(store_));
                 },
                 [this](const std::vector<prevalent::raw_record>* batch) {
                   detail::apply_records(store_, batch);
                 },
                 std::move(hooks.install), std::move(hooks.cut)});

  prevalent::ha::coordinator_options o;
  o.cluster = config.cluster;
  o.node = config.node;
  o.address = config.advertise + ":" + std::to_string(config.repl_port);
  o.client_address = client_address_;
  o.lease_ttl = std::chrono::seconds(config.lease_ttl);
  // The poll and the election grace are the Coordinator's defaults, scaled to the TTL (TTL 2 s:
  // polls every 100 ms, grace 200 ms; 5 s and longer: 250 and 500 ms).
  prevalent::ha::coordinator_callbacks cb;
  auto* node = node_.get();
  auto* s = &store_;
  // A callback that throws would leave the coordinator's view and the node's role apart (a
  // "primary" whose store refuses commands, or a replica that follows nobody): it is logged,
  // the node stops acknowledging, and the process restarts (re-executes itself) so a fresh
  // coordinator joins the cluster again.
  auto failed = [this, node, restart = hooks.restart, etcd = config.etcd](const std::string& what,
                                                                          const char* error) {
    acting_primary_ = false;
    const std::string why = what + " failed: " + error;
    log_line("cluster: " + why + "; stops acknowledging and restarts");
    try {
      node->stop_acknowledging(why);
    } catch (...) {
    }
    // The lease goes too (best effort), with the leader key if this node held it, so another
    // node need not wait for the TTL (the restarted process takes a new lease).
    try {
      const std::int64_t lease = coordinator_->lease().lease_id;
      if (lease != 0)
        prevalent::ha::EtcdClient({etcd, std::chrono::milliseconds(1000)}).revoke(lease);
    } catch (const std::exception& e) {
      log_line(std::string("cluster: could not revoke the lease: ") + e.what());
    }
    restart(why);
  };
  cb.durable_seq = [s] { return s->sync().durable_sequence(); };
  cb.became_primary = [this, node, failed, port = config.repl_port](std::int64_t epoch) {
    try {
      node->become_primary(static_cast<std::uint64_t>(epoch), port);
      acting_primary_ = true;
      log_line("cluster: primary of epoch " + std::to_string(epoch) + ", serving replicas on " +
               "127.0.0.1:" + std::to_string(port));
    } catch (const std::exception& e) {
      failed("becoming the primary of epoch " + std::to_string(epoch), e.what());
    }
  };
  cb.follow = [this, node, failed](const std::string& address, std::int64_t epoch) {
    acting_primary_ = false;
    try {
      node->follow(prevalent::repl::endpoint::parse(address), static_cast<std::uint64_t>(epoch));
      log_line("cluster: following " + address + " (epoch " + std::to_string(epoch) + ")");
    } catch (const std::exception& e) {
      failed("following " + address, e.what());
    }
  };
  cb.must_stop_acknowledging = [this, node] {
    acting_primary_ = false;
    try {
      node->stop_acknowledging("lease lost");
    } catch (const std::exception& e) {
      // A node that cannot fence itself must not go on: dying is the fence.
      log_line(std::string("cluster: could not stop acknowledging: ") + e.what() + "; exiting");
      std::cerr.flush();
      std::_Exit(70);
    }
  };
  cb.log = [](const std::string& line) { log_line(line); };
  coordinator_ = std::make_shared<prevalent::ha::Coordinator>(
      prevalent::ha::etcd_options{config.etcd, std::chrono::milliseconds(0)}, o, cb);
}

void Replication::start() {
  if (coordinator_) coordinator_->start();
}

void Replication::stop() {
  if (coordinator_) coordinator_->stop();  // stops acknowledging, revokes the lease
  if (node_) node_->stop();
  if (primary_) primary_->stop();
  if (link_) link_->stop();
}

bool Replication::may_acknowledge() const {
  if (!node_) return true;
  return acting_primary_.load() && coordinator_->may_acknowledge();
}

std::string Replication::primary_client_address() const {
  if (may_acknowledge()) return client_address_;
  const auto seen = coordinator_->last_seen_primary();
  if (!seen || seen->node == config_.node) return "";
  return seen->client_address;
}

void Replication::cluster_info(
    const std::function<void(std::string_view, const std::string&)>& field) const {
  const auto role = node_->role();
  const std::uint64_t applied = store_.sync().last_sequence();
  const std::uint64_t durable = store_.sync().durable_sequence();
  if (may_acknowledge()) {
    const auto replicas = node_->replicas();
    field("role", "master");
    field("connected_slaves", std::to_string(replicas.size()));
    for (std::size_t i = 0; i < replicas.size(); ++i)
      field("slave" + std::to_string(i), "ip=127.0.0.1,port=0,state=online,offset=" +
                                             std::to_string(replicas[i].durable_seq) + ",lag=0");
    field("master_repl_offset", std::to_string(applied));
  } else {
    const auto lag = node_->lag();
    const auto primary = node_->primary();
    field("role", "slave");
    field("master_host", primary ? primary->host : "");
    field("master_port", primary ? std::to_string(primary->port) : "0");
    field("master_link_status", lag.connected ? "up" : "down");
    const long long heard =
        lag.since_heard == std::chrono::steady_clock::duration::max()
            ? -1
            : std::chrono::duration_cast<std::chrono::seconds>(lag.since_heard).count();
    field("master_last_io_seconds_ago", std::to_string(heard));
    field("master_sync_in_progress", "0");
    field("slave_repl_offset", std::to_string(applied));
    field("slave_read_only", "1");
    field("connected_slaves", "0");
    field("master_repl_offset", std::to_string(applied));
    field("prevalent_primary_seq", std::to_string(lag.primary_seq));
    field("prevalent_lag_records",
          std::to_string(lag.primary_seq > applied ? lag.primary_seq - applied : 0));
    field("prevalent_catch_ups", std::to_string(lag.catch_ups));
    field("prevalent_cuts", std::to_string(lag.cuts));
    if (!lag.last_error.empty()) field("prevalent_last_error", lag.last_error);
  }
  field("prevalent_node", config_.node);
  field("prevalent_node_role", prevalent::repl::to_string(role));
  field("prevalent_epoch", std::to_string(node_->epoch()));
  field("prevalent_primary", primary_client_address());
  field("prevalent_durable_seq", std::to_string(durable));
  field("prevalent_repl_port", std::to_string(config_.repl_port));
}

std::string Replication::cluster_role_reply() const {
  std::string out;
  if (may_acknowledge()) {
    const auto replicas = node_->replicas();
    reply::array(out, 3);
    reply::bulk(out, "master");
    reply::integer(out, static_cast<long long>(store_.sync().last_sequence()));
    reply::array(out, replicas.size());
    for (const auto& r : replicas) {
      reply::array(out, 3);
      reply::bulk(out, "127.0.0.1");
      reply::bulk(out, "0");
      reply::bulk(out, std::to_string(r.durable_seq));
    }
    return out;
  }
  const auto primary = node_->primary();
  reply::array(out, 5);
  reply::bulk(out, "slave");
  reply::bulk(out, primary ? primary->host : "");
  reply::integer(out, primary ? primary->port : 0);
  reply::bulk(out, node_->lag().connected ? "connected" : "connect");
  reply::integer(out, static_cast<long long>(store_.sync().last_sequence()));
  return out;
}

}  // namespace kv

#else  // !PREVALENT_KV_HA
#include <stdexcept>

#include "prevalent/repl/replication_node.hpp"
#include "replication.hpp"

namespace kv {

Replication::Replication(KvAsyncStore& store, const cluster_config&, cluster_hooks)
    : store_(store) {
  throw std::runtime_error(
      "--etcd: this prevalent-kv was built without prevalent-ha (failover through etcd needs "
      "Boost >= 1.81 and libsodium at build time)");
}

void Replication::start() {}

void Replication::stop() {
  if (primary_) primary_->stop();
  if (link_) link_->stop();
}

bool Replication::may_acknowledge() const { return true; }
std::string Replication::primary_client_address() const { return ""; }
void Replication::cluster_info(
    const std::function<void(std::string_view, const std::string&)>&) const {}
std::string Replication::cluster_role_reply() const { return ""; }

}  // namespace kv

#endif

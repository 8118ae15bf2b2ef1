// ReplicationNode (replication_node.hpp): role changes of one node of a replicated store.
#include "prevalent/repl/replication_node.hpp"

#include "prevalent/detail/store_core.hpp"

namespace prevalent::repl {

const char* to_string(node_role r) {
  switch (r) {
    case node_role::none: return "none";
    case node_role::primary: return "primary";
    case node_role::replica: return "replica";
    case node_role::fenced: return "fenced";
  }
  return "?";
}

namespace {
using core_t = ::prevalent::detail::StoreCore;
}  // namespace

ReplicationNode::ReplicationNode(hooks h, node_options options)
    : hooks_(std::move(h)), options_(options) {
  hooks_.with_core([](core_t& c) { c.set_read_only("this node has no role yet"); });
}

ReplicationNode::~ReplicationNode() { stop(); }

void ReplicationNode::stop_link() {
  if (link_) link_->stop();
  link_.reset();
  following_.reset();
}

void ReplicationNode::stop_serving() {
  if (serving_) serving_->stop();
  serving_.reset();
}

detail::ReplicaLink::hooks ReplicationNode::link_hooks(const std::string& why) {
  // The owner's reopen gives a new store: it must refuse commands as the old one did.
  auto h = hooks_;
  auto read_only = [with_core = hooks_.with_core, why] {
    with_core([&](core_t& c) { c.set_read_only(why); });
  };
  if (hooks_.install)
    h.install = [install = hooks_.install, read_only](const detail::snapshot_file& f) {
      try {
        install(f);
      } catch (...) {
        read_only();
        throw;
      }
      read_only();
    };
  if (hooks_.cut)
    h.cut = [cut = hooks_.cut, read_only](std::uint64_t keep_through) {
      try {
        cut(keep_through);
      } catch (...) {
        read_only();
        throw;
      }
      read_only();
    };
  return h;
}

void ReplicationNode::become_primary(std::uint64_t epoch, std::uint16_t port) {
  std::lock_guard g(mutex_);
  if (role_ == node_role::primary && epoch_ == epoch) return;
  stop_link();
  stop_serving();
  // What the link stored but did not apply: the state must be the journal's before commands.
  hooks_.apply(nullptr);
  hooks_.with_core([&](core_t& c) {
    c.promote(epoch);
    serving_ = std::make_unique<ReplicationPrimary>(c, port);
  });
  role_ = node_role::primary;
  epoch_ = epoch;
}

void ReplicationNode::follow(const endpoint& primary, std::uint64_t epoch) {
  std::lock_guard g(mutex_);
  if (role_ == node_role::replica && following_ && following_->to_string() == primary.to_string()) {
    epoch_ = epoch;
    return;
  }
  const std::string why =
      "this store is a replica of " + primary.to_string() + "; send commands to the primary";
  // Stop acknowledging first: no command of the old role is acknowledged from here on.
  hooks_.with_core([&](core_t& c) { c.fence(why); });
  stop_serving();
  stop_link();
  link_ = std::make_unique<detail::ReplicaLink>(primary, link_hooks(why), options_.retry);
  link_->set_read_timeout(options_.read_timeout);
  link_->start();
  following_ = primary;
  role_ = node_role::replica;
  epoch_ = epoch;
}

void ReplicationNode::stop_acknowledging(const std::string& why) {
  // The refusal first, without the role lock: a role change in progress must not delay it.
  hooks_.with_core([&](core_t& c) { c.fence(why); });
  std::lock_guard g(mutex_);
  // Again under the lock: a become_primary() that ran in between promoted the store again.
  if (role_ != node_role::replica) hooks_.with_core([&](core_t& c) { c.fence(why); });
  stop_serving();
  if (role_ == node_role::primary) role_ = node_role::fenced;
}

void ReplicationNode::stop() {
  std::lock_guard g(mutex_);
  if (role_ == node_role::primary)
    hooks_.with_core([&](core_t& c) { c.fence("this node stopped"); });
  stop_serving();
  stop_link();
  if (role_ != node_role::none) role_ = node_role::fenced;
}

node_role ReplicationNode::role() const {
  std::lock_guard g(mutex_);
  return role_;
}

std::uint64_t ReplicationNode::epoch() const {
  std::lock_guard g(mutex_);
  return epoch_;
}

std::uint16_t ReplicationNode::port() const {
  std::lock_guard g(mutex_);
  return serving_ ? serving_->port() : 0;
}

std::optional<endpoint> ReplicationNode::primary() const {
  std::lock_guard g(mutex_);
  return following_;
}

replica_lag ReplicationNode::lag() const {
  replica_lag l;
  {
    std::lock_guard g(mutex_);
    if (link_) l = link_->lag();
  }
  hooks_.with_core([&](core_t& c) {
    l.applied_seq = c.last_applied();
    l.durable_seq = c.durable_sequence();
  });
  return l;
}

std::vector<replica_mark> ReplicationNode::replicas() const {
  std::vector<replica_mark> out;
  {
    std::lock_guard g(mutex_);
    if (!serving_) return out;
  }
  hooks_.with_core([&](core_t& c) {
    for (const auto& [id, seq] : c.replica_marks()) out.push_back({id, seq});
  });
  return out;
}

}  // namespace prevalent::repl

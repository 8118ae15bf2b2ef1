// One node of a replicated store that can change role without reopening its store (issue 11,
// docs/REPLICATION.md "Promotion and demotion"): it serves replicas as the primary of an epoch
// (become_primary), follows another node as a replica (follow, cutting its journal back when it
// holds records the new primary lacks), or has stopped acknowledging (stop_acknowledging: a
// primary that lost its lease). What a failover coordinator (prevalent::ha::Coordinator) drives:
//
//   cb.became_primary = [&](std::int64_t e) { node.become_primary(e, port); };
//   cb.follow = [&](const std::string& at, std::int64_t e) { node.follow(endpoint::parse(at), e);
//   }; cb.must_stop_acknowledging = [&] { node.stop_acknowledging("lease lost"); };
//
// The node does not own the store: it reaches it through hooks (ReplicaLink::hooks), so a
// server whose store is owned by something else (an AsyncStore) can use it; the two hooks that
// need the store closed and opened again (a snapshot catch-up, a cut-back) are the owner's
// (ReplicatedStore does it in process; a server may as well re-exec itself).
// Threads: every member may be called from any thread; role changes are serialized.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "prevalent/repl/replica.hpp"

namespace prevalent::repl {

enum class node_role {
  none,     // not started: read-only, neither serving nor following
  primary,  // accepts commands (of its epoch) and serves replicas
  replica,  // follows a primary; commands refused
  fenced,   // stopped acknowledging (was primary); commands refused; not following yet
};
const char* to_string(node_role r);

struct node_options {
  // Between connection attempts while following.
  std::chrono::milliseconds retry{200};
  // No message from the primary for this long (heartbeats come every 200 ms): reconnect.
  std::chrono::milliseconds read_timeout{2000};
};

// A replica as the primary sees it (INFO replication): one per connection.
struct replica_mark {
  std::uint64_t connection = 0;
  std::uint64_t durable_seq = 0;
};

class ReplicationNode {
 public:
  using hooks = detail::ReplicaLink::hooks;
  // Starts as node_role::none: the store is made read-only until a role is given.
  explicit ReplicationNode(hooks h, node_options options = {});
  ~ReplicationNode();  // stop()
  ReplicationNode(const ReplicationNode&) = delete;
  ReplicationNode& operator=(const ReplicationNode&) = delete;

  // Becomes the primary of `epoch`, serving replicas on 127.0.0.1:`port` (0: any free port):
  // stops following, applies whatever the link stored but did not apply, then
  // StoreCore::promote(epoch) (the next record starts a segment of `epoch`; throws
  // errc::stale_epoch if the journal holds a newer one) and starts serving. Again with the same
  // epoch while primary: nothing.
  void become_primary(std::uint64_t epoch, std::uint16_t port = 0);
  // Becomes a replica of `primary` (elected for `epoch`, kept for role reports): stops
  // acknowledging first (commands refused, waiters of replicated(k) fail), stops serving,
  // then follows (cutting back if needed). Again with the same primary: nothing.
  void follow(const endpoint& primary, std::uint64_t epoch);
  // Fail-stop: commands are refused and waiters of replicated(k) fail with `why`, at once;
  // then it stops serving replicas. The role becomes fenced (a replica stays a replica).
  void stop_acknowledging(const std::string& why = "this node stopped acknowledging");
  // Stops serving and following; the store stays read-only.
  void stop();

  node_role role() const;
  std::uint64_t epoch() const;              // of the current or last role (0 before any)
  std::uint16_t port() const;               // serving port while primary, else 0
  std::optional<endpoint> primary() const;  // followed while replica
  // While replica: how far behind (applied and durable seq from the store); else empty fields.
  replica_lag lag() const;
  // While primary: the replicas connected and their durable marks.
  std::vector<replica_mark> replicas() const;

 private:
  void stop_link();
  void stop_serving();
  detail::ReplicaLink::hooks link_hooks(const std::string& read_only_why);

  hooks hooks_;
  node_options options_;
  mutable std::mutex mutex_;  // guards the members below; held across role changes
  node_role role_ = node_role::none;
  std::uint64_t epoch_ = 0;
  std::optional<endpoint> following_;
  std::unique_ptr<ReplicationPrimary> serving_;
  std::unique_ptr<detail::ReplicaLink> link_;
};

}  // namespace prevalent::repl

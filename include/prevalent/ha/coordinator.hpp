// Leader election and fail-stop for a replicated store, coordinated through etcd
// (docs/REPLICATION.md, "Failover through etcd"). In the library prevalent-ha.
//
// Keys, under /prevalent/<cluster>/:
//   leader          {"node", "address"[, "client"]}: created by a transaction whose compare is
//                   create_revision == 0, attached to the primary's lease; its create_revision
//                   is the epoch (term) of that primary.
//   members/<node>  {"address", "durable_seq", "role", "epoch"[, "client"]}: every node's, on its
//   own lease,
//                   rewritten when it changes and at every lease refresh.
//
// A Coordinator runs one thread that refreshes the node's lease every TTL/3, reads the cluster's
// keys every poll_interval, publishes the member key and, when the leader key is absent for
// election_grace, campaigns if no member advertises a higher durable_seq (ties: the smallest
// node name). A second thread enforces fail-stop: the primary's right to acknowledge ends at
// (time the last successful refresh was SENT) + (TTL etcd returned) - safety_margin; at that
// moment, unless a newer refresh succeeded, must_stop_acknowledging() is called and
// may_acknowledge() is false from then on, before etcd can have expired the lease. The node
// then steps down (its lease is dropped) and campaigns again with a new lease, as any replica.
//
// Callbacks run on the coordinator's threads (must_stop_acknowledging() also on the thread that
// calls stop()), one at a time; they must not call stop(). A leader key naming this node on its
// current lease (a campaign whose answer timed out but took effect) makes it primary.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "prevalent/ha/etcd_client.hpp"

namespace prevalent::ha {

struct coordinator_options {
  std::string cluster;  // the key prefix /prevalent/<cluster>/
  std::string node;     // unique in the cluster; names the member key
  std::string address;  // where others reach this node (host:port), published as is
  std::chrono::seconds lease_ttl{10};
  // Subtracted from the lease's end as seen by this node (0: TTL/10, at least 100 ms); it must
  // cover the clock-rate difference between this node and etcd over one TTL plus the time the
  // owner needs to stop acknowledging after must_stop_acknowledging().
  std::chrono::milliseconds safety_margin{0};
  // How long the leader key must stay absent before a node campaigns (0: two polls; lets
  // every member publish its durable_seq, which each does at its next poll, first).
  std::chrono::milliseconds election_grace{0};
  // How often the cluster's keys are read (0: TTL/20, between 100 and 250 ms). Failover takes
  // what is left of the dead primary's lease, etcd's expiry sweep (up to 0.5 s), a poll, the
  // grace and a poll of the others to follow: short polls keep it near the TTL, and one range
  // read per poll is nothing to etcd.
  std::chrono::milliseconds poll_interval{0};
  // Deadline of each etcd call (0: TTL/3).
  std::chrono::milliseconds request_timeout{0};
  // Optional: where the node's own clients reach it (host:port), published as "client" in the
  // member and leader keys so any node can tell a client who the primary is.
  std::string client_address;
};

struct coordinator_callbacks {
  // This node's durable sequence number, published and compared in elections. Required.
  std::function<std::uint64_t()> durable_seq;
  // This node won the election: it is the primary of `epoch`.
  std::function<void(std::int64_t epoch)> became_primary;
  // Another node is primary (called again when the primary or the epoch changes).
  std::function<void(const std::string& primary_address, std::int64_t epoch)> follow;
  // Fail-stop: this node can no longer prove it holds the lease; stop acknowledging at once.
  std::function<void()> must_stop_acknowledging;
  // Optional: what went wrong or changed (etcd unreachable, lease lost, stepped down, ...).
  std::function<void(const std::string&)> log;
};

struct member_info {
  std::string node;
  std::string address;
  std::uint64_t durable_seq = 0;
  std::string role;  // "primary" or "replica"
  std::int64_t epoch = 0;
  std::string client_address;  // "" when the node publishes none
};

struct primary_info {
  std::string node;
  std::string address;
  std::int64_t epoch = 0;      // the leader key's create_revision
  std::string client_address;  // "" when the primary publishes none
};

// What this node knows of its lease (for metrics and tests).
struct lease_status {
  std::int64_t lease_id = 0;  // 0: none at the moment
  std::int64_t ttl = 0;       // seconds, as etcd last returned
  // When the last successful grant or refresh was sent, and when this node stops trusting it
  // (sent + ttl - safety_margin).
  std::chrono::steady_clock::time_point last_refresh_sent{};
  std::chrono::steady_clock::time_point deadline{};
};

class Coordinator {
 public:
  Coordinator(etcd_options etcd, coordinator_options options, coordinator_callbacks callbacks);
  ~Coordinator();  // stop()
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // Starts the threads; the first lease is granted on the coordinator's thread.
  void start();
  // Stops the threads; a primary stops acknowledging, then the lease is revoked (best effort),
  // which deletes the leader key so another node can take over without waiting for the TTL.
  void stop();
  // What a crash leaves behind, for tests and for a process about to die: stops the threads
  // (a primary stops acknowledging) without revoking the lease, so the leader key stays until
  // the lease runs out (TTL) and a successor waits for that, as after a real crash.
  void abandon();

  // True while this node is primary and the deadline of its lease has not passed. The write
  // path checks it before acknowledging each command.
  bool may_acknowledge() const noexcept;
  bool is_primary() const noexcept { return primary_.load(); }
  std::int64_t epoch() const noexcept { return epoch_.load(); }  // 0 until first primary
  lease_status lease() const;

  // Read from etcd now (throw etcd_error when it does not answer).
  std::vector<member_info> members() const;
  std::optional<primary_info> primary() const;
  // The leader key as the coordinator's thread last read it (no etcd call: for INFO-like
  // reports on a thread that must not block); empty when it was absent or not read yet.
  std::optional<primary_info> last_seen_primary() const;

  std::string leader_key() const { return prefix_ + "leader"; }
  std::string member_key(const std::string& node) const { return prefix_ + "members/" + node; }

 private:
  void halt(bool revoke);
  void run();
  void watchdog();
  void refresh_lease();
  void ensure_lease();
  void revoke_abandoned();
  void observe_and_elect();
  void publish_member(bool force);
  void campaign();
  // Fail-stop: no longer primary, must_stop_acknowledging(), and the lease is given up.
  void step_down(const std::string& why);
  void lease_lost(const std::string& why);
  void become_primary(std::int64_t epoch);
  void say(const std::string& message);
  std::chrono::milliseconds sleep_time() const;

  EtcdClient client_;
  coordinator_options options_;
  coordinator_callbacks callbacks_;
  std::string prefix_;
  std::chrono::milliseconds margin_;
  std::chrono::milliseconds poll_;
  std::chrono::milliseconds grace_;
  std::chrono::milliseconds refresh_every_;

  mutable std::mutex mutex_;  // the lease fields and the wakeups
  std::condition_variable wake_;
  std::mutex callback_mutex_;  // one callback at a time
  bool stopping_ = false;
  lease_status lease_;
  bool abandon_lease_ = false;           // step_down(): drop lease_ at the next turn
  std::vector<std::int64_t> abandoned_;  // leases to revoke (their keys go with them)
  std::chrono::steady_clock::time_point next_refresh_{};

  std::atomic<bool> primary_{false};
  std::atomic<std::int64_t> epoch_{0};
  std::atomic<std::int64_t> ack_deadline_ns_{0};  // steady_clock, since its epoch

  // The coordinator thread's own view.
  std::optional<std::chrono::steady_clock::time_point> leader_absent_since_;
  std::string followed_;  // "address@epoch" last passed to follow()
  mutable std::mutex seen_mutex_;
  std::optional<primary_info> seen_primary_;  // last_seen_primary()
  std::string published_;
  std::chrono::steady_clock::time_point published_at_{};

  std::thread thread_;
  std::thread watchdog_thread_;
};

}  // namespace prevalent::ha

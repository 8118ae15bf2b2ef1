// The replication wire protocol over TCP (issue 11, docs/REPLICATION.md "Wire format"), internal
// and first cut: a primary's ReplicationServer serves each connected replica the journal's
// durable records from the sequence number it asks for, as stored (RecordStream); a replica's
// ReplicationClient stores them verbatim (Journal::append_raw) and acknowledges its durable
// sequence number after each batch. Blocking Boost.Asio sockets, one thread per direction per
// connection: few replicas, each a long-lived stream.
//
// Threads: the server's accept and connection threads are its own; stop() (or the destructor)
// ends them. A client runs on the thread that calls run().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "prevalent/journal.hpp"
#include "prevalent/repl/replica.hpp"
#include "prevalent/replication_log.hpp"

namespace prevalent::repl {

// Wire constants (docs/REPLICATION.md).
inline constexpr std::uint32_t protocol_version = 1;
enum class message_type : std::uint8_t {
  hello = 1,
  records = 2,
  ack = 3,
  error = 4,
  snapshot = 5,
  diverged = 6  // the replica holds records the primary lacks: cut back to a sequence number
};
// Raft's rule for where two histories part: the last sequence number of `journal`'s durable
// records whose epoch is <= `replica_epoch` (the epoch of a replica's last record). Records up
// to it are the same on both sides, because an epoch is one primary's (a fencing token).
std::uint64_t common_prefix_end(const Journal& journal, std::uint64_t replica_epoch);
// The default of ReplicationClient::read_timeout: 10 heartbeats.
inline constexpr std::chrono::milliseconds default_read_timeout{2000};
// The most payload bytes of records the server puts in one message (at least one record).
inline constexpr std::size_t max_batch_bytes = 1u << 20;
// The most payload bytes a replica gathers from messages already received into one write and
// one fdatasync.
inline constexpr std::size_t max_store_bytes = 8u << 20;
// A frame's body is at most this long (a record of the largest size fits).
inline constexpr std::uint32_t max_frame_bytes = (1u << 30) + (1u << 20);

class ReplicationServer {
 public:
  // What a replica's acknowledgements are reported to (a store under acks = replicated(k)):
  // `acked(id, seq)` after each ack of the connection numbered `id`, `gone(id)` when it ends.
  // Called on the connection's threads; must not block.
  struct ack_sink {
    std::function<void(std::uint64_t id, std::uint64_t seq)> acked;
    std::function<void(std::uint64_t id)> gone;
  };
  // Listens on 127.0.0.1:`port` (0: any free port, see port()).
  ReplicationServer(std::shared_ptr<Journal> journal, std::uint16_t port = 0, ack_sink sink = {});
  ~ReplicationServer();
  ReplicationServer(const ReplicationServer&) = delete;
  ReplicationServer& operator=(const ReplicationServer&) = delete;

  std::uint16_t port() const { return port_; }
  // A connected replica as the server sees it (include/prevalent/repl/replica.hpp).
  using replica_info = ::prevalent::repl::replica_info;
  // The replicas connected now that have acknowledged at least once (they do after hello),
  // in the order they connected.
  std::vector<replica_info> replicas() const;
  // The highest durable sequence number any replica acknowledged.
  std::uint64_t max_acked() const { return max_acked_.load(); }
  // Returns true once some replica acknowledged `seq` as durable, false when `until` passes.
  bool wait_acked(std::uint64_t seq, std::chrono::steady_clock::time_point until);
  void stop();

 private:
  struct impl;
  void serve(std::shared_ptr<void> socket);
  std::shared_ptr<Journal> journal_;
  std::unique_ptr<impl> impl_;
  std::uint16_t port_ = 0;
  ack_sink sink_;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> max_acked_{0};
  mutable std::mutex acked_mutex_;  // also guards replicas_
  std::condition_variable acked_cv_;
  std::map<std::uint64_t, replica_info> replicas_;  // connection id -> what it acknowledged
  std::thread acceptor_;
  std::mutex connections_mutex_;
  std::vector<std::thread> connections_;
};

class ReplicationClient {
 public:
  ReplicationClient(std::shared_ptr<Journal> journal, std::string host, std::uint16_t port);
  ~ReplicationClient();
  ReplicationClient(const ReplicationClient&) = delete;
  ReplicationClient& operator=(const ReplicationClient&) = delete;

  // Connects, asks for the records after the journal's last, and stores what comes until
  // stop() or the connection ends. Throws prevalent::error with the code the primary sent
  // (errc::too_far_behind: the replica needs a snapshot first) or that append_raw raised.
  void run();
  void stop();
  std::uint64_t primary_durable() const { return primary_durable_.load(); }  // last heard
  // When the last message (records or heartbeat) came from the primary; the epoch if none.
  std::chrono::steady_clock::time_point last_heard() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_heard_.load()));
  }
  // Called on run()'s thread after each batch is durable in the journal and acknowledged,
  // with the batch (a replica store applies the records there). Set before run().
  std::function<void(const std::vector<raw_record>& batch)> on_batch;
  // Called on run()'s thread for each heartbeat (a records message with none).
  std::function<void()> on_heartbeat;
  // The primary sent its newest snapshot file (the replica is too far behind): its name,
  // sequence number and bytes as stored. run() returns after it (the primary closes); the
  // caller installs it and connects again. Without it, run() throws errc::too_far_behind.
  std::function<void(std::string name, std::uint64_t last_seq, bytes content)> on_snapshot;
  // The primary answered that this replica's journal holds records it lacks (written by an
  // older primary, never replicated to this one): the replica must cut its journal back to
  // `keep_through` (cut_journal) and connect again. run() returns after it. Without it, run()
  // throws errc::sequence_gap with the primary's message.
  std::function<void(std::uint64_t keep_through, std::string why)> on_diverged;
  // A primary that sends nothing (not even a heartbeat, every 200 ms) for this long while the
  // connection stays open (a stopped process, a lost network) is given up: run() throws
  // errc::replication_timeout. Set before run().
  std::chrono::milliseconds read_timeout = default_read_timeout;

 private:
  struct impl;
  std::shared_ptr<Journal> journal_;
  std::string host_;
  std::uint16_t port_;
  std::unique_ptr<impl> impl_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> primary_durable_{0};
  std::atomic<std::chrono::steady_clock::rep> last_heard_{0};
  std::atomic<int> fd_{-1};  // the socket's descriptor while run() has it open, for stop()
};

}  // namespace prevalent::repl

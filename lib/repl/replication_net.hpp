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
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "prevalent/journal.hpp"
#include "prevalent/replication_log.hpp"

namespace prevalent::repl {

// Wire constants (docs/REPLICATION.md).
inline constexpr std::uint32_t protocol_version = 1;
enum class message_type : std::uint8_t { hello = 1, records = 2, ack = 3, error = 4 };
// The most payload bytes of records the server puts in one message (at least one record).
inline constexpr std::size_t max_batch_bytes = 1u << 20;
// A frame's body is at most this long (a record of the largest size fits).
inline constexpr std::uint32_t max_frame_bytes = (1u << 30) + (1u << 20);

class ReplicationServer {
 public:
  // Listens on 127.0.0.1:`port` (0: any free port, see port()).
  ReplicationServer(std::shared_ptr<Journal> journal, std::uint16_t port = 0);
  ~ReplicationServer();
  ReplicationServer(const ReplicationServer&) = delete;
  ReplicationServer& operator=(const ReplicationServer&) = delete;

  std::uint16_t port() const { return port_; }
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
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> max_acked_{0};
  std::mutex acked_mutex_;
  std::condition_variable acked_cv_;
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

 private:
  struct impl;
  std::shared_ptr<Journal> journal_;
  std::string host_;
  std::uint16_t port_;
  std::unique_ptr<impl> impl_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> primary_durable_{0};
};

}  // namespace prevalent::repl

// Server: prevalent-kv's listeners (TCP and a unix socket), its connections, the expiry timer
// and the counters INFO shows. Runs on one io_context thread; the store's journal and
// snapshot threads do the waiting, so no handler here ever blocks on the disk.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <prevalent/asio.hpp>
#include <string>
#include <unordered_map>

#include "kv_store.hpp"
#include "resp_parser.hpp"

namespace kv {

using KvAsyncStore =
    prevalent::AsyncStore<KvState, SetCommand, MsetCommand, DelCommand, GetdelCommand, GetexCommand,
                          IncrbyCommand, IncrbyfloatCommand, AppendCommand, SetrangeCommand,
                          ExpireCommand, PersistCommand, RenameCommand, FlushallCommand,
                          HsetCommand, HdelCommand, HincrbyCommand, HincrbyfloatCommand,
                          ExecCommand, BatchCommand, ExpireDueCommand>;

struct server_options {
  std::string dir;
  std::string bind = "127.0.0.1";
  int port = 6379;
  std::string unixsocket;
  std::string requirepass;
  resp_limits limits;
  std::size_t max_pending_bytes = 64u << 20;  // unsent reply bytes per client before reading stops
  std::size_t max_pending_replies = 10000;    // requests in flight per client before reading stops
  std::size_t max_clients = 10000;
  unsigned idle_timeout_s = 0;        // 0: clients are never closed for idling
  unsigned expire_interval_ms = 100;  // how often the expiry timer looks for due keys
  std::string sync = "always";        // for INFO
  std::string codec = "msgpack";      // for INFO
};

struct server_stats {
  std::uint64_t connections_received = 0;
  std::uint64_t commands_processed = 0;
  std::uint64_t rejected_connections = 0;
  std::uint64_t expired_keys = 0;
  std::uint64_t changes_since_save = 0;
  std::int64_t last_save_unix = 0;
  bool last_save_ok = true;
  bool save_in_progress = false;
  std::string last_write_error;  // the store's failure, once writes fail
};

class Connection;
class Replication;

class Server {
 public:
  Server(boost::asio::io_context& io, KvAsyncStore& store, server_options options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the TCP port (the real one with port 0; 0 if TCP is off).
  int start();
  // Stops accepting and the timers; connections finish their requests in flight, then close.
  void stop();

  KvAsyncStore& store() { return store_; }
  const server_options& options() const { return options_; }
  server_stats& stats() { return stats_; }
  std::size_t connection_count() const { return connections_.size(); }
  int port() const { return port_; }
  std::chrono::steady_clock::time_point started() const { return started_; }
  bool stopping() const { return stopping_; }
  void forget(std::uint64_t id) { connections_.erase(id); }
  // Takes a snapshot (SAVE and BGSAVE); `done` gets the error text, "" on success.
  void save(std::function<void(std::string)> done);
  // Replication (issue 11): set before start(); null for a standalone server.
  void set_replication(Replication* r) { replication_ = r; }
  Replication* replication() const { return replication_; }
  bool read_only() const;  // a replica: writes get -READONLY
  // A cluster node (--etcd) may answer a durable write with +OK only while this holds (it is
  // the primary and its lease's deadline has not passed); always true otherwise.
  bool may_acknowledge() const;

 private:
  void accept_tcp();
  void accept_local();
  template <class Socket>
  void admit(Socket socket);
  void arm_expiry();

  boost::asio::io_context& io_;
  KvAsyncStore& store_;
  server_options options_;
  server_stats stats_;
  boost::asio::ip::tcp::acceptor tcp_;
  boost::asio::local::stream_protocol::acceptor local_;
  boost::asio::steady_timer expiry_timer_;
  std::unordered_map<std::uint64_t, std::weak_ptr<Connection>> connections_;
  std::uint64_t next_id_ = 1;
  int port_ = 0;
  bool stopping_ = false;
  Replication* replication_ = nullptr;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

long long wall_ms();  // the clock reads use

// The server's own counters in the Prometheus text format, to follow the store's
// (prevalent_kv_connected_clients, prevalent_kv_commands_processed_total, ...).
std::string server_metrics(Server& server);

}  // namespace kv

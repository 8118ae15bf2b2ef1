// Connection: one client of prevalent-kv. Reads requests (pipelined: many may be in flight),
// runs each as a query, a typed store command or a server command, and writes the replies in
// request order. Stops reading while the client's unsent replies or requests in flight exceed
// the limits (a slow reader cannot make the server buffer without bound). A protocol error or
// QUIT closes the connection once the replies before it are sent.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/generic/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "command_table.hpp"
#include "resp_parser.hpp"

namespace kv {

class Server;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  using socket_type = boost::asio::generic::stream_protocol::socket;

  Connection(Server& server, socket_type socket, std::uint64_t id);
  void start();
  // Stops reading; closes once the replies to requests already read are sent.
  void shutdown();
  std::uint64_t id() const { return id_; }
  // Writes `reply` and closes (e.g. max clients reached), without reading anything.
  void reject(std::string reply);

 private:
  friend struct server_commands;

  void read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void process();
  void dispatch(args argv);
  void run_read(args argv, std::size_t slot);
  void run_write(write_op op, std::size_t slot);
  // Runs the writes collected from consecutive pipelined requests (one record if several).
  void flush_batch();
  // Runs the reads collected from consecutive pipelined requests (one query if several).
  void flush_reads();
  void run_exec(std::size_t slot);
  void run_server(const command_spec& spec, args& argv, std::size_t slot);
  // The reply of a server command that can answer at once (nullopt: it answers later).
  std::optional<std::string> server_reply(const command_spec& spec, args& argv, std::size_t slot);
  std::size_t open_slot();
  void fill(std::size_t slot, std::string reply);
  // Fills the reply of a durable write: it leaves as the acknowledgement only if the node may
  // still acknowledge when the reply is handed to the socket (checked in flush()), else the
  // client gets -TRYAGAIN in its place.
  void fill_acknowledgement(std::size_t slot, std::string reply);
  void withdraw_acknowledgements_if_lease_lost();
  void flush();
  void close();
  bool over_limits() const;
  void arm_idle_timer();
  std::string write_error(const std::error_code& ec, const std::string& message);
  // -TRYAGAIN: a write that is durable here but may not be acknowledged (a cluster node that
  // lost its lease or stopped being primary meanwhile).
  static std::string lease_lost_error(const std::string& cause);
  bool acknowledge_ok() const;
  // WAIT numreplicas timeout: replies once `n` replicas acknowledged last_write_seq_, or at
  // `deadline`, with how many did.
  std::optional<std::string> wait_error(const args& a);
  void run_wait(long long n, std::chrono::steady_clock::time_point deadline, std::size_t slot);

  Server& server_;
  socket_type socket_;
  boost::asio::steady_timer idle_timer_;
  std::uint64_t id_;
  RequestParser parser_;
  std::array<char, 16384> buffer_{};
  std::string in_;
  // Replies in request order: slot first_slot_ + i is slots_[i]; a reply is sent once it and
  // every one before it are filled.
  struct pending_reply {
    std::optional<std::string> text;
    bool acknowledges_write = false;
  };
  std::deque<pending_reply> slots_;
  std::size_t first_slot_ = 0;
  std::string out_;  // replies ready to write, after `writing_`
  // Where out_ holds write acknowledgements (offset, length): replaced by -TRYAGAIN if the node
  // may no longer acknowledge when out_ is handed to the socket.
  std::vector<std::pair<std::size_t, std::size_t>> out_acknowledgements_;
  // Bytes of read replies built (queries build them in the initiating call) but not yet in
  // out_: counted by the limit before they complete, so one request of a large value stops
  // the reading at once.
  std::shared_ptr<std::atomic<std::size_t>> query_bytes_ =
      std::make_shared<std::atomic<std::size_t>>(0);
  std::string writing_;       // the write in flight
  bool reading_ = false;      // an async read is outstanding
  bool read_closed_ = false;  // EOF, error or shutdown: no more requests
  bool close_after_ = false;  // QUIT or protocol error: close once the replies are out
  bool closed_ = false;
  bool processing_ = false;  // inside process(): fill() must not start it again

  // Consecutive writes of the requests being processed, and their slots; flushed before any
  // request that reads the store, and at the end of each process().
  std::vector<write_op> batch_;
  std::vector<std::size_t> batch_slots_;
  std::size_t batch_bytes_ = 0;
  std::vector<args> reads_;
  std::vector<std::size_t> read_slots_;

  // The store's last sequence number after this client's last write was queued (>= its
  // record's: what WAIT waits for, like Redis's c->woff).
  std::uint64_t last_write_seq_ = 0;

  // Session.
  bool authenticated_ = false;
  std::string name_;
  bool in_multi_ = false;
  bool multi_failed_ = false;
  std::vector<args> queued_;
  std::vector<std::pair<std::string, std::uint64_t>> watched_;
};

}  // namespace kv

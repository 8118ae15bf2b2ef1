#include "connection.hpp"

#include <boost/asio/write.hpp>

#include "replication.hpp"
#include "reply.hpp"
#include "server.hpp"

namespace kv {

Connection::Connection(Server& server, socket_type socket, std::uint64_t id)
    : server_(server),
      socket_(std::move(socket)),
      idle_timer_(socket_.get_executor()),
      id_(id),
      parser_(server.options().limits),
      authenticated_(server.options().requirepass.empty()) {
  parser_.set_unauthenticated(!authenticated_);
}

void Connection::start() {
  arm_idle_timer();
  read();
}

void Connection::reject(std::string reply) {
  read_closed_ = true;
  close_after_ = true;
  out_ = std::move(reply);
  flush();
}

void Connection::shutdown() {
  if (read_closed_) return;
  read_closed_ = true;
  close_after_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(socket_type::shutdown_receive, ignored);  // a pending read ends with EOF
  flush();
}

void Connection::arm_idle_timer() {
  const unsigned timeout = server_.options().idle_timeout_s;
  if (timeout == 0) return;
  idle_timer_.expires_after(std::chrono::seconds(timeout));
  idle_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;
    if (self->slots_.empty()) return self->close();
    self->arm_idle_timer();  // requests in flight: not idle, look again later
  });
}

void Connection::read() {
  if (reading_ || read_closed_ || close_after_ || closed_ || over_limits()) return;
  reading_ = true;
  socket_.async_read_some(boost::asio::buffer(buffer_),
                          [self = shared_from_this()](const boost::system::error_code& ec,
                                                      std::size_t n) { self->on_read(ec, n); });
}

void Connection::on_read(const boost::system::error_code& ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    read_closed_ = true;
    if (slots_.empty() && writing_.empty()) close();
    return;
  }
  in_.append(buffer_.data(), n);
  arm_idle_timer();
  process();
  read();
}

void Connection::process() {
  if (processing_) return;
  processing_ = true;
  std::size_t offset = 0;
  while (!close_after_ && !over_limits()) {
    std::size_t consumed = 0;
    const auto s = parser_.parse(std::string_view(in_).substr(offset), consumed);
    offset += consumed;
    if (s == RequestParser::status::need_more) break;
    if (s == RequestParser::status::error) {
      fill(open_slot(), reply::error_text("ERR " + parser_.error()));
      close_after_ = true;
      break;
    }
    dispatch(parser_.take_request());
  }
  flush_batch();
  flush_reads();
  in_.erase(0, offset);
  processing_ = false;
}

bool Connection::over_limits() const {
  const auto& o = server_.options();
  return out_.size() + writing_.size() + query_bytes_->load() > o.max_pending_bytes ||
         slots_.size() >= o.max_pending_replies;
}

std::size_t Connection::open_slot() {
  slots_.emplace_back();
  return first_slot_ + slots_.size() - 1;
}

void Connection::fill(std::size_t slot, std::string reply) {
  if (closed_) return;
  slots_[slot - first_slot_].text = std::move(reply);
  while (!slots_.empty() && slots_.front().text.has_value()) {
    if (slots_.front().acknowledges_write)
      out_acknowledgements_.emplace_back(out_.size(), slots_.front().text->size());
    out_ += *slots_.front().text;
    slots_.pop_front();
    ++first_slot_;
  }
  flush();
}

void Connection::fill_acknowledgement(std::size_t slot, std::string reply) {
  if (closed_) return;
  slots_[slot - first_slot_].acknowledges_write = true;
  fill(slot, std::move(reply));
}

// The acknowledgements in out_ become -TRYAGAIN if the node lost the right to acknowledge
// since their writes completed (a reply waits for the replies before it, and for the write in
// flight on the socket).
void Connection::withdraw_acknowledgements_if_lease_lost() {
  if (out_acknowledgements_.empty()) return;
  if (!acknowledge_ok()) {
    const std::string refused = lease_lost_error("");
    std::string rebuilt;
    std::size_t from = 0;
    for (const auto& [offset, length] : out_acknowledgements_) {
      rebuilt.append(out_, from, offset - from);
      rebuilt += refused;
      from = offset + length;
    }
    rebuilt.append(out_, from, std::string::npos);
    out_.swap(rebuilt);
  }
  out_acknowledgements_.clear();
}

void Connection::flush() {
  if (closed_ || !writing_.empty()) return;
  if (out_.empty()) {
    if (slots_.empty() && (close_after_ || read_closed_)) {
      close();
      return;
    }
    // Drained below the limits: parse what is buffered, then read more.
    if (!processing_ && !close_after_ && !in_.empty() && !over_limits()) process();
    read();
    return;
  }
  withdraw_acknowledgements_if_lease_lost();
  writing_.swap(out_);
  boost::asio::async_write(
      socket_, boost::asio::buffer(writing_),
      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
        self->writing_.clear();
        if (ec) return self->close();
        self->flush();
      });
}

void Connection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  idle_timer_.cancel();
  socket_.shutdown(socket_type::shutdown_both, ignored);
  socket_.close(ignored);
  server_.forget(id_);
}

std::string Connection::write_error(const std::error_code& ec, const std::string& message) {
  if (ec == prevalent::errc::command_rejected) return reply::error_text(message);
  const std::string cause = message.empty() ? ec.message() : message;
  if (ec == prevalent::errc::closed) return reply::error_text("ERR server is shutting down");
  if (ec == prevalent::errc::read_only_replica) {
    // Refused before it ran (the node stopped being primary since the request was read), or
    // applied and durable here but the node stopped acknowledging while it waited for its
    // replicas (the store's message says "applied and durable"): outcome unknown.
    if (cause.find("applied and durable") != std::string::npos) return lease_lost_error(cause);
    return reply::error_text("READONLY You can't write against a read only replica.");
  }
  // --acks replicated:K: fewer than K replicas had it in time. Redis's error for too few
  // replicas; the message says the write is applied and durable here (outcome unknown after a
  // failover), and it is no disk error.
  if (ec == prevalent::errc::replication_timeout) return reply::error_text("NOREPLICAS " + cause);
  if (ec == prevalent::errc::store_failed) {  // an earlier write met an I/O error: name it
    const std::string& first = server_.stats().last_write_error;
    return reply::error_text("ERR writes are refused after a disk error (reads go on): " +
                             (first.empty() ? cause : first));
  }
  server_.stats().last_write_error = cause;
  // The write that met the error: it may or may not be on disk (README, "Guarantees").
  return reply::error_text("ERR disk error, write not acknowledged: " + cause);
}

std::string Connection::lease_lost_error(const std::string& cause) {
  return reply::error_text(
      "TRYAGAIN this node stopped being the primary before the write was acknowledged; its "
      "outcome is unknown (it may or may not survive the failover)" +
      (cause.empty() ? std::string() : ": " + cause));
}

// A cluster node acknowledges a durable write only if it still may (its lease's deadline has
// not passed): checked when the reply is handed to the socket (flush()).
bool Connection::acknowledge_ok() const { return server_.may_acknowledge(); }

void Connection::dispatch(args argv) {
  auto& stats = server_.stats();
  ++stats.commands_processed;
  const std::size_t slot = open_slot();
  if (iequals(argv[0], "quit")) {
    close_after_ = true;
    return fill(slot, "+OK\r\n");
  }
  const command_spec* spec = find_command(argv[0]);
  std::optional<std::string> refused;
  if (spec == nullptr) {
    refused = unknown_command_error(argv);
  } else if (!arity_ok(*spec, argv.size())) {
    refused = arity_error(spec->name);
    if (spec->name == "exec") {  // Redis aborts the transaction (if any) with its own text
      in_multi_ = false;
      queued_.clear();
      watched_.clear();
      return fill(slot,
                  reply::error_text("EXECABORT Transaction discarded because of: wrong number of "
                                    "arguments for 'exec' command"));
    }
  } else if (!authenticated_ && spec->name != "auth" && spec->name != "hello" &&
             spec->name != "reset") {
    refused = reply::error_text("NOAUTH Authentication required.");
  } else if (spec->kind == command_kind::write && server_.read_only()) {
    refused = reply::error_text("READONLY You can't write against a read only replica.");
  }
  if (refused) {
    if (in_multi_) multi_failed_ = true;
    return fill(slot, std::move(*refused));
  }
  if (in_multi_ && spec->name != "exec" && spec->name != "discard" && spec->name != "multi" &&
      spec->name != "watch" && spec->name != "reset") {
    queued_.push_back(std::move(argv));
    return fill(slot, "+QUEUED\r\n");
  }
  // The store sees the requests in order: a run of reads or of writes is flushed before a
  // request of another kind.
  if (spec->kind != command_kind::write) flush_batch();
  if (spec->kind != command_kind::read) flush_reads();
  switch (spec->kind) {
    case command_kind::read:
      reads_.push_back(std::move(argv));
      read_slots_.push_back(slot);
      // A run of reads is built in one query: at most 16, so the replies built before the
      // pending-bytes limit is seen exceed it by at most 16 replies.
      if (reads_.size() >= 16) flush_reads();
      return;
    case command_kind::write: {
      parsed_write parsed = spec->parse(argv, wall_ms());
      if (!parsed.op) return fill(slot, std::move(parsed.error));
      std::size_t bytes = 0;
      for (const auto& a : argv) bytes += a.size();
      // A batch stays far below store_options::max_record_bytes.
      if (!batch_.empty() && (batch_bytes_ + bytes > (1u << 20) || batch_.size() >= 256))
        flush_batch();
      batch_.push_back(std::move(*parsed.op));
      batch_slots_.push_back(slot);
      batch_bytes_ += bytes;
      return;
    }
    case command_kind::server: return run_server(*spec, argv, slot);
  }
}

void Connection::run_read(args argv, std::size_t slot) {
  const long long now = wall_ms();
  auto counted = std::make_shared<std::atomic<std::size_t>>(0);  // this reply's share
  server_.store().async_query(
      [argv = std::move(argv), now, counted, total = query_bytes_](const KvState& s) {
        std::string out;
        kv::run_read(s, argv, now, out);
        const std::size_t before = counted->exchange(out.size());  // f may run again
        total->fetch_add(out.size());
        total->fetch_sub(before);
        return out;
      },
      [self = shared_from_this(), slot, counted](std::error_code ec, std::string reply) {
        self->query_bytes_->fetch_sub(counted->exchange(0));
        if (ec) reply = reply::error_text("ERR " + ec.message());
        self->fill(slot, std::move(reply));
      });
}

void Connection::run_write(write_op op, std::size_t slot) {
  auto diag = std::make_shared<prevalent::diagnostics>();
  auto done = [self = shared_from_this(), slot, diag](std::error_code ec, std::string reply) {
    if (ec) return self->fill(slot, self->write_error(ec, diag->message()));
    ++self->server_.stats().changes_since_save;
    self->fill_acknowledgement(slot, std::move(reply));
  };
  std::visit([&](auto& cmd) { server_.store().async_execute(std::move(cmd), *diag, done); }, op);
  last_write_seq_ = server_.store().sync().last_sequence();
}

void Connection::flush_batch() {
  if (batch_.empty()) return;
  std::vector<write_op> ops;
  std::vector<std::size_t> slots;
  ops.swap(batch_);
  slots.swap(batch_slots_);
  batch_bytes_ = 0;
  if (ops.size() == 1) return run_write(std::move(ops[0]), slots[0]);
  auto diag = std::make_shared<prevalent::diagnostics>();
  server_.store().async_execute(BatchCommand{std::move(ops)}, *diag,
                                [self = shared_from_this(), slots = std::move(slots), diag](
                                    std::error_code ec, std::vector<std::string> replies) {
                                  if (ec) {
                                    const std::string error =
                                        self->write_error(ec, diag->message());
                                    for (const std::size_t slot : slots) self->fill(slot, error);
                                    return;
                                  }
                                  self->server_.stats().changes_since_save += slots.size();
                                  for (std::size_t i = 0; i < slots.size(); ++i)
                                    self->fill_acknowledgement(slots[i], std::move(replies[i]));
                                });
  last_write_seq_ = server_.store().sync().last_sequence();
}

void Connection::flush_reads() {
  if (reads_.empty()) return;
  std::vector<args> reads;
  std::vector<std::size_t> slots;
  reads.swap(reads_);
  slots.swap(read_slots_);
  if (reads.size() == 1) return run_read(std::move(reads[0]), slots[0]);
  const long long now = wall_ms();
  auto counted = std::make_shared<std::atomic<std::size_t>>(0);  // these replies' share
  server_.store().async_query(
      [reads = std::move(reads), now, counted, total = query_bytes_](const KvState& s) {
        std::vector<std::string> replies(reads.size());
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < reads.size(); ++i) {
          kv::run_read(s, reads[i], now, replies[i]);
          bytes += replies[i].size();
        }
        const std::size_t before = counted->exchange(bytes);  // f may run again
        total->fetch_add(bytes);
        total->fetch_sub(before);
        return replies;
      },
      [self = shared_from_this(), slots = std::move(slots), counted](
          std::error_code ec, std::vector<std::string> replies) {
        self->query_bytes_->fetch_sub(counted->exchange(0));
        for (std::size_t i = 0; i < slots.size(); ++i)
          self->fill(slots[i],
                     ec ? reply::error_text("ERR " + ec.message()) : std::move(replies[i]));
      });
}

void Connection::run_exec(std::size_t slot) {
  ExecCommand exec;
  exec.watched = std::move(watched_);
  watched_.clear();
  bool writes = false;
  const long long now = wall_ms();
  for (auto& argv : queued_) {
    const command_spec* spec = find_command(argv[0]);
    if (spec->kind == command_kind::read) {
      exec.items.emplace_back(read_op{std::move(argv)});
    } else if (spec->kind == command_kind::write) {
      parsed_write parsed = spec->parse(argv, now);
      if (parsed.op) {
        writes = true;
        exec.items.emplace_back(std::move(*parsed.op));
      } else {
        exec.items.emplace_back(fixed_reply{std::move(parsed.error)});
      }
    } else {
      auto r = server_reply(*spec, argv, slot);
      exec.items.emplace_back(fixed_reply{r ? std::move(*r) : std::string("+OK\r\n")});
    }
  }
  queued_.clear();
  if (!writes) {  // nothing to journal: run the batch as a query (WATCH checked there too)
    server_.store().async_query(
        [exec = std::move(exec), now](const KvState& s) {
          for (const auto& [key, version] : exec.watched)
            if (key_version(s, key, now) != version) return std::string("*-1\r\n");
          std::string out;
          reply::array(out, exec.items.size());
          for (const auto& item : exec.items) {
            if (const auto* r = std::get_if<read_op>(&item))
              kv::run_read(s, r->argv, now, out);
            else
              out += std::get<fixed_reply>(item).reply;
          }
          return out;
        },
        [self = shared_from_this(), slot](std::error_code ec, std::string reply) {
          if (ec) reply = reply::error_text("ERR " + ec.message());
          self->fill(slot, std::move(reply));
        });
    return;
  }
  auto diag = std::make_shared<prevalent::diagnostics>();
  server_.store().async_execute(
      std::move(exec), *diag,
      [self = shared_from_this(), slot, diag](std::error_code ec, std::string reply) {
        if (ec == prevalent::errc::command_rejected && diag->message() == watched_changed)
          return self->fill(slot, "*-1\r\n");
        if (ec) return self->fill(slot, self->write_error(ec, diag->message()));
        ++self->server_.stats().changes_since_save;
        self->fill_acknowledgement(slot, std::move(reply));
      });
  last_write_seq_ = server_.store().sync().last_sequence();
}

void Connection::run_wait(long long n, std::chrono::steady_clock::time_point deadline,
                          std::size_t slot) {
  // Polls every 5 ms on the connection's executor (a WAIT is rare and short; no thread waits).
  struct poll {
    std::shared_ptr<Connection> self;
    std::shared_ptr<boost::asio::steady_timer> timer;
    long long n;
    std::uint64_t seq;
    std::chrono::steady_clock::time_point deadline;
    std::size_t slot;
    void operator()() const {
      if (self->closed_) return;
      const Replication* r = self->server_.replication();
      const unsigned got = r ? r->replicas_at(seq) : 0;
      const auto now = std::chrono::steady_clock::now();
      if (static_cast<long long>(got) >= n || now >= deadline)
        return self->fill(slot, ":" + std::to_string(got) + "\r\n");
      timer->expires_after(std::chrono::milliseconds(5));
      timer->async_wait([p = *this](const boost::system::error_code&) { p(); });
    }
  };
  poll{shared_from_this(),
       std::make_shared<boost::asio::steady_timer>(socket_.get_executor()),
       n,
       last_write_seq_,
       deadline,
       slot}();
}

}  // namespace kv

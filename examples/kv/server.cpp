#include "server.hpp"

#include <boost/asio/write.hpp>
#include <filesystem>
#include <iostream>

#include "connection.hpp"
#include "replication.hpp"

namespace kv {

Server::Server(boost::asio::io_context& io, KvAsyncStore& store, server_options options)
    : io_(io),
      store_(store),
      options_(std::move(options)),
      tcp_(io),
      local_(io),
      expiry_timer_(io) {
  stats_.last_save_unix = wall_ms() / 1000;
}

Server::~Server() = default;

int Server::start() {
  using boost::asio::ip::tcp;
  if (options_.port >= 0 && !(options_.port == 0 && options_.bind.empty())) {
    const tcp::endpoint ep(boost::asio::ip::make_address(options_.bind),
                           static_cast<unsigned short>(options_.port));
    tcp_.open(ep.protocol());
    tcp_.set_option(tcp::acceptor::reuse_address(true));
    tcp_.bind(ep);
    tcp_.listen(511);
    port_ = tcp_.local_endpoint().port();
    accept_tcp();
  }
  if (!options_.unixsocket.empty()) {
    std::error_code ignored;
    std::filesystem::remove(options_.unixsocket, ignored);
    local_.open();
    local_.bind(boost::asio::local::stream_protocol::endpoint(options_.unixsocket));
    local_.listen(511);
    accept_local();
  }
  arm_expiry();
  return port_;
}

void Server::stop() {
  if (stopping_) return;
  stopping_ = true;
  boost::system::error_code ignored;
  tcp_.close(ignored);
  local_.close(ignored);
  expiry_timer_.cancel();
  if (!options_.unixsocket.empty()) {
    std::error_code e;
    std::filesystem::remove(options_.unixsocket, e);
  }
  auto live = connections_;  // shutdown() may erase
  for (auto& [id, weak] : live)
    if (auto c = weak.lock()) c->shutdown();
}

template <class Socket>
void Server::admit(Socket socket) {
  ++stats_.connections_received;
  if (stopping_) return;
  if constexpr (std::is_same_v<Socket, boost::asio::ip::tcp::socket>) {
    boost::system::error_code ignored;
    socket.set_option(boost::asio::ip::tcp::no_delay(true), ignored);
  }
  const std::uint64_t id = next_id_++;
  auto c = std::make_shared<Connection>(*this, Connection::socket_type(std::move(socket)), id);
  if (connections_.size() >= options_.max_clients) {
    ++stats_.rejected_connections;
    c->reject("-ERR max number of clients reached\r\n");
    return;
  }
  connections_.emplace(id, c);
  c->start();
}

void Server::accept_tcp() {
  tcp_.async_accept([this](const boost::system::error_code& ec, boost::asio::ip::tcp::socket s) {
    if (ec == boost::asio::error::operation_aborted || stopping_) return;
    if (!ec) admit(std::move(s));
    accept_tcp();
  });
}

void Server::accept_local() {
  local_.async_accept(
      [this](const boost::system::error_code& ec, boost::asio::local::stream_protocol::socket s) {
        if (ec == boost::asio::error::operation_aborted || stopping_) return;
        if (!ec) admit(std::move(s));
        accept_local();
      });
}

// Active expiry: every expire_interval_ms, if some deadline has passed, one journaled
// expire_due command drops the due keys (at most 10,000 per record; the next tick goes on).
void Server::arm_expiry() {
  // A replica expires nothing itself: its primary's expire_due records arrive (reads hide
  // keys past their deadline meanwhile, as on the primary). A cluster node looks while it is
  // not primary too, and expires nothing until it is.
  if (stopping_ || (replication_ != nullptr && replication_->is_fixed_replica())) return;
  expiry_timer_.expires_after(std::chrono::milliseconds(options_.expire_interval_ms));
  expiry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    const long long now = wall_ms();
    store_.async_query(
        [now](const KvState& s) {
          const long long next = s.next_deadline();
          return next != no_expiry && next <= now;
        },
        [this](std::error_code qec, bool due) {
          if (qec || !due || stopping_ || read_only()) return arm_expiry();
          store_.async_execute(ExpireDueCommand{}, [this](std::error_code xec, long long n) {
            if (!xec) stats_.expired_keys += static_cast<std::uint64_t>(n);
            arm_expiry();
          });
        });
  });
}

bool Server::read_only() const { return replication_ != nullptr && replication_->is_replica(); }

bool Server::may_acknowledge() const {
  return replication_ == nullptr || replication_->may_acknowledge();
}

void Server::save(std::function<void(std::string)> done) {
  stats_.save_in_progress = true;
  store_.async_snapshot([this, done = std::move(done)](std::error_code ec) {
    stats_.save_in_progress = false;
    stats_.last_save_ok = !ec;
    if (!ec) {
      stats_.last_save_unix = wall_ms() / 1000;
      stats_.changes_since_save = 0;
    }
    done(ec ? ec.message() : std::string());
  });
}

std::string server_metrics(Server& server) {
  const auto& st = server.stats();
  std::string out;
  auto metric = [&out](const char* name, const char* type, const char* help, std::uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
           name + " " + std::to_string(v) + "\n";
  };
  metric("prevalent_kv_connected_clients", "gauge", "Clients connected now.",
         server.connection_count());
  metric("prevalent_kv_connections_received_total", "counter", "Connections accepted.",
         st.connections_received);
  metric("prevalent_kv_commands_processed_total", "counter",
         "Redis commands processed (a pipeline of writes may be one store command).",
         st.commands_processed);
  metric("prevalent_kv_expired_keys_total", "counter", "Keys removed by expiry.", st.expired_keys);
  return out;
}

}  // namespace kv

// The replication wire protocol (replication_net.hpp, docs/REPLICATION.md "Wire format").
#include "replication_net.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <cstring>
#include <optional>

#include "../little_endian.hpp"
#include "prevalent/checksum.hpp"
#include "prevalent/error.hpp"
#include "prevalent/format.hpp"

namespace prevalent::repl {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using ::prevalent::detail::get_le;
using ::prevalent::detail::put_le;

constexpr std::uint8_t hello_magic[8] = {'P', 'R', 'V', 'L', 'R', 'E', 'P', 'L'};

// A frame: body length (4) | type (1) | body | crc32c(type ‖ body) (4).
void send_frame(tcp::socket& s, message_type type, const bytes& body) {
  bytes frame(4 + 1 + body.size() + 4);
  put_le(&frame[0], static_cast<std::uint32_t>(body.size()));
  frame[4] = static_cast<std::uint8_t>(type);
  std::copy(body.begin(), body.end(), frame.begin() + 5);
  put_le(&frame[5 + body.size()], crc32c(byte_view(frame).subspan(4, 1 + body.size())));
  asio::write(s, asio::buffer(frame));
}

// Reads one frame; throws errc::corrupt_record naming what was wrong with it.
message_type read_frame(tcp::socket& s, bytes& body) {
  std::uint8_t head[5];
  asio::read(s, asio::buffer(head));
  const auto length = get_le<std::uint32_t>(head);
  if (length > max_frame_bytes)
    throw error(errc::corrupt_record,
                "replication: frame of " + std::to_string(length) + " bytes announced");
  bytes rest(length + 4);
  asio::read(s, asio::buffer(rest));
  std::uint32_t crc = crc32c(byte_view(head + 4, 1));
  crc = crc32c(byte_view(rest).first(length), crc);
  if (crc != get_le<std::uint32_t>(&rest[length]))
    throw error(errc::corrupt_record, "replication: frame checksum mismatch");
  rest.resize(length);
  body = std::move(rest);
  const auto type = static_cast<message_type>(head[4]);
  if (type < message_type::hello || type > message_type::diverged)
    throw error(errc::corrupt_record,
                "replication: unknown message type " + std::to_string(head[4]));
  return type;
}

void need(const bytes& body, std::size_t at, std::size_t n, const char* what) {
  if (body.size() < at + n)
    throw error(errc::corrupt_record, std::string("replication: ") + what + " message cut short");
}

bytes u64_body(std::uint64_t v) {
  bytes b(8);
  put_le(&b[0], v);
  return b;
}

void send_error(tcp::socket& s, const prevalent::error& e) {
  const std::string what = e.what();
  bytes b(4 + what.size());
  put_le(&b[0], static_cast<std::uint32_t>(e.code().value()));
  std::memcpy(&b[4], what.data(), what.size());
  send_frame(s, message_type::error, b);
}

// The newest snapshot file in `dir`, as stored, as the body of a snapshot message: its
// sequence number (8), name length (4), name, content. Empty when there is none.
bytes newest_snapshot_message(Directory& dir) {
  std::optional<std::uint64_t> newest;
  std::string name;
  for (const auto& n : dir.list())
    if (auto seq = format::parse_snapshot_file_name(n); seq && (!newest || *seq > *newest)) {
      newest = seq;
      name = n;
    }
  if (!newest) return {};
  const bytes content = read_all(*dir.open(name, Directory::open_mode::read));
  if (content.size() + 12 + name.size() > max_frame_bytes)
    throw error(errc::too_far_behind, "replication: the newest snapshot " + dir.describe(name) +
                                          " is too large for one message (" +
                                          std::to_string(content.size()) + " bytes)");
  bytes b(12 + name.size() + content.size());
  put_le(&b[0], *newest);
  put_le(&b[8], static_cast<std::uint32_t>(name.size()));
  std::memcpy(&b[12], name.data(), name.size());
  std::copy(content.begin(), content.end(),
            b.begin() + static_cast<std::ptrdiff_t>(12 + name.size()));
  return b;
}

void shut(tcp::socket& s) {
  // The socket's descriptor only: another thread may be blocked reading from it.
  ::shutdown(s.native_handle(), SHUT_RDWR);
}

}  // namespace

std::uint64_t common_prefix_end(const Journal& journal, std::uint64_t replica_epoch) {
  // Epochs never decrease along a journal and each segment holds one epoch: the prefix ends
  // where the first segment of a newer epoch starts (dropped segments were before it).
  std::uint64_t end = journal.first_seq() > 0 ? journal.first_seq() - 1 : 0;
  for (const auto& seg : journal.segments()) {
    if (seg.epoch > replica_epoch) break;
    end = std::max(end, seg.last_seq);
  }
  return std::min(end, journal.durable_seq());
}

struct ReplicationServer::impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::mutex sockets_mutex;
  std::vector<std::shared_ptr<tcp::socket>> sockets;
};

ReplicationServer::ReplicationServer(std::shared_ptr<Journal> journal, std::uint16_t port,
                                     ack_sink sink)
    : journal_(std::move(journal)), impl_(std::make_unique<impl>()), sink_(std::move(sink)) {
  const tcp::endpoint at(asio::ip::address_v4::loopback(), port);
  impl_->acceptor.open(at.protocol());
  impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
  impl_->acceptor.bind(at);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  acceptor_ = std::thread([this] {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(impl_->io);
      boost::system::error_code ec;
      impl_->acceptor.accept(*socket, ec);
      if (stopping_) return;
      if (ec) continue;
      socket->set_option(tcp::no_delay(true));
      std::lock_guard g(connections_mutex_);
      {
        std::lock_guard s(impl_->sockets_mutex);
        impl_->sockets.push_back(socket);
      }
      connections_.emplace_back([this, socket] { serve(socket); });
    }
  });
}

ReplicationServer::~ReplicationServer() { stop(); }

void ReplicationServer::stop() {
  if (stopping_.exchange(true)) return;
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);  // wakes accept()
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard s(impl_->sockets_mutex);
    for (auto& socket : impl_->sockets) shut(*socket);
  }
  std::lock_guard g(connections_mutex_);
  for (auto& t : connections_) t.join();
  connections_.clear();
}

bool ReplicationServer::wait_acked(std::uint64_t seq, std::chrono::steady_clock::time_point until) {
  std::unique_lock g(acked_mutex_);
  return acked_cv_.wait_until(g, until, [&] { return max_acked_.load() >= seq; });
}

std::vector<ReplicationServer::replica_info> ReplicationServer::replicas() const {
  std::lock_guard g(acked_mutex_);
  std::vector<replica_info> out;
  out.reserve(replicas_.size());
  for (const auto& [id, r] : replicas_) out.push_back(r);
  return out;
}

void ReplicationServer::serve(std::shared_ptr<void> handle) {
  auto& socket = *std::static_pointer_cast<tcp::socket>(handle);
  std::thread acks;
  try {
    bytes body;
    if (read_frame(socket, body) != message_type::hello)
      throw error(errc::corrupt_record, "replication: expected a hello message");
    need(body, 0, 28, "hello");
    if (!std::equal(std::begin(hello_magic), std::end(hello_magic), body.begin()) ||
        get_le<std::uint32_t>(&body[8]) != protocol_version)
      throw error(errc::invalid_option,
                  "replication: not a prevalent replica of protocol version " +
                      std::to_string(protocol_version));
    const auto from = get_le<std::uint64_t>(&body[12]);
    const auto replica_epoch = get_le<std::uint64_t>(&body[20]);
    std::unique_ptr<RecordStream> stream;
    try {
      if (replica_epoch > journal_->epoch())
        throw error(errc::stale_epoch, "replication: the replica has records of epoch " +
                                           std::to_string(replica_epoch) +
                                           ", newer than this primary's " +
                                           std::to_string(journal_->epoch()));
      // Raft's rule: the replica's records past the last one of an epoch <= its last epoch
      // that this journal holds are not this primary's history (an older primary wrote them
      // and they never reached this one): the replica cuts them off and asks again. Epoch 0
      // says nothing (records of a store not replicated, or a replica whose journal is empty
      // after a snapshot): no cut, a replica past this journal's end gets sequence_gap.
      if (const std::uint64_t keep = common_prefix_end(*journal_, replica_epoch);
          replica_epoch > 0 && from > keep + 1) {
        const std::string why =
            "replication: the replica's records " + std::to_string(keep + 1) + ".." +
            std::to_string(from - 1) + " (last epoch " + std::to_string(replica_epoch) +
            ") are not in this primary's history (epoch " + std::to_string(journal_->epoch()) +
            "); it must cut its journal back to " + std::to_string(keep);
        bytes b(16 + why.size());
        put_le(&b[0], keep);
        put_le(&b[8], journal_->epoch());
        std::memcpy(&b[16], why.data(), why.size());
        send_frame(socket, message_type::diverged, b);
        shut(socket);
        return;
      }
      stream = std::make_unique<RecordStream>(*journal_, from);
    } catch (const prevalent::error& e) {
      // Too far behind: the newest snapshot first (the journal is kept back to the oldest
      // snapshot, so the records after it are there); the replica installs it and asks again.
      bytes snap;
      if (e.code() == errc::too_far_behind) snap = newest_snapshot_message(*journal_->directory());
      if (!snap.empty())
        send_frame(socket, message_type::snapshot, snap);
      else
        send_error(socket, e);
      shut(socket);
      return;
    }
    acks = std::thread([this, &socket] {
      const std::uint64_t id = next_id_++;
      replica_info who;
      boost::system::error_code ec;
      const auto remote = socket.remote_endpoint(ec);
      if (!ec) {
        who.address = remote.address().to_string();
        who.port = remote.port();
      }
      try {
        bytes b;
        while (read_frame(socket, b) == message_type::ack) {
          need(b, 0, 8, "ack");
          const auto seq = get_le<std::uint64_t>(&b[0]);
          if (sink_.acked) sink_.acked(id, seq);
          std::lock_guard g(acked_mutex_);
          if (seq > max_acked_) max_acked_ = seq;
          who.acked = std::max(who.acked, seq);
          who.last_ack = std::chrono::steady_clock::now();
          replicas_[id] = who;
          acked_cv_.notify_all();
        }
      } catch (...) {
      }
      {
        std::lock_guard g(acked_mutex_);
        replicas_.erase(id);
      }
      if (sink_.gone) sink_.gone(id);
      shut(socket);
    });
    std::vector<raw_record> batch;
    auto last_sent = std::chrono::steady_clock::now() - std::chrono::hours(1);
    while (!stopping_ && !journal_->failed()) {
      batch.clear();
      stream->read(batch, max_batch_bytes);
      const auto now = std::chrono::steady_clock::now();
      if (batch.empty() && now - last_sent < std::chrono::milliseconds(200)) {
        stream->wait(now + std::chrono::milliseconds(100));
        continue;
      }
      // Records, or a heartbeat (none) that tells the replica the primary's durable seq.
      std::size_t size = 12;
      for (const auto& r : batch) size += 32 + r.payload.size();
      bytes b(size);
      put_le(&b[0], journal_->durable_seq());
      put_le(&b[8], static_cast<std::uint32_t>(batch.size()));
      std::size_t at = 12;
      for (const auto& r : batch) {
        put_le(&b[at], r.seq);
        put_le(&b[at + 8], r.timestamp_ns);
        put_le(&b[at + 16], r.epoch);
        b[at + 24] = static_cast<std::uint8_t>(r.codec);
        b[at + 25] = r.sealed ? 1 : 0;
        put_le(&b[at + 26], std::uint16_t{0});
        put_le(&b[at + 28], static_cast<std::uint32_t>(r.payload.size()));
        std::copy(r.payload.begin(), r.payload.end(),
                  b.begin() + static_cast<std::ptrdiff_t>(at + 32));
        at += 32 + r.payload.size();
      }
      send_frame(socket, message_type::records, b);
      last_sent = now;
    }
  } catch (const prevalent::error& e) {
    try {
      send_error(socket, e);
    } catch (...) {
    }
  } catch (...) {
    // The connection ended (the replica went away): nothing to tell.
  }
  shut(socket);
  if (acks.joinable()) acks.join();
}

struct ReplicationClient::impl {
  asio::io_context io;
  tcp::socket socket{io};
};

ReplicationClient::ReplicationClient(std::shared_ptr<Journal> journal, std::string host,
                                     std::uint16_t port)
    : journal_(std::move(journal)),
      host_(std::move(host)),
      port_(port),
      impl_(std::make_unique<impl>()) {}

ReplicationClient::~ReplicationClient() = default;

void ReplicationClient::stop() {
  stopping_ = true;
  // The descriptor as run() published it (reading the socket object here would race with
  // run() opening it). A connect in progress is not interrupted; run() checks stopping_ after.
  if (const int fd = fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
}

void ReplicationClient::run() {
  auto& socket = impl_->socket;
  tcp::resolver resolver(impl_->io);
  boost::system::error_code ec = asio::error::host_not_found;
  for (const auto& entry : resolver.resolve(host_, std::to_string(port_))) {
    socket.open(entry.endpoint().protocol());
    fd_ = socket.native_handle();
    socket.connect(entry.endpoint(), ec);
    if (!ec) break;
    fd_ = -1;
    socket.close();
  }
  if (ec)
    throw boost::system::system_error(
        ec, "replication: cannot connect to the primary " + host_ + ":" + std::to_string(port_));
  struct unpublish {
    std::atomic<int>& fd;
    ~unpublish() { fd = -1; }
  } unpublished{fd_};
  if (stopping_) return;  // stop() came before the socket was connected
  socket.set_option(tcp::no_delay(true));
  bytes hello(28);
  std::copy(std::begin(hello_magic), std::end(hello_magic), hello.begin());
  put_le(&hello[8], protocol_version);
  put_le(&hello[12], journal_->last_appended() + 1);
  put_le(&hello[20], journal_->last_epoch());
  send_frame(socket, message_type::hello, hello);
  send_frame(socket, message_type::ack, u64_body(journal_->durable_seq()));
  // Records of every message already received are stored together: one append_raw (one
  // fdatasync) and one ack for all of them, so a replica keeps up with a primary that sends
  // many small batches (one per fdatasync of its own).
  std::vector<raw_record> batch;
  std::size_t batch_bytes = 0;
  auto store_batch = [&] {
    if (batch.empty()) return;
    journal_->append_raw(batch);  // durable when it returns
    send_frame(socket, message_type::ack, u64_body(journal_->durable_seq()));
    if (on_batch) on_batch(batch);
    batch.clear();
    batch_bytes = 0;
  };
  // The read timeout: a watchdog ends the connection when a read has waited longer than
  // read_timeout (the primary stopped without closing it: SIGSTOP, a lost network).
  using steady = std::chrono::steady_clock;
  std::atomic<steady::rep> waiting_since{steady::now().time_since_epoch().count()};
  std::atomic<bool> timed_out{false}, done{false};
  std::mutex watch_mutex;
  std::condition_variable watch_cv;
  std::thread watchdog([&] {
    const auto step =
        std::clamp(read_timeout / 4, std::chrono::milliseconds(10), std::chrono::milliseconds(100));
    std::unique_lock g(watch_mutex);
    while (!watch_cv.wait_for(g, step, [&] { return done.load(); })) {
      const steady::time_point since{steady::duration(waiting_since.load())};
      if (since != steady::time_point{} && steady::now() - since > read_timeout) {
        timed_out = true;
        if (const int fd = fd_.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
        return;
      }
    }
  });
  struct join_watchdog {
    std::thread& t;
    std::atomic<bool>& done;
    std::mutex& m;
    std::condition_variable& cv;
    ~join_watchdog() {
      {
        std::lock_guard g(m);
        done = true;
      }
      cv.notify_all();
      t.join();
    }
  } joined{watchdog, done, watch_mutex, watch_cv};
  bytes body;
  for (;;) {
    message_type type;
    try {
      waiting_since = steady::now().time_since_epoch().count();
      type = read_frame(socket, body);
      waiting_since = 0;  // not waiting for the primary while storing and applying
    } catch (const boost::system::system_error&) {
      if (stopping_) return;
      if (timed_out)
        throw error(errc::replication_timeout,
                    "replication: no message from the primary " + host_ + ":" +
                        std::to_string(port_) + " for " + std::to_string(read_timeout.count()) +
                        " ms (heartbeats come every 200 ms); connecting again");
      throw;
    }
    if (type != message_type::records) store_batch();  // what came before it first
    if (type == message_type::error) {
      need(body, 0, 4, "error");
      const auto code = static_cast<errc>(get_le<std::uint32_t>(&body[0]));
      throw error(code, "primary " + host_ + ":" + std::to_string(port_) +
                            " refused: " + std::string(body.begin() + 4, body.end()));
    }
    if (type == message_type::diverged) {
      need(body, 0, 16, "diverged");
      const auto keep = get_le<std::uint64_t>(&body[0]);
      std::string why(body.begin() + 16, body.end());
      if (!on_diverged)
        throw error(errc::sequence_gap,
                    "primary " + host_ + ":" + std::to_string(port_) + " refused: " + why);
      on_diverged(keep, std::move(why));
      return;
    }
    if (type == message_type::snapshot && on_snapshot) {
      need(body, 0, 12, "snapshot");
      const auto last_seq = get_le<std::uint64_t>(&body[0]);
      const auto name_length = get_le<std::uint32_t>(&body[8]);
      need(body, 12, name_length, "snapshot");
      std::string name(body.begin() + 12, body.begin() + 12 + name_length);
      on_snapshot(std::move(name), last_seq, bytes(body.begin() + 12 + name_length, body.end()));
      return;
    }
    if (type == message_type::snapshot)
      throw error(errc::too_far_behind, "primary " + host_ + ":" + std::to_string(port_) +
                                            " sent a snapshot: this replica is too far behind");
    if (type != message_type::records)
      throw error(errc::corrupt_record, "replication: unexpected message from the primary");
    need(body, 0, 12, "records");
    primary_durable_ = get_le<std::uint64_t>(&body[0]);
    last_heard_ = std::chrono::steady_clock::now().time_since_epoch().count();
    const auto count = get_le<std::uint32_t>(&body[8]);
    std::size_t at = 12;
    for (std::uint32_t i = 0; i < count; ++i) {
      need(body, at, 32, "records");
      raw_record r;
      r.seq = get_le<std::uint64_t>(&body[at]);
      r.timestamp_ns = get_le<std::int64_t>(&body[at + 8]);
      r.epoch = get_le<std::uint64_t>(&body[at + 16]);
      r.codec = static_cast<codec>(body[at + 24]);
      r.sealed = body[at + 25] != 0;
      const auto length = get_le<std::uint32_t>(&body[at + 28]);
      need(body, at + 32, length, "records");
      const auto first = body.begin() + static_cast<std::ptrdiff_t>(at + 32);
      r.payload.assign(first, first + static_cast<std::ptrdiff_t>(length));
      at += 32 + length;
      batch_bytes += length;
      batch.push_back(std::move(r));
    }
    if (count == 0 && on_heartbeat) on_heartbeat();
    // More already here (at least its first bytes): take it into this batch, up to a bound.
    boost::system::error_code ec;
    if (socket.available(ec) > 0 && !ec && batch_bytes < max_store_bytes) continue;
    store_batch();
  }
}

}  // namespace prevalent::repl

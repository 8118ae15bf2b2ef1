// Replicas of a Store (replica.hpp, docs/REPLICATION.md "Replicas"): the primary's server
// bound to a store, the replica's link thread, and snapshot installation for catch-up.
#include "prevalent/repl/replica.hpp"

#include <algorithm>
#include <charconv>
#include <string_view>

#include "prevalent/error.hpp"
#include "prevalent/format.hpp"
#include "prevalent/journal.hpp"
#include "replication_net.hpp"

namespace prevalent::repl {

endpoint endpoint::parse(const std::string& text) {
  const auto colon = text.rfind(':');
  unsigned port = 0;
  if (colon != std::string::npos && colon > 0 && colon + 1 < text.size()) {
    const char* first = text.data() + colon + 1;
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec == std::errc() && end == last && port > 0 && port <= 65535)
      return {text.substr(0, colon), static_cast<std::uint16_t>(port)};
  }
  throw error(errc::invalid_option,
              "primary address \"" + text + "\" is not host:port (port 1..65535)");
}

ReplicationPrimary::ReplicationPrimary(::prevalent::detail::StoreCore& core, std::uint16_t port)
    : core_(core) {
  ReplicationServer::ack_sink sink{
      [&core](std::uint64_t id, std::uint64_t seq) { core.replica_acked(id, seq); },
      [&core](std::uint64_t id) { core.replica_gone(id); }};
  server_ = std::make_unique<ReplicationServer>(core.journal_handle(), port, std::move(sink));
}

ReplicationPrimary::~ReplicationPrimary() { stop(); }
std::uint16_t ReplicationPrimary::port() const { return server_->port(); }
void ReplicationPrimary::stop() { server_->stop(); }
unsigned ReplicationPrimary::connected_replicas() const { return core_.replicas_at(0); }
std::vector<replica_info> ReplicationPrimary::replicas() const { return server_->replicas(); }

namespace detail {

namespace {
constexpr std::string_view catch_up_prefix = "catch-up-";
}  // namespace

void install_snapshot(const std::shared_ptr<Directory>& dir, const snapshot_file& file) {
  if (format::parse_snapshot_file_name(file.name) != file.last_seq)
    throw error(errc::corrupt_snapshot, "replication: snapshot file name \"" + file.name +
                                            "\" does not name sequence number " +
                                            std::to_string(file.last_seq));
  {
    const auto lock = dir->lock(format::lock_file_name);
    const std::string staged = std::string(catch_up_prefix) + file.name;
    const std::string temp = staged + format::temp_suffix;
    if (auto names = dir->list(); std::find(names.begin(), names.end(), temp) != names.end())
      dir->remove(temp);  // a leftover of an interrupted catch-up
    {
      auto out = dir->open(temp, Directory::open_mode::create_new);
      out->append(file.content);
      out->sync();
    }
    dir->rename(temp, staged);
    dir->sync();  // from here on, the catch-up is finished by the next open if cut short
  }
  finish_catch_up(dir);
}

bool finish_catch_up(const std::shared_ptr<Directory>& dir) {
  const auto lock = dir->lock(format::lock_file_name);
  std::string staged;
  bool changed = false;
  for (const auto& name : dir->list()) {
    if (!name.starts_with(catch_up_prefix)) continue;
    if (name.ends_with(format::temp_suffix)) {
      dir->remove(name);  // never complete: the catch-up did not start
      changed = true;
    } else if (format::parse_snapshot_file_name(name.substr(catch_up_prefix.size()))) {
      staged = std::max(staged, name);  // names sort by sequence number
    }
  }
  if (staged.empty()) {
    if (changed) dir->sync();
    return false;
  }
  // The replica's own snapshots and segments are all older than the staged snapshot (it was
  // too far behind): without them the store opens from the staged one alone.
  for (const auto& name : dir->list()) {
    const bool snapshot = format::parse_snapshot_file_name(name).has_value();
    const bool segment = format::parse_segment_file_name(name).has_value();
    const bool older_staged = name.starts_with(catch_up_prefix) && name != staged;
    if (snapshot || segment || older_staged) dir->remove(name);
  }
  dir->sync();
  dir->rename(staged, staged.substr(catch_up_prefix.size()));
  dir->sync();
  return true;
}

cut_report cut_back(const std::shared_ptr<Directory>& dir, std::uint64_t keep_through,
                    const journal_options& options) {
  try {
    return cut_journal(dir, keep_through, options);
  } catch (const error& e) {
    if (e.code() != errc::no_usable_snapshot) throw;
  }
  // Nothing left rebuilds the state at keep_through: set everything aside, newest first (a
  // crash in between leaves a prefix of the journal, or nothing), and start empty.
  const auto lock = dir->lock(format::lock_file_name);
  std::vector<std::string> names;
  for (const auto& name : dir->list())
    if (format::parse_snapshot_file_name(name) || format::parse_segment_file_name(name))
      names.push_back(name);
  std::sort(names.rbegin(), names.rend());
  std::stable_partition(names.begin(), names.end(), [](const std::string& n) {
    return format::parse_snapshot_file_name(n).has_value();
  });
  cut_report report;
  for (const auto& name : names) {
    const std::string aside = name + ".cut-" + std::to_string(keep_through);
    dir->rename(name, aside);
    report.moved.push_back(aside);
  }
  dir->sync();
  return report;
}

ReplicaLink::ReplicaLink(endpoint primary, hooks h, std::chrono::milliseconds retry)
    : primary_(std::move(primary)), hooks_(std::move(h)), retry_(retry) {}

ReplicaLink::~ReplicaLink() { stop(); }

void ReplicaLink::start() {
  thread_ = std::thread([this] { run(); });
}

void ReplicaLink::stop() {
  {
    std::lock_guard g(mutex_);
    stopping_ = true;
    if (client_) client_->stop();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

replica_lag ReplicaLink::lag() const {
  std::lock_guard g(mutex_);
  replica_lag l;
  l.primary_seq = primary_seq_;
  l.connected = connected_;
  l.catch_ups = catch_ups_;
  l.cuts = cuts_;
  l.last_error = last_error_;
  if (heard_ != std::chrono::steady_clock::time_point{})
    l.since_heard = std::chrono::steady_clock::now() - heard_;
  return l;
}

void ReplicaLink::run() {
  for (;;) {
    {
      std::lock_guard g(mutex_);
      if (stopping_) return;
    }
    std::string failure;
    try {
      follow_once();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    std::unique_lock g(mutex_);
    connected_ = false;
    if (!failure.empty()) last_error_ = failure;
    wake_.wait_for(g, retry_, [this] { return stopping_; });
  }
}

void ReplicaLink::apply(const std::vector<raw_record>* batch) {
  // A record that does not apply fails the replica's state (queries refuse, naming why) but
  // not its journal: it goes on storing and acknowledging the primary's records, which a
  // reopen (with a program that can apply them) replays.
  try {
    hooks_.apply(batch);
  } catch (const std::exception& e) {
    std::lock_guard g(mutex_);
    last_error_ = e.what();
  }
}

void ReplicaLink::follow_once() {
  std::shared_ptr<Journal> journal;
  hooks_.with_core([&](::prevalent::detail::StoreCore& core) { journal = core.journal_handle(); });
  std::optional<snapshot_file> snapshot;
  std::optional<std::uint64_t> cut_to;
  std::string cut_why;
  {
    ReplicationClient client(journal, primary_.host, primary_.port);
    client.read_timeout = read_timeout_;
    if (hooks_.cut)
      client.on_diverged = [&](std::uint64_t keep_through, std::string why) {
        cut_to = keep_through;
        cut_why = std::move(why);
      };
    client.on_batch = [&](const std::vector<raw_record>& batch) {
      {
        // First: once the records are applied, the lag must not show an older primary seq.
        std::lock_guard g(mutex_);
        connected_ = true;
        primary_seq_ = client.primary_durable();
        heard_ = client.last_heard();
      }
      apply(&batch);
    };
    client.on_heartbeat = [&] {
      std::lock_guard g(mutex_);
      connected_ = true;
      primary_seq_ = client.primary_durable();
      heard_ = client.last_heard();
    };
    client.on_snapshot = [&](std::string name, std::uint64_t last_seq, bytes content) {
      snapshot = snapshot_file{std::move(name), last_seq, std::move(content)};
    };
    {
      std::lock_guard g(mutex_);
      if (stopping_) return;
      client_ = &client;
    }
    struct unregister {
      ReplicaLink& link;
      ~unregister() {
        std::lock_guard g(link.mutex_);
        link.client_ = nullptr;
      }
    } registered{*this};
    apply(nullptr);  // what an earlier connection stored but did not apply (none, usually)
    client.run();
  }
  if (cut_to) {
    {
      std::lock_guard g(mutex_);
      last_error_ = cut_why;
    }
    hooks_.cut(*cut_to);
    std::lock_guard g(mutex_);
    ++cuts_;
  }
  if (snapshot) {
    hooks_.install(*snapshot);
    std::lock_guard g(mutex_);
    ++catch_ups_;
    last_error_.clear();
  }
}

}  // namespace detail
}  // namespace prevalent::repl

#include "replication.hpp"

#include <algorithm>
#include <chrono>

#include "prevalent/journal.hpp"
#include "prevalent/repl/replication_node.hpp"
#include "reply.hpp"

namespace kv {
namespace {

using access = prevalent::detail::store_access<
    KvState, SetCommand, MsetCommand, DelCommand, GetdelCommand, GetexCommand, IncrbyCommand,
    IncrbyfloatCommand, AppendCommand, SetrangeCommand, ExpireCommand, PersistCommand,
    RenameCommand, FlushallCommand, HsetCommand, HdelCommand, HincrbyCommand, HincrbyfloatCommand,
    ExecCommand, BatchCommand, ExpireDueCommand>;

std::uint64_t epoch_of(KvAsyncStore& store) {
  return detail::core_of(store).journal_handle()->epoch();
}

}  // namespace

namespace detail {

prevalent::detail::StoreCore& core_of(KvAsyncStore& store) { return access::core(store.sync()); }

void apply_records(KvAsyncStore& store, const std::vector<prevalent::raw_record>* batch) {
  auto& core = core_of(store);
  auto replay = access::replayer(access::state(store.sync()));
  if (batch)
    core.apply_records(*batch, replay);
  else
    core.apply_journal(replay);
}

}  // namespace detail

Replication::Replication(KvAsyncStore& store, std::uint16_t port)
    : store_(store),
      primary_(std::make_unique<prevalent::repl::ReplicationPrimary>(store.sync(), port)) {}

Replication::Replication(KvAsyncStore& store, const std::string& primary,
                         std::function<void(const prevalent::repl::detail::snapshot_file&)> install)
    : store_(store), primary_at_(prevalent::repl::endpoint::parse(primary)) {
  detail::core_of(store).set_read_only("this server is a replica of " + primary_at_.to_string() +
                                       "; send writes to the primary");
  using link = prevalent::repl::detail::ReplicaLink;
  link::hooks hooks{
      [this](const std::function<void(prevalent::detail::StoreCore&)>& f) {
        f(detail::core_of(store_));
      },
      [this](const std::vector<prevalent::raw_record>* batch) {
        detail::apply_records(store_, batch);
      },
      std::move(install),
      // No cut-back: a fixed replica follows one primary, whose history it never gets ahead
      // of (a divergence is reported in last_error; failover with --etcd is what needs cuts).
      nullptr};
  link_ = std::make_unique<link>(primary_at_, std::move(hooks), std::chrono::milliseconds(200));
  link_->start();
}

Replication::~Replication() { stop(); }

bool Replication::is_replica() const {
  if (link_) return true;
  return node_ != nullptr && !may_acknowledge();
}

void standalone_info(KvAsyncStore& store,
                     const std::function<void(std::string_view, const std::string&)>& field) {
  field("role", "master");
  field("connected_slaves", "0");
  field("master_repl_offset", std::to_string(store.sync().last_sequence()));
}

void Replication::info(
    const std::function<void(std::string_view, const std::string&)>& field) const {
  if (node_) return cluster_info(field);
  auto& store = store_;
  const auto now = std::chrono::steady_clock::now();
  if (primary_) {
    const auto replicas = primary_->replicas();
    const std::uint64_t durable = store.sync().durable_sequence();
    field("role", "master");
    field("connected_slaves", std::to_string(replicas.size()));
    for (std::size_t i = 0; i < replicas.size(); ++i) {
      const auto& r = replicas[i];
      // lag: seconds since its last acknowledgement, 0 while it has every durable record
      // (an idle replica has nothing to acknowledge).
      const long long lag =
          r.acked >= durable
              ? 0
              : std::chrono::duration_cast<std::chrono::seconds>(now - r.last_ack).count();
      field("slave" + std::to_string(i), "ip=" + r.address + ",port=" + std::to_string(r.port) +
                                             ",state=online,offset=" + std::to_string(r.acked) +
                                             ",lag=" + std::to_string(lag));
    }
    field("master_repl_offset", std::to_string(store.sync().last_sequence()));
    field("prevalent_epoch", std::to_string(epoch_of(store)));
    field("prevalent_durable_seq", std::to_string(durable));
    field("prevalent_repl_port", std::to_string(primary_->port()));
    return;
  }
  const auto lag = link_->lag();
  const std::uint64_t applied = store.sync().last_sequence();
  const std::uint64_t durable = store.sync().durable_sequence();
  const long long heard =
      lag.since_heard == std::chrono::steady_clock::duration::max()
          ? -1
          : std::chrono::duration_cast<std::chrono::seconds>(lag.since_heard).count();
  field("role", "slave");
  field("master_host", primary_at_.host);
  field("master_port", std::to_string(primary_at_.port));
  field("master_link_status", lag.connected ? "up" : "down");
  field("master_last_io_seconds_ago", std::to_string(heard));
  field("master_sync_in_progress", "0");
  field("slave_repl_offset", std::to_string(applied));
  field("slave_read_only", "1");
  field("connected_slaves", "0");
  field("master_repl_offset", std::to_string(applied));
  field("prevalent_epoch", std::to_string(epoch_of(store)));
  field("prevalent_durable_seq", std::to_string(durable));
  field("prevalent_primary_seq", std::to_string(lag.primary_seq));
  field("prevalent_lag_records",
        std::to_string(lag.primary_seq > applied ? lag.primary_seq - applied : 0));
  field("prevalent_catch_ups", std::to_string(lag.catch_ups));
  if (!lag.last_error.empty()) field("prevalent_last_error", lag.last_error);
}

std::string Replication::role_reply() const {
  if (node_) return cluster_role_reply();
  std::string out;
  if (primary_) {
    const auto replicas = primary_->replicas();
    reply::array(out, 3);
    reply::bulk(out, "master");
    reply::integer(out, static_cast<long long>(store_.sync().last_sequence()));
    reply::array(out, replicas.size());
    for (const auto& r : replicas) {
      reply::array(out, 3);
      reply::bulk(out, r.address);
      reply::bulk(out, std::to_string(r.port));
      reply::bulk(out, std::to_string(r.acked));
    }
    return out;
  }
  const auto lag = link_->lag();
  reply::array(out, 5);
  reply::bulk(out, "slave");
  reply::bulk(out, primary_at_.host);
  reply::integer(out, primary_at_.port);
  reply::bulk(out, lag.connected ? "connected" : "connect");
  reply::integer(out, static_cast<long long>(store_.sync().last_sequence()));
  return out;
}

unsigned Replication::replicas_at(std::uint64_t seq) const {
  unsigned n = 0;
  if (node_) {
    for (const auto& r : node_->replicas()) n += r.durable_seq >= seq ? 1 : 0;
    return n;
  }
  if (!primary_) return 0;
  for (const auto& r : primary_->replicas()) n += r.acked >= seq ? 1 : 0;
  return n;
}

}  // namespace kv

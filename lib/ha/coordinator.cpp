#include "prevalent/ha/coordinator.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <stdexcept>

namespace prevalent::ha {

namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t to_ns(clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

std::optional<member_info> parse_member(const std::string& node, const std::string& value) {
  try {
    const json j = json::parse(value);
    member_info m;
    m.node = node;
    m.address = j.at("address").get<std::string>();
    m.durable_seq = j.at("durable_seq").get<std::uint64_t>();
    m.role = j.value("role", "");
    m.epoch = j.value("epoch", std::int64_t{0});
    m.client_address = j.value("client", "");
    return m;
  } catch (const json::exception&) {
    return std::nullopt;  // not a member record of ours: ignored
  }
}

std::optional<primary_info> parse_leader(const etcd_kv& kv) {
  try {
    const json j = json::parse(kv.value);
    return primary_info{j.at("node").get<std::string>(), j.at("address").get<std::string>(),
                        kv.create_revision, j.value("client", "")};
  } catch (const json::exception&) {
    return std::nullopt;
  }
}

milliseconds or_default(milliseconds value, milliseconds fallback) {
  return value > milliseconds::zero() ? value : fallback;
}

}  // namespace

Coordinator::Coordinator(etcd_options etcd, coordinator_options options,
                         coordinator_callbacks callbacks)
    : client_([&] {
        if (options.lease_ttl < std::chrono::seconds(1)) {
          throw std::invalid_argument("coordinator_options: lease_ttl must be at least 1 s");
        }
        const milliseconds ttl = options.lease_ttl;
        etcd.timeout = or_default(options.request_timeout, ttl / 3);
        return EtcdClient(std::move(etcd));
      }()),
      options_(std::move(options)),
      callbacks_(std::move(callbacks)) {
  auto bad = [](const std::string& what) {
    throw std::invalid_argument("coordinator_options: " + what);
  };
  if (options_.cluster.empty() || options_.cluster.find('/') != std::string::npos) {
    bad("cluster must be a non-empty name without '/'");
  }
  if (options_.node.empty() || options_.node.find('/') != std::string::npos) {
    bad("node must be a non-empty name without '/'");
  }
  if (options_.address.empty()) bad("address must not be empty");
  if (!callbacks_.durable_seq) bad("callbacks.durable_seq is required");
  const milliseconds ttl = options_.lease_ttl;
  prefix_ = "/prevalent/" + options_.cluster + "/";
  margin_ = or_default(options_.safety_margin, std::max(milliseconds(100), ttl / 10));
  poll_ = or_default(options_.poll_interval,
                     std::clamp(ttl / 20, milliseconds(100), milliseconds(250)));
  grace_ = or_default(options_.election_grace, 2 * poll_);
  refresh_every_ = ttl / 3;
  if (margin_ >= ttl - client_.options().timeout) {
    bad("safety_margin (" + std::to_string(margin_.count()) + " ms) leaves no time to refresh " +
        "a lease of " + std::to_string(ttl.count()) + " ms with requests of " +
        std::to_string(client_.options().timeout.count()) + " ms");
  }
}

Coordinator::~Coordinator() { stop(); }

void Coordinator::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) throw std::logic_error("Coordinator::start: already started");
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
  watchdog_thread_ = std::thread([this] { watchdog(); });
}

void Coordinator::stop() { halt(true); }
void Coordinator::abandon() { halt(false); }

void Coordinator::halt(bool revoke) {
  {
    std::lock_guard lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  watchdog_thread_.join();
  if (primary_.exchange(false)) {
    std::lock_guard callback(callback_mutex_);
    if (callbacks_.must_stop_acknowledging) callbacks_.must_stop_acknowledging();
  }
  // Best effort: the leader and member keys go with the lease, so a successor need not wait
  // for the TTL.
  std::vector<std::int64_t> leases = abandoned_;
  if (lease_.lease_id != 0) leases.push_back(lease_.lease_id);
  if (!revoke) leases.clear();
  for (const auto id : leases) {
    try {
      client_.revoke(id);
    } catch (const std::exception& e) {
      say(std::string("stop: could not revoke the lease: ") + e.what());
    }
  }
  abandoned_.clear();
  lease_ = {};
}

bool Coordinator::may_acknowledge() const noexcept {
  return primary_.load() && to_ns(clock::now()) < ack_deadline_ns_.load();
}

lease_status Coordinator::lease() const {
  std::lock_guard lock(mutex_);
  return lease_;
}

void Coordinator::say(const std::string& message) {
  if (callbacks_.log) callbacks_.log("coordinator " + options_.node + ": " + message);
}

void Coordinator::run() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (stopping_) return;
    }
    try {
      revoke_abandoned();
      ensure_lease();
      if (clock::now() >= next_refresh_) refresh_lease();
      observe_and_elect();
    } catch (const std::exception& e) {
      say(e.what());
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, sleep_time(), [this] { return stopping_ || abandon_lease_; });
  }
}

std::chrono::milliseconds Coordinator::sleep_time() const {
  auto until_refresh = std::chrono::duration_cast<milliseconds>(next_refresh_ - clock::now());
  return std::clamp(until_refresh, milliseconds(10), poll_);
}

void Coordinator::watchdog() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (!primary_.load()) {
      wake_.wait(lock);
      continue;
    }
    const clock::time_point deadline = lease_.deadline;
    if (clock::now() < deadline) {
      wake_.wait_until(lock, deadline);
      continue;
    }
    lock.unlock();
    step_down("no successful lease refresh since the one sent " +
              std::to_string(
                  std::chrono::duration_cast<milliseconds>(clock::now() - lease().last_refresh_sent)
                      .count()) +
              " ms ago (TTL " + std::to_string(lease().ttl) + " s, margin " +
              std::to_string(margin_.count()) + " ms)");
    lock.lock();
  }
}

void Coordinator::step_down(const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    abandon_lease_ = true;
  }
  if (primary_.exchange(false)) {
    say("stops acknowledging (fail-stop): " + why);
    std::lock_guard callback(callback_mutex_);
    if (callbacks_.must_stop_acknowledging) callbacks_.must_stop_acknowledging();
  }
  wake_.notify_all();
}

void Coordinator::lease_lost(const std::string& why) {
  say("lease lost: " + why);
  step_down("lease lost: " + why);
  std::lock_guard lock(mutex_);
  lease_.lease_id = 0;  // nothing to revoke: etcd no longer has it
  abandon_lease_ = false;
}

void Coordinator::revoke_abandoned() {
  std::vector<std::int64_t> ids;
  {
    std::lock_guard lock(mutex_);
    if (abandon_lease_) {
      if (lease_.lease_id != 0) abandoned_.push_back(lease_.lease_id);
      lease_.lease_id = 0;
      abandon_lease_ = false;
    }
    ids = abandoned_;
  }
  for (const auto id : ids) {
    try {
      client_.revoke(id);
    } catch (const etcd_error& e) {
      if (e.error_kind() != etcd_error::kind::status) throw;  // retried at the next turn
      // not found: already expired
    }
    std::lock_guard lock(mutex_);
    std::erase(abandoned_, id);
  }
}

void Coordinator::ensure_lease() {
  {
    std::lock_guard lock(mutex_);
    if (lease_.lease_id != 0) return;
  }
  const clock::time_point sent = clock::now();
  const etcd_lease granted = client_.grant(options_.lease_ttl.count());
  {
    std::lock_guard lock(mutex_);
    lease_.lease_id = granted.id;
    lease_.ttl = granted.ttl;
    lease_.last_refresh_sent = sent;
    lease_.deadline = sent + std::chrono::seconds(granted.ttl) - margin_;
    next_refresh_ = sent + refresh_every_;
  }
  publish_member(true);
}

void Coordinator::refresh_lease() {
  std::int64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = lease_.lease_id;
  }
  if (id == 0) return;
  const clock::time_point sent = clock::now();
  std::int64_t ttl = 0;
  try {
    ttl = client_.keepalive(id);
  } catch (const etcd_error&) {
    next_refresh_ = std::min(sent + refresh_every_, clock::now() + milliseconds(100));
    throw;
  }
  if (ttl <= 0) {
    lease_lost("etcd says the lease no longer exists");
    return;
  }
  {
    std::lock_guard lock(mutex_);
    if (lease_.lease_id != id) return;  // abandoned meanwhile
    lease_.ttl = ttl;
    lease_.last_refresh_sent = sent;
    lease_.deadline = sent + std::chrono::seconds(ttl) - margin_;
    next_refresh_ = sent + refresh_every_;
    ack_deadline_ns_.store(to_ns(lease_.deadline));
  }
  wake_.notify_all();
}

void Coordinator::publish_member(bool force) {
  std::int64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = lease_.lease_id;
  }
  if (id == 0) return;
  json value{{"address", options_.address},
             {"durable_seq", callbacks_.durable_seq()},
             {"role", primary_.load() ? "primary" : "replica"},
             {"epoch", epoch_.load()}};
  if (!options_.client_address.empty()) value["client"] = options_.client_address;
  const std::string text = value.dump();
  const auto now = clock::now();
  if (!force && text == published_ && now - published_at_ < refresh_every_) return;
  try {
    client_.put(member_key(options_.node), text, id);
  } catch (const etcd_error& e) {
    if (e.error_kind() == etcd_error::kind::status && e.grpc_code() == 5) {
      lease_lost("publishing the member key: " + std::string(e.what()));
      return;
    }
    throw;
  }
  published_ = text;
  published_at_ = now;
}

void Coordinator::observe_and_elect() {
  const etcd_range_result all = client_.get_prefix(prefix_);
  const std::string leader = leader_key();
  const std::string members_prefix = prefix_ + "members/";
  std::optional<etcd_kv> leader_kv;
  std::vector<member_info> members;
  for (const auto& kv : all.kvs) {
    if (kv.key == leader) {
      leader_kv = kv;
    } else if (kv.key.rfind(members_prefix, 0) == 0) {
      if (auto m = parse_member(kv.key.substr(members_prefix.size()), kv.value)) {
        members.push_back(std::move(*m));
      }
    }
  }
  publish_member(false);
  {
    std::lock_guard seen(seen_mutex_);
    seen_primary_ = leader_kv ? parse_leader(*leader_kv) : std::nullopt;
  }

  if (leader_kv) {
    leader_absent_since_.reset();
    const auto info = parse_leader(*leader_kv);
    if (primary_.load()) {
      if (!info || leader_kv->create_revision != epoch_.load()) {
        step_down("the leader key now belongs to " + (info ? info->node : "?") + ", epoch " +
                  std::to_string(leader_kv->create_revision));
      }
      return;
    }
    if (info && info->node == options_.node) {
      std::int64_t current = 0;
      {
        std::lock_guard lock(mutex_);
        current = abandon_lease_ ? 0 : lease_.lease_id;
      }
      // On this node's live lease: a campaign whose answer was lost (a timed-out call can
      // still take effect). It won: take the epoch. On another lease (given up, or of an
      // earlier run of this node): wait for that lease to go.
      if (current != 0 && leader_kv->lease == current) become_primary(leader_kv->create_revision);
      return;
    }
    if (!info) return;
    const std::string followed = info->address + "@" + std::to_string(info->epoch);
    if (followed != followed_) {
      followed_ = followed;
      say("follows " + info->node + " at " + info->address + ", epoch " +
          std::to_string(info->epoch));
      std::lock_guard callback(callback_mutex_);
      if (callbacks_.follow) callbacks_.follow(info->address, info->epoch);
    }
    return;
  }

  if (primary_.load()) {
    step_down("the leader key is gone");
    return;
  }
  const auto now = clock::now();
  if (!leader_absent_since_) {
    leader_absent_since_ = now;
    return;
  }
  if (now - *leader_absent_since_ < grace_) return;
  // The most advanced healthy member campaigns (ties: the smallest name). Members are healthy
  // while their leased key exists; this node counts with its current durable_seq.
  const std::uint64_t mine = callbacks_.durable_seq();
  for (const auto& m : members) {
    if (m.node == options_.node) continue;
    if (m.durable_seq > mine || (m.durable_seq == mine && m.node < options_.node)) return;
  }
  campaign();
}

void Coordinator::campaign() {
  std::int64_t id = 0;
  {
    std::lock_guard lock(mutex_);
    id = lease_.lease_id;
  }
  if (id == 0) return;
  const std::string key = leader_key();
  json value{{"node", options_.node}, {"address", options_.address}};
  if (!options_.client_address.empty()) value["client"] = options_.client_address;
  const etcd_txn_result r =
      client_.txn({etcd_compare::create_revision_is(key, 0)},
                  {etcd_op::put(key, value.dump(), id), etcd_op::get(key)}, {etcd_op::get(key)});
  if (!r.succeeded) return;  // someone else was faster: followed at the next turn
  std::int64_t epoch = r.revision;
  if (r.ranges.size() == 2 && !r.ranges[1].kvs.empty()) epoch = r.ranges[1].kvs[0].create_revision;
  become_primary(epoch);
}

void Coordinator::become_primary(std::int64_t epoch) {
  {
    std::unique_lock lock(mutex_);
    if (abandon_lease_ || lease_.lease_id == 0 || clock::now() >= lease_.deadline) {
      // Won with a lease this node can no longer vouch for: give it up (the key goes with it).
      abandon_lease_ = true;
      lock.unlock();
      wake_.notify_all();
      say("won epoch " + std::to_string(epoch) + " with an untrusted lease: gives it up");
      return;
    }
    epoch_.store(epoch);
    ack_deadline_ns_.store(to_ns(lease_.deadline));
    primary_.store(true);
    followed_.clear();
  }
  wake_.notify_all();
  say("became primary, epoch " + std::to_string(epoch));
  {
    std::lock_guard callback(callback_mutex_);
    if (callbacks_.became_primary) callbacks_.became_primary(epoch);
  }
  publish_member(true);
}

std::vector<member_info> Coordinator::members() const {
  std::vector<member_info> out;
  const std::string members_prefix = prefix_ + "members/";
  for (const auto& kv : client_.get_prefix(members_prefix).kvs) {
    if (auto m = parse_member(kv.key.substr(members_prefix.size()), kv.value)) {
      out.push_back(std::move(*m));
    }
  }
  return out;
}

std::optional<primary_info> Coordinator::last_seen_primary() const {
  std::lock_guard seen(seen_mutex_);
  return seen_primary_;
}

std::optional<primary_info> Coordinator::primary() const {
  const auto kv = client_.get(leader_key());
  if (!kv) return std::nullopt;
  return parse_leader(*kv);
}

}  // namespace prevalent::ha

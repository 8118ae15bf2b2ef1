// Replicas of a Store (issue 11, docs/REPLICATION.md "Replicas"): a primary store serves its
// journal to replicas (ReplicationPrimary), and a Replica<State, Commands...> is a store in its
// own directory that follows a primary: it stores the primary's records verbatim
// (Journal::append_raw), applies them to its in-memory state in order through the same decode
// as recovery, answers queries, and refuses commands (errc::read_only_replica). Its lag is
// exposed (lag()). A replica too far behind (its next record already dropped by the primary)
// receives the primary's newest snapshot file and installs it first (snapshot catch-up); one
// whose journal holds records the primary lacks (an older primary's, never replicated) cuts
// them off, keeping them in .cut-<N> files, and follows (cut-back).
//
//   prevalent::Store<Bank, Deposit> primary{"/var/lib/bank", o};      // o.acks = replicated(1)
//   prevalent::repl::ReplicationPrimary serving{primary, 7000};       // after the store
//   prevalent::repl::Replica<Bank, Deposit> replica{"/var/lib/bank-r", "127.0.0.1:7000"};
//   long total = replica.query([](const Bank& b) { return b.total(); });
//
// Part of the library prevalent-repl (dependency('prevalent-repl'), pkg-config prevalent-repl,
// CMake prevalent::repl; built where Boost.Asio is); the wire protocol under it is internal
// (lib/repl/replication_net.hpp). The namespace repl::detail below is not API: it is here
// because the Replica template drives it.
// Threads: every member may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/detail/replication_records.hpp"
#include "prevalent/detail/store_access.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/options.hpp"
#include "prevalent/store.hpp"

namespace prevalent::repl {

class ReplicationServer;
class ReplicationClient;

// "host:port" split; throws errc::invalid_option naming the text when it is not one.
struct endpoint {
  std::string host;
  std::uint16_t port = 0;
  static endpoint parse(const std::string& text);
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// A connected replica as the primary sees it (prevalent-kv's INFO replication and ROLE).
struct replica_info {
  std::string address;  // the connection's remote address and port
  std::uint16_t port = 0;
  std::uint64_t acked = 0;  // its durable sequence number, as last acknowledged
  std::chrono::steady_clock::time_point last_ack{};
};

// Serves a primary store's journal to replicas on 127.0.0.1:`port` (0: any free port, see
// port()), and reports their acknowledgements to the store, which is what acks =
// replicated(k) waits for. Must be stopped (or destroyed) before the store closes: declare it
// after the store.
class ReplicationPrimary {
 public:
  template <class State, class... Commands>
  explicit ReplicationPrimary(Store<State, Commands...>& store, std::uint16_t port = 0)
      : ReplicationPrimary(detail::store_access<State, Commands...>::core(store), port) {}
  ReplicationPrimary(detail::StoreCore& core, std::uint16_t port);
  ~ReplicationPrimary();
  ReplicationPrimary(const ReplicationPrimary&) = delete;
  ReplicationPrimary& operator=(const ReplicationPrimary&) = delete;

  std::uint16_t port() const;
  // Replicas connected now (each has sent its hello).
  unsigned connected_replicas() const;
  // Each connected replica's address and acknowledged durable sequence number (prevalent-kv's
  // INFO replication, ROLE and WAIT).
  std::vector<replica_info> replicas() const;
  void stop();

 private:
  ::prevalent::detail::StoreCore& core_;
  std::unique_ptr<ReplicationServer> server_;
};

// How far a replica is behind its primary.
struct replica_lag {
  std::uint64_t applied_seq = 0;  // the last record applied to the replica's state
  std::uint64_t durable_seq = 0;  // the last record on the replica's disk
  std::uint64_t primary_seq = 0;  // the primary's durable sequence number, as last heard
  // Since the last message (records or a heartbeat, at least every 200 ms) from the primary;
  // duration::max() when none came yet.
  std::chrono::steady_clock::duration since_heard = std::chrono::steady_clock::duration::max();
  bool connected = false;
  std::uint64_t catch_ups = 0;  // snapshots installed because the replica was too far behind
  std::string last_error;       // why the last connection ended, or records did not apply
  std::uint64_t cuts = 0;       // journal cut back because it held records the primary lacked
  std::uint64_t records_behind() const {
    return primary_seq > applied_seq ? primary_seq - applied_seq : 0;
  }
};

namespace detail {

// A snapshot file as the primary stores it (snapshot catch-up).
struct snapshot_file {
  std::string name;  // snapshot-<last seq>.snap
  std::uint64_t last_seq = 0;
  bytes content;
};

// Installs `file` in the replica directory `dir` crash-safely. It is staged first, durably and
// whole (written as catch-up-<name>.tmp, synced, renamed to catch-up-<name>, directory
// synced); then finish_catch_up() removes the replica's own snapshots and journal segments
// (all older: the replica was too far behind, and a journal that ends before the snapshot
// could not follow it) and renames the staged file into place (directory synced after each
// step). A crash before the staged file is durable leaves the replica as it was; after it,
// the next open of the Replica finishes the catch-up. Takes the directory's lock: the
// replica's store must be closed.
void install_snapshot(const std::shared_ptr<Directory>& dir, const snapshot_file& file);
// Finishes a catch-up cut short (see install_snapshot), before a replica's store opens;
// returns whether there was one. Removes unfinished staging files.
bool finish_catch_up(const std::shared_ptr<Directory>& dir);
// A replica's cut-back (the primary said its records after `keep_through` are not the
// primary's): cut_journal() to keep_through, the cut records and later snapshots kept in
// `.cut-<N>` files. When nothing left could rebuild the state at keep_through
// (errc::no_usable_snapshot), every snapshot and segment is set aside under the same names
// instead, so the store opens empty and catches up from the primary (its records from 1 or its
// newest snapshot). Takes the directory's lock: the replica's store must be closed.
cut_report cut_back(const std::shared_ptr<Directory>& dir, std::uint64_t keep_through,
                    const journal_options& options);

// A snapshot catch-up or a cut-back, the same sequence for Replica and ReplicatedStore:
// closes `store` (the caller holds the lock that keeps everyone else off it) and drops it,
// runs `change` on the closed store's directory (install_snapshot() or cut_back()), then opens
// the store again with `open()`; if `change` throws, it opens the store as it was (queries go
// on, the link tries again) and rethrows.
template <class StorePtr, class Change, class Open>
void close_change_reopen(StorePtr& store, Change&& change, Open&& open) {
  store->close();
  store.reset();
  try {
    change();
  } catch (...) {
    open();
    throw;
  }
  open();
}

// The compiled half of Replica: the thread that connects to the primary, stores and applies
// what it sends, reconnects after an error, and installs a snapshot when told it is too far
// behind.
class ReplicaLink {
 public:
  struct hooks {
    // The replica's store core, under the replica's lock (see Replica::with_core).
    std::function<void(const std::function<void(::prevalent::detail::StoreCore&)>&)> with_core;
    // Applies the durable records not yet applied (typed: the store's replay): those of
    // `batch`, just appended, or (null) whatever the journal holds past the state.
    std::function<void(const std::vector<raw_record>* batch)> apply;
    // Closes the store, installs the snapshot, opens the store again.
    std::function<void(const snapshot_file&)> install;
    // Closes the store, cuts its journal back to record `keep_through` (cut_back()), opens the
    // store again (the primary said the replica holds records it lacks). Without it, the link
    // keeps errc::sequence_gap in last_error and retries.
    std::function<void(std::uint64_t keep_through)> cut;
  };
  ReplicaLink(endpoint primary, hooks h, std::chrono::milliseconds retry);
  ~ReplicaLink();
  ReplicaLink(const ReplicaLink&) = delete;
  ReplicaLink& operator=(const ReplicaLink&) = delete;

  void start();
  void stop();
  // The link's half of the lag (the caller fills in applied_seq and durable_seq).
  replica_lag lag() const;
  const endpoint& primary() const { return primary_; }
  // How long a read may wait for the primary before the connection is given up and made
  // again (ReplicationClient::read_timeout). Before start().
  void set_read_timeout(std::chrono::milliseconds t) { read_timeout_ = t; }

 private:
  void run();
  void follow_once();
  void apply(const std::vector<raw_record>* batch);

  endpoint primary_;
  hooks hooks_;
  std::chrono::milliseconds retry_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  ReplicationClient* client_ = nullptr;  // the connection running, for stop()
  bool connected_ = false;
  std::uint64_t primary_seq_ = 0;
  std::chrono::steady_clock::time_point heard_{};
  std::uint64_t catch_ups_ = 0;
  std::uint64_t cuts_ = 0;
  std::string last_error_;
  std::chrono::milliseconds read_timeout_ = std::chrono::milliseconds(2000);
  std::thread thread_;
};

}  // namespace detail

// A read-only store in directory `path` that follows the primary at `primary` ("host:port").
// It opens (recovering from its own journal, so a restarted replica resumes where it was),
// then follows in the background until close(). Automatic snapshots in `options` work as on
// a primary (they bound the replica's own journal).
template <class State, class... Commands>
class Replica {
 public:
  using store_type = Store<State, Commands...>;

  Replica(std::filesystem::path path, const std::string& primary, store_options options = {},
          std::chrono::milliseconds retry = std::chrono::milliseconds(200))
      : path_(std::move(path)), options_(std::move(options)) {
    const endpoint at = endpoint::parse(primary);
    open_store(at);
    link_ = std::make_unique<detail::ReplicaLink>(
        at,
        detail::ReplicaLink::hooks{
            [this](const std::function<void(::prevalent::detail::StoreCore&)>& f) {
              std::shared_lock g(swap_);
              f(access::core(*store_));
            },
            [this](const std::vector<raw_record>* batch) { apply(batch); },
            [this, at](const detail::snapshot_file& file) { reopen_with(file, at); },
            [this, at](std::uint64_t keep_through) { reopen_cut(keep_through, at); }},
        retry);
    link_->start();
  }
  ~Replica() { close(); }
  Replica(const Replica&) = delete;
  Replica& operator=(const Replica&) = delete;

  // Runs f(const State&) under the state's shared lock (Store::query).
  template <class F>
  auto query(F&& f) const {
    std::shared_lock g(swap_);
    return store_->query(std::forward<F>(f));
  }
  // Always throws errc::read_only_replica, naming the primary.
  template <class C>
  auto execute(const C& command) {
    std::shared_lock g(swap_);
    return store_->execute(command);
  }

  replica_lag lag() const {
    replica_lag l = link_ ? link_->lag() : replica_lag{};
    std::shared_lock g(swap_);
    l.applied_seq = store_->last_sequence();
    l.durable_seq = store_->durable_sequence();
    return l;
  }
  std::uint64_t last_sequence() const {
    std::shared_lock g(swap_);
    return store_->last_sequence();
  }
  // Returns true once record `seq` is applied, false when `until` passes first.
  bool wait_applied(std::uint64_t seq, std::chrono::steady_clock::time_point until) const {
    std::unique_lock g(applied_mutex_);
    return applied_cv_.wait_until(g, until, [&] { return last_sequence() >= seq; });
  }
  // Stops following and closes the store (Store::close). Later calls do nothing.
  void close() {
    if (link_) link_->stop();
    std::unique_lock g(swap_);
    if (store_) store_->close();
  }
  // The store itself, for what Replica does not forward (metrics, recovery, segments).
  // Commands on it are refused as well. Not across a snapshot catch-up, which replaces it.
  const store_type& store() const { return *store_; }

 private:
  using access = ::prevalent::detail::store_access<State, Commands...>;

  void open_store(const endpoint& at) {
    detail::finish_catch_up(open_posix_directory(path_, modes_of(options_)));
    store_ = std::make_unique<store_type>(path_, options_);
    access::core(*store_).set_read_only("this store is a replica of " + at.to_string() +
                                        "; send commands to the primary");
  }
  void apply(const std::vector<raw_record>* batch) {
    {
      std::shared_lock g(swap_);
      auto& core = access::core(*store_);
      if (batch)
        core.apply_records(*batch, access::replayer(access::state(*store_)));
      else
        core.apply_journal(access::replayer(access::state(*store_)));
    }
    std::lock_guard g(applied_mutex_);
    applied_cv_.notify_all();
  }
  void reopen_with(const detail::snapshot_file& file, const endpoint& at) {
    reopen(at, [&] {
      detail::install_snapshot(open_posix_directory(path_, modes_of(options_)), file);
    });
  }
  void reopen_cut(std::uint64_t keep_through, const endpoint& at) {
    reopen(at, [&] {
      detail::cut_back(open_posix_directory(path_, modes_of(options_)), keep_through, options_);
    });
  }
  template <class F>
  void reopen(const endpoint& at, F&& change) {
    {
      std::unique_lock g(swap_);
      detail::close_change_reopen(store_, change, [&] { open_store(at); });
    }
    std::lock_guard g(applied_mutex_);
    applied_cv_.notify_all();
  }

  std::filesystem::path path_;
  store_options options_;
  mutable std::shared_mutex swap_;  // exclusive only while a catch-up or a cut replaces store_
  std::unique_ptr<store_type> store_;
  mutable std::mutex applied_mutex_;
  mutable std::condition_variable applied_cv_;
  std::unique_ptr<detail::ReplicaLink> link_;  // last: its thread uses the members above
};

}  // namespace prevalent::repl

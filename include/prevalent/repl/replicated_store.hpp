// A store that is one node of a replicated cluster (issue 11, docs/REPLICATION.md "Promotion
// and demotion"): it owns a Store<State, Commands...> in its directory and a ReplicationNode
// over it, so a failover coordinator can make it a primary of an epoch, a replica of another
// node, or stop it acknowledging, without closing the store; only a snapshot catch-up or a
// cut-back closes and reopens it (in process, under an exclusive lock that queries wait for).
//
//   prevalent::repl::ReplicatedStore<Bank, Deposit> node{"/var/lib/bank", options};
//   node.node().become_primary(epoch, 7000);     // or node.node().follow(endpoint, epoch)
//   node.execute(Deposit{"alice", 1});            // refused unless primary
//
// Part of prevalent-repl, like replica.hpp. Threads: every member may be called from any thread.
#pragma once

#include <filesystem>
#include <memory>
#include <shared_mutex>

#include "prevalent/repl/replication_node.hpp"

namespace prevalent::repl {

template <class State, class... Commands>
class ReplicatedStore {
 public:
  using store_type = Store<State, Commands...>;

  explicit ReplicatedStore(std::filesystem::path path, store_options options = {},
                           node_options node = {})
      : path_(std::move(path)), options_(std::move(options)) {
    open_store();
    node_ = std::make_unique<ReplicationNode>(
        ReplicationNode::hooks{
            [this](const std::function<void(::prevalent::detail::StoreCore&)>& f) {
              std::shared_lock g(swap_);
              f(access::core(*store_));
            },
            [this](const std::vector<raw_record>* batch) {
              std::shared_lock g(swap_);
              auto& core = access::core(*store_);
              if (batch)
                core.apply_records(*batch, access::replayer(access::state(*store_)));
              else
                core.apply_journal(access::replayer(access::state(*store_)));
            },
            [this](const detail::snapshot_file& file) {
              reopen([&] {
                detail::install_snapshot(open_posix_directory(path_, modes_of(options_)), file);
              });
            },
            [this](std::uint64_t keep_through) {
              reopen([&] {
                detail::cut_back(open_posix_directory(path_, modes_of(options_)), keep_through,
                                 options_);
              });
            }},
        node);
  }
  ~ReplicatedStore() { close(); }
  ReplicatedStore(const ReplicatedStore&) = delete;
  ReplicatedStore& operator=(const ReplicatedStore&) = delete;

  template <class F>
  auto query(F&& f) const {
    std::shared_lock g(swap_);
    return store_->query(std::forward<F>(f));
  }
  // Store::execute; refused (errc::read_only_replica) unless this node is the primary.
  template <class C>
  auto execute(const C& command) {
    std::shared_lock g(swap_);
    return store_->execute(command);
  }
  std::uint64_t last_sequence() const {
    std::shared_lock g(swap_);
    return store_->last_sequence();
  }
  std::uint64_t durable_sequence() const {
    std::shared_lock g(swap_);
    return store_->durable_sequence();
  }
  ReplicationNode& node() { return *node_; }
  const ReplicationNode& node() const { return *node_; }
  // Runs f(const store_type&) with the store (metrics, segments), which a reopen replaces.
  template <class F>
  auto with_store(F&& f) const {
    std::shared_lock g(swap_);
    return f(*store_);
  }
  void close() {
    if (node_) node_->stop();
    std::unique_lock g(swap_);
    if (store_) store_->close();
  }

 private:
  using access = ::prevalent::detail::store_access<State, Commands...>;

  void open_store() {
    detail::finish_catch_up(open_posix_directory(path_, modes_of(options_)));
    store_ = std::make_unique<store_type>(path_, options_);
    // Before anyone can reach it: only become_primary() makes a node accept commands.
    access::core(*store_).set_read_only("this node is not the primary");
  }
  // detail::close_change_reopen (replica.hpp) under the exclusive lock. The node makes the new
  // store read-only again.
  template <class F>
  void reopen(F&& change) {
    std::unique_lock g(swap_);
    detail::close_change_reopen(store_, change, [&] { open_store(); });
  }

  std::filesystem::path path_;
  store_options options_;
  mutable std::shared_mutex swap_;
  std::unique_ptr<store_type> store_;
  std::unique_ptr<ReplicationNode> node_;  // last: its threads use the members above
};

}  // namespace prevalent::repl

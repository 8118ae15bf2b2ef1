// Replication in prevalent-kv (issue 11, docs/REPLICATION.md "In the kv server"): a primary
// serves its journal to replicas (--repl-port, lib/repl's ReplicationPrimary on the
// AsyncStore's store), a fixed replica (--replica-of HOST:PORT) follows one (lib/repl's
// ReplicaLink applying into the AsyncStore's store, which refuses commands). What INFO
// replication, ROLE and WAIT report comes from here.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "replica.hpp"
#include "server.hpp"

namespace kv {

class Replication {
 public:
  // A primary serving replicas on 127.0.0.1:`port` (0: any free port).
  Replication(KvAsyncStore& store, std::uint16_t port);
  // A replica of `primary` ("host:port"): marks the store read-only and follows. `install`
  // runs on the link's thread when the replica is too far behind and must install the
  // primary's snapshot (prevalent-kv closes the store, installs it and re-executes itself).
  Replication(KvAsyncStore& store, const std::string& primary,
              std::function<void(const prevalent::repl::detail::snapshot_file&)> install);
  ~Replication();
  Replication(const Replication&) = delete;
  Replication& operator=(const Replication&) = delete;

  bool is_replica() const { return link_ != nullptr; }
  std::uint16_t repl_port() const { return primary_ ? primary_->port() : 0; }
  // Stops serving or following (before the store closes).
  void stop();

  // INFO's Replication section's fields, in Redis's names (offsets are sequence numbers).
  void info(const std::function<void(std::string_view, const std::string&)>& field) const;
  // ROLE's reply.
  std::string role_reply() const;
  // How many replicas acknowledged `seq` durable (WAIT); 0 on a replica.
  unsigned replicas_at(std::uint64_t seq) const;

 private:
  KvAsyncStore& store_;
  std::unique_ptr<prevalent::repl::ReplicationPrimary> primary_;
  prevalent::repl::endpoint primary_at_;
  std::unique_ptr<prevalent::repl::detail::ReplicaLink> link_;
};

// Standalone (no --repl-port, no --replica-of): INFO's fields of a master without replicas.
void standalone_info(KvAsyncStore& store,
                     const std::function<void(std::string_view, const std::string&)>& field);

}  // namespace kv

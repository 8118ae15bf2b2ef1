// prevalent-kv built without prevalent-ha (lib/ha needs Boost >= 1.81 and libsodium): --etcd
// is refused with a message saying so; the other modes of Replication work as ever.
#include <stdexcept>

#include "replication.hpp"
#include "replication_node.hpp"

namespace kv {

Replication::Replication(KvAsyncStore& store, const cluster_config&, cluster_hooks)
    : store_(store) {
  throw std::runtime_error(
      "--etcd: this prevalent-kv was built without prevalent-ha (failover through etcd needs "
      "Boost >= 1.81 and libsodium at build time)");
}

void Replication::start() {}

void Replication::stop() {
  if (primary_) primary_->stop();
  if (link_) link_->stop();
}

bool Replication::may_acknowledge() const { return true; }
std::string Replication::primary_client_address() const { return ""; }
void Replication::cluster_info(
    const std::function<void(std::string_view, const std::string&)>&) const {}
std::string Replication::cluster_role_reply() const { return ""; }

}  // namespace kv

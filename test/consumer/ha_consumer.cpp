// A consumer of prevalent-ha (failover through etcd), built by tools/consumer-check against the
// installed copy: the headers compile, the library links and loads, a client reports an
// endpoint where nothing listens as etcd_error naming it, and a coordinator checks its options.
#include <prevalent/ha/coordinator.hpp>
#include <prevalent/ha/etcd_client.hpp>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>

int main() {
  using namespace std::chrono_literals;
  const prevalent::ha::EtcdClient client({"http://127.0.0.1:1", 1000ms});  // nothing on port 1
  try {
    client.get("/prevalent/x/leader");
    std::puts("ha-consumer: a get without etcd returned");
    return 1;
  } catch (const prevalent::ha::etcd_error& e) {
    if (e.error_kind() != prevalent::ha::etcd_error::kind::connection ||
        std::string(e.what()).find("http://127.0.0.1:1") == std::string::npos) {
      std::printf("ha-consumer: unexpected error: %s\n", e.what());
      return 1;
    }
  }
  try {
    prevalent::ha::Coordinator c({}, {}, {});  // no cluster name
    std::puts("ha-consumer: a coordinator without options was accepted");
    return 1;
  } catch (const std::invalid_argument&) {
  }
  std::puts("ha-consumer: ok");
  return 0;
}

// The streaming snapshot loader with its sizes as parameters, for the fuzz target and tests
// that exercise parts with small inputs. Store uses detail/snapshot_load.hpp.
#pragma once

#include <cstddef>

#include "prevalent/detail/snapshot_load.hpp"

namespace prevalent::detail {

struct loader_limits {
  std::size_t large_container = 1024;  // entries from which a container is decoded apart
  std::size_t chunk_entries = 4096;    // entries per chunk handed to a thread
};

// load_snapshot_payload() with the given limits.
void load_snapshot_payload(byte_view payload, codec c,
                           const std::function<void(const nlohmann::json&)>& from_tree,
                           const loader_limits& limits);

}  // namespace prevalent::detail

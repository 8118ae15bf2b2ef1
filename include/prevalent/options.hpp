// Options of a Store, checked when it opens.
#pragma once

#include <cstdint>

#include "prevalent/journal.hpp"

namespace prevalent {

#ifdef NDEBUG
inline constexpr bool verify_encoding_by_default = false;
#else
inline constexpr bool verify_encoding_by_default = true;
#endif

struct store_options {
  // A journal segment is closed once it would grow past this size (minimum 72 bytes).
  std::uint64_t segment_bytes = 64ull << 20;
  // Largest encoded command accepted (at most 1 GiB).
  std::uint32_t max_record_bytes = 16u << 20;
  // Snapshots kept on disk (at least 1). The journal is kept back to the oldest of them, so a
  // damaged newest snapshot can be skipped on open.
  unsigned keep_snapshots = 2;
  // Apply each command as decoded from its own encoded bytes, so a field the serialization
  // forgets shows up at once instead of only after a replay. On by default in debug builds,
  // always on in transient stores.
  bool verify_encoding = verify_encoding_by_default;
  // Receives recovery events (a torn tail cut off, a damaged snapshot skipped).
  log_function log;
};

}  // namespace prevalent

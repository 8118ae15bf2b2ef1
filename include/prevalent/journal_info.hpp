// What a store tells about its journal: a verified record as replay sees it, what recovery
// found on open, and the segments on disk. Plain values, safe to copy and keep.
#pragma once

#include <cstdint>
#include <string>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"

namespace prevalent {

// One verified record, as handed to a visitor. `payload` is valid only during the call.
struct record_view {
  std::uint64_t seq;
  std::int64_t timestamp_ns;
  byte_view payload;
  prevalent::codec codec;  // how the payload is encoded (from the segment header)
  const std::string& file;
  std::uint64_t offset;     // of the record header within `file`
  std::uint64_t epoch = 0;  // of the primary that wrote it (segment header; 0: not replicated)
};

// What recovery found when the journal was opened.
struct recovery_report {
  std::size_t segments = 0;
  std::uint64_t records = 0;     // records verified
  std::uint64_t replayed = 0;    // records handed to the visitor (those after the snapshot)
  std::uint64_t torn_bytes = 0;  // bytes cut from the tail of the last segment
  std::string torn_file;         // where, if torn_bytes > 0 or a segment was removed
  std::uint64_t torn_offset = 0;
  std::string torn_reason;
  // No segment was left (or only an unfinished one) though start_seq > 1 (a snapshot covers
  // the records before it): segments were deleted, and any records after the snapshot are
  // lost. Logged; the journal goes on from start_seq.
  bool segments_missing = false;
};

struct segment_info {
  std::string file;
  std::uint64_t first_seq;
  std::uint64_t last_seq;  // first_seq - 1 when the segment holds no record
  std::uint64_t bytes;
  std::uint64_t epoch = 0;  // of every record in it (0: written by a store not replicated)
};

}  // namespace prevalent

// Verifies one journal segment image record by record and sorts every failure into: clean end,
// torn tail (an unfinished write at the end of the last segment, safe to cut off), or
// corruption (thrown, with file and byte offset). Used by journal recovery and replay.
#pragma once

#include <functional>
#include <string>

#include "prevalent/format.hpp"
#include "prevalent/journal.hpp"

namespace prevalent::detail {

struct scan_result {
  format::segment_header header;
  std::uint64_t records = 0;
  std::uint64_t last_seq = 0;   // header.first_seq - 1 when the segment holds no record
  std::uint64_t valid_end = 0;  // offset just past the last good record
  std::string torn_reason;      // nonempty: the bytes from valid_end on are an unfinished write
};

// True when `data` is a segment whose creation never finished (header short or all zeros and
// nothing after it): possible only for the last segment, which then holds no record.
bool unfinished_segment(byte_view data);

// Scans `data`, the contents of segment `file`. `last` says whether it is the journal's last
// segment (only that one may have a torn tail). Calls `visit` for each good record.
scan_result scan_segment(byte_view data, const std::string& file, bool last,
                         std::uint32_t max_payload, const Journal::visitor& visit);

}  // namespace prevalent::detail

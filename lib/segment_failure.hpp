// What a record that failed verification means: the clean end of the log, a torn tail (an
// unfinished write at the end of the last segment, safe to cut off), or corruption (thrown,
// with file and byte offset). The rules are docs/FORMAT.md's recovery table; the run index
// decides whether the verified records after the failure point belong to the unsynced write.
// Used by segment_reader on its failure path only, so it may look at the whole rest of the
// segment.
#pragma once

#include <cstdint>
#include <string>

#include "prevalent/bytes.hpp"
#include "prevalent/format.hpp"

namespace prevalent::detail {

// Where the failure happened and what came before it.
struct failure_point {
  const std::string& file;
  std::uint64_t offset;  // of the failed record; a multiple of format::alignment
  bool last;             // the journal's last segment: the only one that may have a torn tail
  std::uint32_t salt;
  std::uint32_t max_payload;
  std::uint64_t prev_seq;   // the last good record (first_seq - 1 if none)
  std::uint64_t run_begin;  // first record of the run prev_seq belongs to
};

// `rest` is the segment from the failed record `failed` to its end. Returns "" for a clean
// end (zero fill), the reason for a torn tail, or throws prevalent::error (corrupt_record).
std::string classify_failure(const failure_point& at, const format::decoded_record& failed,
                             byte_view rest);

}  // namespace prevalent::detail

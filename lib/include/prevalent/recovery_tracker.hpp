// Follows a store's open for store_options::on_recovery_progress (recovery_progress.hpp):
// reports when the open starts, at most every 100 ms while the snapshot loads and the journal
// replays, and once at the end. Cheap per record: a count, and a look at the clock every
// 1,024 records. Without a progress function it only counts.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>

#include "prevalent/directory.hpp"
#include "prevalent/journal_info.hpp"
#include "prevalent/recovery_progress.hpp"

namespace prevalent::detail {

class recovery_tracker {
 public:
  using clock = std::chrono::steady_clock;

  // With `report`: lists the snapshots and journal segments in `dir` for the totals and makes
  // the first report (which may throw: the open is cancelled).
  recovery_tracker(Directory& dir, progress_function report);

  // The snapshot covering records through `last_seq` is decoded.
  void snapshot_loaded(std::uint64_t last_seq);
  // Journal record `r` has been handed to the replay.
  void record(const record_view& r) {
    ++progress_.records_replayed;
    if (report_ && (progress_.records_replayed & 1023) == 0) tick(r);
  }
  // The state is complete: the final report, with `replayed` records.
  void finish(std::uint64_t replayed);

 private:
  void tick(const record_view& r);
  void emit();

  progress_function report_;
  recovery_progress progress_;
  std::map<std::uint64_t, std::uint64_t> snapshot_sizes_;  // by last sequence number
  std::map<std::string, std::uint64_t> segment_base_;      // bytes of the segments before it
  clock::time_point last_report_{};
};

}  // namespace prevalent::detail

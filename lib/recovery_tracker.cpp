// recovery_tracker (recovery_tracker.hpp).
#include "prevalent/recovery_tracker.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include "prevalent/format.hpp"

namespace prevalent::detail {

namespace {
constexpr auto report_every = std::chrono::milliseconds(100);
}

recovery_tracker::recovery_tracker(Directory& dir, progress_function report)
    : report_(std::move(report)) {
  if (!report_) return;
  std::vector<std::pair<std::uint64_t, std::string>> segments;
  for (const auto& name : dir.list()) {
    if (auto seq = format::parse_snapshot_file_name(name))
      snapshot_sizes_[*seq] = dir.open(name, Directory::open_mode::read)->size();
    else if (auto first = format::parse_segment_file_name(name))
      segments.emplace_back(*first, name);
  }
  std::sort(segments.begin(), segments.end());
  for (const auto& [first, name] : segments) {
    segment_base_[dir.describe(name)] = progress_.journal_bytes_total;
    progress_.journal_bytes_total += dir.open(name, Directory::open_mode::read)->size();
  }
  if (!snapshot_sizes_.empty()) progress_.snapshot_bytes_total = snapshot_sizes_.rbegin()->second;
  emit();
}

void recovery_tracker::snapshot_loaded(std::uint64_t last_seq) {
  if (!report_) return;
  const auto it = snapshot_sizes_.find(last_seq);
  // An older snapshot stood in for a damaged newer one: its size is the total now.
  if (it != snapshot_sizes_.end()) progress_.snapshot_bytes_total = it->second;
  progress_.snapshot_bytes_loaded = progress_.snapshot_bytes_total;
  progress_.phase = recovery_phase::journal;
  if (clock::now() - last_report_ >= report_every) emit();
}

void recovery_tracker::tick(const record_view& r) {
  const auto now = clock::now();
  if (now - last_report_ < report_every) return;
  progress_.phase = recovery_phase::journal;
  if (const auto it = segment_base_.find(r.file); it != segment_base_.end())
    progress_.journal_bytes_read =
        std::min(progress_.journal_bytes_total,
                 std::max(progress_.journal_bytes_read, it->second + r.offset));
  emit();
}

void recovery_tracker::finish(std::uint64_t replayed) {
  if (!report_) return;
  progress_.phase = recovery_phase::done;
  progress_.snapshot_bytes_loaded = progress_.snapshot_bytes_total;
  progress_.records_replayed = std::max(progress_.records_replayed, replayed);
  progress_.journal_bytes_read = progress_.journal_bytes_total;
  emit();
}

void recovery_tracker::emit() {
  report_(std::as_const(progress_));
  // After the call: the next one comes at least report_every after this one returned.
  last_report_ = clock::now();
}

}  // namespace prevalent::detail

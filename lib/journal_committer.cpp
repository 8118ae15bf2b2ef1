// Journal: the write path. append() queues in the commit queue; one committer thread per
// journal takes what is queued, frames it, writes it with one write (rolling segments as
// needed), syncs it per the policy, and reports each step back to the queue, which wakes the
// waiters and runs the on_safe() hooks.
#include <algorithm>
#include <cstdint>

#include "commit_queue.hpp"
#include "prevalent/error.hpp"
#include "prevalent/journal.hpp"

namespace prevalent {

Journal::~Journal() {
  try {
    close();
  } catch (const std::exception& e) {
    if (log_) {
      try {
        log_("journal in " + dir_->path() +
             " did not close cleanly, records may be lost: " + e.what());
      } catch (...) {
      }
    }
  }
}

void Journal::close() {
  queue_->stop();
  if (committer_.joinable()) committer_.join();
  queue_->close_hooks();
  // The committer has stopped: the failure no longer changes.
  if (auto e = queue_->failure()) std::rethrow_exception(e);
}

std::uint64_t Journal::append(std::int64_t timestamp_ns, std::string payload) {
  if (payload.empty() || payload.size() > options_.max_record_bytes)
    throw error(errc::record_too_large, "record of " + std::to_string(payload.size()) +
                                            " bytes is outside 1 .. max_record_bytes (" +
                                            std::to_string(options_.max_record_bytes) + ")");
  return queue_->push(timestamp_ns, std::move(payload));
}

void Journal::wait(std::uint64_t seq) { queue_->wait_safe(seq); }
void Journal::sync_through(std::uint64_t seq) { queue_->wait_durable(seq); }
void Journal::flush_through(std::uint64_t seq) { queue_->wait_written(seq); }
void Journal::on_safe(std::uint64_t seq, std::function<void(std::exception_ptr)> done) {
  queue_->on_safe(seq, std::move(done));
}

std::uint64_t Journal::written_seq() const { return queue_->written(); }
std::uint64_t Journal::durable_seq() const { return queue_->durable(); }
bool Journal::failed() const { return queue_->failed(); }

void Journal::run_committer() {
  using clock = std::chrono::steady_clock;
  const auto mode = options_.sync.mode();
  const auto period = options_.sync.period();
  detail::commit_queue& queue = *queue_;
  std::vector<detail::pending_record> batch;
  for (;;) {
    auto unsynced = [&] { return queue.written() > queue.durable(); };
    std::optional<clock::time_point> sync_due;
    if (mode == sync_policy::kind::interval && unsynced()) sync_due = last_sync_ + period;
    const auto taken = queue.take(batch, sync_due);
    try {
      if (!batch.empty()) {
        write_batch(batch);
        queue.written_through(batch.back().seq, taken.bytes);
      }
      bool sync = mode == sync_policy::kind::always || taken.sync_wanted > queue.durable() ||
                  taken.stop ||
                  (mode == sync_policy::kind::interval && clock::now() >= last_sync_ + period);
      if (sync && unsynced()) {
        const std::uint64_t target = queue.written();  // only the committer moves it
        sync_active();
        run_start_ = target + 1;
        // Under `always` every batch is synced in the iteration that wrote it, so this sync
        // completes exactly the waiters of this batch; any other sync may complete waiters
        // of earlier batches too.
        queue.durable_through(target, mode == sync_policy::kind::always ? taken.number : 0);
      }
    } catch (...) {
      queue.fail(std::current_exception());
      return;
    }
    batch.clear();
    if (taken.stop && queue.last_appended() <= queue.written()) return;
  }
}

void Journal::write_batch(std::vector<detail::pending_record>& batch) {
  std::lock_guard g(files_mutex_);
  segment* active = &segments_.back();
  std::uint64_t framed_last_seq = 0;
  auto write_frame = [&] {
    if (frame_.empty()) return;
    preallocate(*active, active->bytes + frame_.size());
    active_->write_at(active->bytes, frame_);
    active->bytes += frame_.size();
    active->last_seq = framed_last_seq;
    bytes_written_ += frame_.size();
    frame_.clear();
  };
  frame_.clear();
  for (auto& rec : batch) {
    const std::size_t size = format::framed_size(rec.payload.size());
    const bool holds_records = active->last_seq >= active->first_seq || !frame_.empty();
    if (holds_records && active->bytes + frame_.size() + size > options_.segment_bytes) {
      write_frame();
      if (active->allocated > active->bytes) active_->truncate(active->bytes);  // drop zero fill
      active_->sync();  // records of the closing segment are durable before the roll
      start_segment(rec.seq);
      active = &segments_.back();
    }
    if (rec.seq - run_start_ > UINT32_MAX) {
      // The run index has 32 bits; 4 billion records without a sync (under policy `none`)
      // end the run with one.
      write_frame();
      active_->sync();
      run_start_ = rec.seq;
    }
    format::append_record(frame_, active->salt, rec.seq, rec.timestamp_ns, as_bytes(rec.payload),
                          static_cast<std::uint32_t>(rec.seq - run_start_));
    framed_last_seq = rec.seq;
  }
  write_frame();
}

void Journal::preallocate(segment& active, std::uint64_t needed_end) {
  if (needed_end <= active.allocated) return;
  std::uint64_t target = needed_end;
  if (options_.preallocate_bytes > 0)
    target = std::max(needed_end, std::min(active.allocated + options_.preallocate_bytes,
                                           options_.segment_bytes));
  static const bytes zeros(1u << 20, 0);
  // Zero-fill [allocated, target) except the part the caller is about to write anyway.
  for (std::uint64_t at = std::max(active.allocated, needed_end); at < target;) {
    const std::uint64_t n = std::min<std::uint64_t>(zeros.size(), target - at);
    active_->write_at(at, byte_view(zeros).first(n));
    at += n;
  }
  active.allocated = target;
}

void Journal::sync_active() {
  std::shared_ptr<File> file;
  {
    std::lock_guard g(files_mutex_);
    file = active_;
  }
  file->sync();
  last_sync_ = std::chrono::steady_clock::now();
}

}  // namespace prevalent

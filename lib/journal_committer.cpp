// Journal: the write path. append() queues in the commit queue; one committer thread per
// journal takes what is queued, frames it, writes it with one write (rolling segments as
// needed), syncs it per the policy, and reports each step back to the queue, which wakes the
// waiters and runs the on_safe() hooks.
#include <algorithm>
#include <cstdint>

#include "commit_queue.hpp"
#include "prevalent/error.hpp"
#include "prevalent/journal.hpp"
#include "segment_writer.hpp"

namespace prevalent {

Journal::~Journal() {
  if (closed_) return;  // an explicit close() already reported what failed
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
  closed_ = true;
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

void Journal::set_epoch(std::uint64_t epoch) { queue_->set_epoch(epoch); }
std::uint64_t Journal::epoch() const { return queue_->epoch(); }
std::uint64_t Journal::last_epoch() const { return queue_->last_epoch(); }

void Journal::wait(std::uint64_t seq) { queue_->wait_safe(seq); }
void Journal::sync_through(std::uint64_t seq) { queue_->wait_durable(seq); }
void Journal::flush_through(std::uint64_t seq) { queue_->wait_written(seq); }
void Journal::on_safe(std::uint64_t seq, std::function<void(std::exception_ptr)> done) {
  queue_->on_safe(seq, std::move(done));
}

std::uint64_t Journal::written_seq() const { return queue_->written(); }
std::uint64_t Journal::durable_seq() const { return queue_->durable(); }
bool Journal::failed() const { return queue_->failed(); }
std::uint64_t Journal::bytes_written() const { return writer_->bytes_written(); }
std::uint64_t Journal::bytes_held() const { return writer_->bytes_held(); }
std::size_t Journal::segment_count() const { return writer_->segment_count(); }

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
        writer_->write(batch);
        queue.written_through(batch.back().seq, taken.bytes);
      }
      bool sync = mode == sync_policy::kind::always || taken.sync_wanted > queue.durable() ||
                  taken.stop ||
                  (mode == sync_policy::kind::interval && clock::now() >= last_sync_ + period);
      if (sync && unsynced()) {
        const std::uint64_t target = queue.written();  // only the committer moves it
        const auto sync_began = clock::now();
        writer_->sync();
        last_sync_ = clock::now();
        meters_.syncs.fetch_add(1, std::memory_order_relaxed);
        meters_.records_per_sync.record(target - queue.durable());
        meters_.sync_ns.record(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(last_sync_ - sync_began).count()));
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

}  // namespace prevalent

// Journal: the write path. append() queues; one committer thread per journal frames what is
// queued, writes it with one write (rolling segments as needed) and syncs it per the policy;
// callers wait on the progress marks written_ and durable_.
#include <algorithm>
#include <cstdint>

#include "prevalent/error.hpp"
#include "prevalent/journal.hpp"

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
  {
    std::lock_guard q(queue_mutex_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  if (committer_.joinable()) committer_.join();
  // The committer has stopped: failure_ no longer changes.
  if (failure_) throw_failure();
}

std::uint64_t Journal::append(std::int64_t timestamp_ns, std::string payload) {
  if (payload.empty() || payload.size() > options_.max_record_bytes)
    throw error(errc::record_too_large, "record of " + std::to_string(payload.size()) +
                                            " bytes is outside 1 .. max_record_bytes (" +
                                            std::to_string(options_.max_record_bytes) + ")");
  std::unique_lock q(queue_mutex_);
  if (stopping_) throw error(errc::closed, "journal in " + dir_->path() + " is closed");
  space_cv_.wait(q, [&] { return pending_bytes_ < options_.max_queued_bytes || failure_; });
  if (failure_)
    throw error(errc::store_failed, "journal in " + dir_->path() +
                                        " failed after an I/O error; reopen the store to go on");
  const std::uint64_t seq = ++last_appended_;
  pending_bytes_ += payload.size();
  pending_.push_back({seq, timestamp_ns, std::move(payload)});
  pending_count_.store(pending_.size(), std::memory_order_relaxed);
  // The committer checks the queue under this mutex before it sleeps, so it only needs
  // waking when the queue goes from empty to not empty.
  if (pending_.size() == 1) work_cv_.notify_one();
  return seq;
}

void Journal::wait(std::uint64_t seq) {
  switch (options_.sync.mode()) {
    case sync_policy::kind::always: return wait_until(durable_, seq, false);
    case sync_policy::kind::interval: return wait_until(written_, seq, false);
    case sync_policy::kind::none: return;
  }
}

void Journal::sync_through(std::uint64_t seq) { wait_until(durable_, seq, true); }

void Journal::flush_through(std::uint64_t seq) { wait_until(written_, seq, false); }

void Journal::wait_until(const std::atomic<std::uint64_t>& mark, std::uint64_t seq,
                         bool request_sync) {
  if (mark.load() >= seq) return;
  if (request_sync) {
    std::lock_guard q(queue_mutex_);
    if (sync_requested_ < seq) {
      sync_requested_ = seq;
      work_cv_.notify_one();
    }
  }
  // Wait on the progress counter with a futex rather than a condition variable: when a
  // group commit completes, dozens of waiters wake at once, and with a condition variable
  // each would queue for the same mutex only to re-check one number.
  // A lone waiter first spins briefly: a futex wake-up costs tens of microseconds on these
  // machines, a noticeable share of one fdatasync. Crowds do not spin; they would take the
  // CPU from each other and from the committer.
  const bool spin = waiters_.fetch_add(1) == 0;
  struct leave {
    std::atomic<int>& n;
    ~leave() { n.fetch_sub(1); }
  } on_exit{waiters_};
  const auto spin_until = std::chrono::steady_clock::now() + std::chrono::microseconds(400);
  std::atomic<std::uint32_t>& progress = progress_word_for(seq);
  for (unsigned round = 0;; ++round) {
    const std::uint32_t seen = progress.load();
    if (mark.load() >= seq) return;
    if (failed_.load()) {
      std::lock_guard q(queue_mutex_);
      throw_failure();
    }
    if (spin && (round % 64 != 0 || std::chrono::steady_clock::now() < spin_until)) {
      std::this_thread::yield();
      continue;
    }
    progress.wait(seen);
  }
}

std::atomic<std::uint32_t>& Journal::progress_word_for(std::uint64_t seq) const {
  // A consistent (batch number, highest sequence taken) pair from the seqlock. A record not
  // yet taken goes into the next batch, which takes everything queued.
  for (;;) {
    const std::uint64_t version = taken_version_.load();
    const std::uint64_t through = taken_through_.load();
    if (version % 2 == 0 && taken_version_.load() == version) {
      const std::uint64_t batch = version / 2 + (seq > through ? 1 : 0);
      return progress_[batch % 2];
    }
  }
}

void Journal::announce_batch(std::uint64_t batch) {
  progress_[batch % 2].fetch_add(1);
  progress_[batch % 2].notify_all();
}

void Journal::announce_progress() {
  for (auto& word : progress_) {
    word.fetch_add(1);
    word.notify_all();
  }
}

void Journal::throw_failure() const { std::rethrow_exception(failure_); }

void Journal::fail(const std::exception_ptr& e) {
  // Called with queue_mutex_ held. Never retried (R5): after a failed fsync the page cache
  // cannot be trusted, so the journal accepts nothing more until it is reopened.
  failure_ = e;
  failed_ = true;
  pending_.clear();
  pending_bytes_ = 0;
  pending_count_ = 0;
  announce_progress();
  space_cv_.notify_all();
}

void Journal::run_committer() {
  using clock = std::chrono::steady_clock;
  const auto mode = options_.sync.mode();
  const auto period = options_.sync.period();
  std::vector<pending_record> batch;
  std::unique_lock q(queue_mutex_);
  for (;;) {
    auto unsynced = [&] { return written_.load() > durable_.load(); };
    auto interval_due = [&] {
      return mode == sync_policy::kind::interval && unsynced() &&
             clock::now() >= last_sync_ + period;
    };
    auto has_work = [&] {
      return !pending_.empty() || stopping_ || sync_requested_ > durable_.load() || interval_due();
    };
    if (!has_work()) {
      // Spin a little before sleeping: a lone writer's next command usually arrives within
      // microseconds of its acknowledgement, sooner than a sleeping thread can be woken.
      q.unlock();
      const auto until = clock::now() + std::chrono::microseconds(50);
      while (pending_count_.load(std::memory_order_relaxed) == 0 && clock::now() < until)
        std::this_thread::yield();
      q.lock();
    }
    if (mode == sync_policy::kind::interval && unsynced())
      work_cv_.wait_until(q, last_sync_ + period, has_work);
    else
      work_cv_.wait(q, has_work);

    batch.swap(pending_);
    std::uint64_t batch_number = 0;
    if (!batch.empty()) {
      taken_version_.fetch_add(1);  // odd: the pair is changing
      taken_through_.store(batch.back().seq);
      batch_number = taken_version_.fetch_add(1) / 2 + 1;
    }
    // The batch's bytes stay counted in pending_bytes_ until they are written: the bound on
    // accepted-but-unwritten bytes is what a process crash can lose under policy `none`.
    const std::size_t batch_bytes = pending_bytes_;
    pending_count_.store(0, std::memory_order_relaxed);
    const bool stop = stopping_;
    const std::uint64_t sync_wanted = sync_requested_;
    q.unlock();
    try {
      if (!batch.empty()) {
        write_batch(batch);
        {
          std::lock_guard written(queue_mutex_);
          pending_bytes_ -= batch_bytes;
        }
        space_cv_.notify_all();
        if (mode != sync_policy::kind::always) announce_progress();
      }
      bool sync = mode == sync_policy::kind::always || sync_wanted > durable_.load() || stop ||
                  (mode == sync_policy::kind::interval && clock::now() >= last_sync_ + period);
      if (sync && unsynced()) {
        sync_active();
        // Under `always` every batch is synced in the iteration that wrote it, so this sync
        // completes exactly the waiters of this batch; any other sync may complete waiters
        // of earlier batches too.
        if (mode == sync_policy::kind::always && !batch.empty())
          announce_batch(batch_number);
        else
          announce_progress();
      }
    } catch (...) {
      q.lock();
      fail(std::current_exception());
      return;
    }
    batch.clear();
    q.lock();
    if (stop && pending_.empty()) return;
  }
}

void Journal::write_batch(std::vector<pending_record>& batch) {
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
  written_ = batch.back().seq;
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
  const std::uint64_t target = written_.load();  // only the committer moves written_
  file->sync();
  durable_ = target;
  run_start_ = target + 1;
  last_sync_ = std::chrono::steady_clock::now();
}

}  // namespace prevalent

#include "commit_queue.hpp"

#include <thread>

#include "prevalent/error.hpp"

namespace prevalent::detail {

commit_queue::commit_queue(sync_policy::kind mode, std::size_t max_queued_bytes, std::string name)
    : mode_(mode), max_queued_bytes_(max_queued_bytes), name_(std::move(name)) {}

void commit_queue::reset(std::uint64_t seq, std::uint64_t last_epoch) {
  std::lock_guard q(mutex_);
  last_appended_ = seq;
  last_epoch_ = last_epoch;
  written_ = durable_ = seq;
}

void commit_queue::wait_for_room(std::unique_lock<std::mutex>& q) {
  if (stopping_) throw error(errc::closed, name_ + " is closed");
  space_cv_.wait(q, [&] { return pending_bytes_ < max_queued_bytes_ || failure_; });
  if (failure_)
    throw error(errc::store_failed,
                name_ + " failed after an I/O error; reopen the store to go on");
}

void commit_queue::enqueue(pending_record record) {
  pending_bytes_ += record.payload.size();
  pending_.push_back(std::move(record));
  pending_count_.store(pending_.size(), std::memory_order_relaxed);
  // The committer checks the queue under this mutex before it sleeps, so it only needs
  // waking when the queue goes from empty to not empty.
  if (pending_.size() == 1) work_cv_.notify_one();
}

std::uint64_t commit_queue::push(std::int64_t timestamp_ns, std::string payload) {
  std::unique_lock q(mutex_);
  wait_for_room(q);
  if (epoch_ < last_epoch_)
    throw error(errc::stale_epoch, name_ + " holds records of epoch " +
                                       std::to_string(last_epoch_) + ", this store writes with " +
                                       "epoch " + std::to_string(epoch_) +
                                       " (store_options::epoch): epochs never decrease");
  last_epoch_ = epoch_.load();
  const std::uint64_t seq = ++last_appended_;
  enqueue({seq, timestamp_ns, std::move(payload), last_epoch_.load()});
  return seq;
}

void commit_queue::push_numbered(pending_record record) {
  std::unique_lock q(mutex_);
  wait_for_room(q);
  if (record.seq != last_appended_ + 1)
    throw error(errc::sequence_gap, name_ + ": record " + std::to_string(record.seq) +
                                        " does not follow the last one, " +
                                        std::to_string(last_appended_));
  if (record.epoch < last_epoch_)
    throw error(errc::stale_epoch, name_ + ": record " + std::to_string(record.seq) +
                                       " is of epoch " + std::to_string(record.epoch) +
                                       ", older than the last record's, " +
                                       std::to_string(last_epoch_));
  last_appended_ = record.seq;
  last_epoch_ = record.epoch;
  enqueue(std::move(record));
}

void commit_queue::set_epoch(std::uint64_t epoch) {
  std::lock_guard q(mutex_);
  if (epoch < last_epoch_)
    throw error(errc::stale_epoch, name_ + ": epoch " + std::to_string(epoch) +
                                       " is below the last record's, " +
                                       std::to_string(last_epoch_) + ": epochs never decrease");
  epoch_ = epoch;
}

std::uint64_t commit_queue::epoch() const { return epoch_.load(); }

std::uint64_t commit_queue::last_epoch() const { return last_epoch_.load(); }

void commit_queue::stop() {
  {
    std::lock_guard q(mutex_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  ended_ = true;
  notify_followers();
}

bool commit_queue::wait_durable_beyond(std::uint64_t seq, clock::time_point until) {
  followers_.fetch_add(1);
  std::unique_lock g(follow_mutex_);
  // The committer stores durable_ before it reads followers_; this thread counted itself
  // before it reads durable_: either it sees the new mark or the committer sees it and
  // notifies under follow_mutex_.
  const bool got = follow_cv_.wait_until(g, until, [&] { return durable_.load() > seq || ended_; });
  g.unlock();
  followers_.fetch_sub(1);
  return got && durable_.load() > seq;
}

void commit_queue::notify_followers() {
  { std::lock_guard g(follow_mutex_); }
  follow_cv_.notify_all();
}

std::uint64_t commit_queue::last_appended() const {
  std::lock_guard q(mutex_);
  return last_appended_;
}

std::exception_ptr commit_queue::failure() const {
  std::lock_guard q(mutex_);
  return failure_;
}

const std::atomic<std::uint64_t>* commit_queue::safe_mark() const {
  switch (mode_) {
    case sync_policy::kind::always: return &durable_;
    case sync_policy::kind::interval: return &written_;
    case sync_policy::kind::none: return nullptr;
  }
  return nullptr;
}

void commit_queue::wait_safe(std::uint64_t seq) {
  if (const auto* mark = safe_mark()) wait_until(*mark, seq, false);
}

void commit_queue::wait_until(const std::atomic<std::uint64_t>& mark, std::uint64_t seq,
                              bool request_sync) {
  if (mark.load() >= seq) return;
  if (request_sync) {
    std::lock_guard q(mutex_);
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
  const auto spin_until = clock::now() + std::chrono::microseconds(400);
  std::atomic<std::uint32_t>& progress = progress_word_for(seq);
  for (unsigned round = 0;; ++round) {
    // Read the word before the mark: a completion moves the mark before it bumps the word,
    // so either this sees the new mark or wait() sees a changed word and returns.
    const std::uint32_t seen = progress.load();
    if (mark.load() >= seq) return;
    if (failed_.load()) {
      std::lock_guard q(mutex_);
      std::rethrow_exception(failure_);
    }
    if (spin && (round % 64 != 0 || clock::now() < spin_until)) {
      std::this_thread::yield();
      continue;
    }
    progress.wait(seen);
  }
}

std::atomic<std::uint32_t>& commit_queue::progress_word_for(std::uint64_t seq) const {
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

void commit_queue::announce_batch(std::uint64_t batch) {
  progress_[batch % 2].fetch_add(1);
  progress_[batch % 2].notify_all();
}

void commit_queue::announce_progress() {
  for (auto& word : progress_) {
    word.fetch_add(1);
    word.notify_all();
  }
}

commit_queue::batch commit_queue::take(std::vector<pending_record>& out,
                                       std::optional<clock::time_point> until) {
  std::unique_lock q(mutex_);
  auto has_work = [&] {
    return !pending_.empty() || stopping_ || sync_requested_ > durable_.load() ||
           (until && clock::now() >= *until);
  };
  if (!has_work()) {
    // Spin a little before sleeping: a lone writer's next command usually arrives within
    // microseconds of its acknowledgement, sooner than a sleeping thread can be woken.
    q.unlock();
    const auto spin_until = clock::now() + std::chrono::microseconds(50);
    while (pending_count_.load(std::memory_order_relaxed) == 0 && clock::now() < spin_until)
      std::this_thread::yield();
    q.lock();
  }
  if (until)
    work_cv_.wait_until(q, *until, has_work);
  else
    work_cv_.wait(q, has_work);

  out.swap(pending_);
  batch b;
  if (!out.empty()) {
    taken_version_.fetch_add(1);  // odd: the pair is changing
    taken_through_.store(out.back().seq);
    b.number = taken_version_.fetch_add(1) / 2 + 1;
  }
  // The batch's bytes stay counted in pending_bytes_ until they are written: the bound on
  // accepted-but-unwritten bytes is what a process crash can lose under policy `none`.
  b.bytes = pending_bytes_;
  pending_count_.store(0, std::memory_order_relaxed);
  b.stop = stopping_;
  b.sync_wanted = sync_requested_;
  return b;
}

void commit_queue::written_through(std::uint64_t seq, std::size_t bytes) {
  written_ = seq;
  {
    std::lock_guard q(mutex_);
    pending_bytes_ -= bytes;
  }
  space_cv_.notify_all();
  if (mode_ != sync_policy::kind::always) {
    announce_progress();
    run_hooks(seq);
  }
}

void commit_queue::durable_through(std::uint64_t seq, std::uint64_t batch_number) {
  durable_ = seq;
  if (batch_number != 0)
    announce_batch(batch_number);
  else
    announce_progress();
  if (followers_.load() > 0) notify_followers();
  if (mode_ == sync_policy::kind::always) run_hooks(seq);
}

void commit_queue::fail(const std::exception_ptr& e) {
  {
    std::lock_guard q(mutex_);
    failure_ = e;
    failed_ = true;
    pending_.clear();
    pending_bytes_ = 0;
    pending_count_ = 0;
  }
  announce_progress();
  space_cv_.notify_all();
  ended_ = true;
  notify_followers();
  fail_hooks(e);
}

}  // namespace prevalent::detail

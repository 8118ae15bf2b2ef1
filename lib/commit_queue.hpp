// The queue between append() and the journal's committer thread, and the progress marks that
// callers wait on. It knows nothing of files: the committer takes a batch, writes and syncs it
// however it likes, and reports back "written through seq", "durable through seq" or failure.
//
// Owns: the queued records and their byte count (max_queued_bytes backpressure: bytes stay
// counted until written, the bound on what a process crash loses under policy `none`); the
// marks written and durable; the futex words waiters sleep on, by the parity of their batch;
// the seqlock of batches taken; the completion hooks of on_safe(); the failure that stops it.
//
// Threads: producers and waiters are any threads; the members under "committer only" are
// called by one thread at a time (the committer; before it starts, the thread that opens).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "prevalent/codec.hpp"
#include "prevalent/sync_policy.hpp"

namespace prevalent::detail {

struct pending_record {
  std::uint64_t seq;
  std::int64_t timestamp_ns;
  std::string payload;
  // The epoch the record is written with (its segment's); a record of another epoch than the
  // active segment's starts a new segment.
  std::uint64_t epoch = 0;
  // A replica's record (Journal::append_raw): its codec, and its payload is stored as given
  // (already sealed when `sealed`), never encoded or sealed again.
  bool raw = false;
  prevalent::codec codec = prevalent::codec::json;
  bool sealed = false;
};

class commit_queue {
 public:
  using clock = std::chrono::steady_clock;
  using completion = std::function<void(std::exception_ptr)>;

  // `mode` says which mark makes a record safe (wait_safe, on_safe). `name` starts error
  // messages ("journal in /some/dir").
  commit_queue(sync_policy::kind mode, std::size_t max_queued_bytes, std::string name);
  commit_queue(const commit_queue&) = delete;
  commit_queue& operator=(const commit_queue&) = delete;

  // ---- any thread ----------------------------------------------------------------------------
  // Queues a record, returns its sequence number. Blocks while max_queued_bytes are queued or
  // being written. Throws errc::closed after stop(), errc::store_failed after fail().
  std::uint64_t push(std::int64_t timestamp_ns, std::string payload);
  // Throws errc::stale_epoch if the epoch set (set_epoch) is below the last record's: epochs
  // never decrease along the journal.
  // Queues a record whose sequence number and epoch are given (a replica's,
  // Journal::append_raw): its seq must be last_appended() + 1 (errc::sequence_gap otherwise),
  // its epoch at least the last record's (errc::stale_epoch). Otherwise as push().
  void push_numbered(pending_record record);
  // The epoch push() gives its records from now on; errc::stale_epoch if below the last
  // record's.
  void set_epoch(std::uint64_t epoch);
  std::uint64_t epoch() const;       // what push() gives its records
  std::uint64_t last_epoch() const;  // of the last record appended (or on disk at reset())
  // Return once `seq` is safe (per the mode) / written / durable; throw the failure otherwise.
  // wait_durable asks the committer for a sync if needed.
  void wait_safe(std::uint64_t seq);
  void wait_written(std::uint64_t seq) { wait_until(written_, seq, false); }
  void wait_durable(std::uint64_t seq) { wait_until(durable_, seq, true); }
  // Calls `done` exactly once: with nullptr once `seq` is safe, with the failure if the queue
  // fails first, with errc::closed if it closes first. At once, on the calling thread, when
  // that is already decided; otherwise on the committer thread inside written_through(),
  // durable_through() or fail(), or in close_hooks(). Callbacks for one mark run in order of
  // seq, then of registration. `done` must be cheap, must not block and must not throw: the
  // committer waits for it before it takes the next batch.
  void on_safe(std::uint64_t seq, completion done);
  // Makes push() throw errc::closed and the committer see `stop` in its next batch.
  void stop();
  // For a follower of the journal (replication): returns true once durable() > seq, false if
  // `until` passes first or the queue stops or fails. Sleeps on a condition variable that
  // durable_through() signals after each sync, only when someone follows.
  bool wait_durable_beyond(std::uint64_t seq, clock::time_point until);

  std::uint64_t last_appended() const;
  std::uint64_t written() const { return written_.load(); }
  std::uint64_t durable() const { return durable_.load(); }
  bool failed() const { return failed_.load(); }
  std::exception_ptr failure() const;

  // ---- committer only ------------------------------------------------------------------------
  // Before the committer starts: every record through `seq` is on disk and durable, the last
  // of them of epoch `last_epoch`.
  void reset(std::uint64_t seq, std::uint64_t last_epoch = 0);
  struct batch {
    std::uint64_t number = 0;       // batches taken so far, counting this one (0: no records)
    std::size_t bytes = 0;          // payload bytes; pass to written_through()
    std::uint64_t sync_wanted = 0;  // a waiter wants durable() >= this
    bool stop = false;              // stop() was called: write, sync, and return
  };
  // Waits until records are queued, a sync is wanted beyond durable(), stop() was called, or
  // `until` (if given) passes; then moves every queued record into `out` (which must be empty).
  batch take(std::vector<pending_record>& out, std::optional<clock::time_point> until);
  // Records through `seq` reached the OS; `bytes` is batch::bytes of the batch that did it.
  void written_through(std::uint64_t seq, std::size_t bytes);
  // Records through `seq` are durable. `batch_number` is the batch whose waiters alone this
  // completes (policy `always`, synced in the iteration that wrote it), or 0 to wake all.
  void durable_through(std::uint64_t seq, std::uint64_t batch_number);
  // Never retried (an fsync that failed leaves the page cache untrustworthy): drops what is
  // queued, wakes every waiter and fails every hook with `e`.
  void fail(const std::exception_ptr& e);
  // After the committer stopped: hooks for records never appended get errc::closed.
  void close_hooks();

 private:
  // Both pushes, under mutex_: throws if closed or failed, waits while the queue is full.
  void wait_for_room(std::unique_lock<std::mutex>& q);
  // Appends a numbered record and wakes the committer if it may be asleep.
  void enqueue(pending_record record);
  void wait_until(const std::atomic<std::uint64_t>& mark, std::uint64_t seq, bool request_sync);
  std::atomic<std::uint32_t>& progress_word_for(std::uint64_t seq) const;
  void announce_batch(std::uint64_t batch);             // wakes the waiters of one batch
  void announce_progress();                             // wakes every waiter
  const std::atomic<std::uint64_t>* safe_mark() const;  // nullptr: safe at once (`none`)
  void run_hooks(std::uint64_t through);
  void fail_hooks(const std::exception_ptr& e);

  const sync_policy::kind mode_;
  const std::size_t max_queued_bytes_;
  const std::string name_;

  mutable std::mutex mutex_;
  std::condition_variable work_cv_;   // committer waits for records or a sync request
  std::condition_variable space_cv_;  // push() waits for queue space
  std::vector<pending_record> pending_;
  std::size_t pending_bytes_ = 0;  // payload bytes pushed and not yet written
  std::uint64_t last_appended_ = 0;
  // Written under mutex_; atomic so that epoch() and last_epoch() need not take it.
  std::atomic<std::uint64_t> epoch_{0};       // given by push() to its records
  std::atomic<std::uint64_t> last_epoch_{0};  // of the last record appended
  std::uint64_t sync_requested_ = 0;          // wait_durable() wants durable_ >= this
  bool stopping_ = false;
  std::exception_ptr failure_;

  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> durable_{0};
  std::atomic<bool> failed_{false};
  // Waiters sleep on one of two futex words, by the parity of the batch their record is in,
  // so that finishing a group commit wakes its own waiters and not those of the next group
  // (which would only go back to sleep: a thundering herd at hundreds of writers).
  mutable std::atomic<std::uint32_t> progress_[2] = {0, 0};
  // Batches taken so far and the highest sequence number in them, published as a seqlock:
  // taken_version_ is odd while the pair changes; batch number = version / 2.
  std::atomic<std::uint64_t> taken_version_{0};
  std::atomic<std::uint64_t> taken_through_{0};
  std::atomic<std::size_t> pending_count_{0};  // pending_.size(), readable without the lock
  std::atomic<int> waiters_{0};                // threads in wait_until()

  // on_safe() registrations by seq; multimap keeps registration order among equal keys.
  std::mutex hooks_mutex_;
  std::multimap<std::uint64_t, completion> hooks_;
  // hooks_.size(), so the committer skips hooks_mutex_ when nobody registered: a registrant
  // counts itself before it reads the mark, the committer moves the mark before it reads this.
  std::atomic<std::size_t> hook_count_{0};
  std::vector<completion> due_;  // committer's scratch for the hooks it is about to call

  // Followers (wait_durable_beyond): counted, so the committer skips the lock when none.
  void notify_followers();
  std::mutex follow_mutex_;
  std::condition_variable follow_cv_;
  std::atomic<int> followers_{0};
  std::atomic<bool> ended_{false};  // stopped or failed: followers stop waiting
};

}  // namespace prevalent::detail

// The journal: a segmented, append-only log of records addressed by contiguous sequence
// numbers. Opening it verifies every record: a torn tail of the last segment (the writer died
// mid-write) is cut off and reported; anything else that fails verification is corruption and
// fails open with the file and byte offset.
//
// Writing is group commit: append() only queues a record (no I/O) and returns its sequence
// number; one committer thread per journal takes everything queued, writes it with one write
// and, under sync policy `always`, one fdatasync, then wakes the callers waiting in wait().
// Records reach the disk in append() order.
//
// Threads: every member may be called from any thread. Callers serialize append() calls when
// the order of records matters (the store appends under its exclusive state lock).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/format.hpp"
#include "prevalent/journal_info.hpp"
#include "prevalent/options.hpp"

namespace prevalent {

class Journal {
 public:
  using visitor = std::function<void(const record_view&)>;

  // Opens the journal in `dir`, verifying every segment, and starts its committer thread.
  // Records with seq >= deliver_from are passed to `visit` in order. When the directory holds
  // no segment, the journal starts at `start_seq`; otherwise it must reach at least
  // start_seq - 1. Throws prevalent::error (corrupt_record, corrupt_segment, sequence_gap,
  // no_usable_snapshot, invalid_option) naming file and offset.
  static std::unique_ptr<Journal> open(std::shared_ptr<Directory> dir, journal_options options,
                                       std::uint64_t start_seq, std::uint64_t deliver_from,
                                       const visitor& visit, const log_function& log = {});

  // The first sequence number held on disk, from segment names alone (nullopt: no segments).
  static std::optional<std::uint64_t> first_seq_on_disk(const Directory& dir);

  // Writes and syncs everything queued, then stops the committer. Throws the I/O error that
  // failed the journal, in this final sync or earlier, so that no loss goes unreported (under
  // sync policy `none` nobody waited for the records it lost). Later appends throw
  // errc::closed. Calling it again only rethrows that error. Not concurrently with itself.
  void close();
  // close(), best effort: an error is passed to the log given to open(), never thrown.
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Queues one record and returns its sequence number. No I/O; blocks only while the queue
  // is over max_queued_bytes. Throws errc::record_too_large, or errc::store_failed once an
  // I/O error has failed the journal.
  std::uint64_t append(std::int64_t timestamp_ns, std::string payload);

  // Returns once record `seq` is as safe as the sync policy promises: durable (`always`),
  // written to the OS (`interval`), or at once (`none`). Throws the I/O error that failed
  // the journal if `seq` did not get there.
  void wait(std::uint64_t seq);
  // Returns once every record up to `seq` is durable, whatever the policy (an fdatasync is
  // requested if needed).
  void sync_through(std::uint64_t seq);
  // Returns once every record up to `seq` has been written to the OS.
  void flush_through(std::uint64_t seq);

  // Visits records with from <= seq <= to that have been written, reading them from disk.
  // Throws errc::sequence_gap, naming the range and the first missing record, unless every
  // one of them (through min(to, written_seq())) was delivered: a range reaching back before
  // first_seq(), or a segment removed or cut short behind the journal's back.
  void for_each(std::uint64_t from, std::uint64_t to, const visitor& visit) const;

  // The payload and timestamp of record `seq`; nullopt if not written or already dropped.
  struct stored_record {
    std::int64_t timestamp_ns;
    bytes payload;
  };
  std::optional<stored_record> read(std::uint64_t seq) const;

  // Deletes every segment whose records all have seq < `seq` (never the segment being
  // written), then syncs the directory.
  void drop_below(std::uint64_t seq);

  std::uint64_t next_seq() const;       // sequence number the next append gets
  std::uint64_t last_appended() const;  // next_seq() - 1
  std::uint64_t written_seq() const { return written_.load(); }
  std::uint64_t durable_seq() const { return durable_.load(); }
  std::uint64_t first_seq() const;                                       // first record still held
  std::uint64_t bytes_written() const { return bytes_written_.load(); }  // since open
  bool failed() const { return failed_.load(); }
  const journal_options& options() const { return options_; }
  std::vector<segment_info> segments() const;
  const recovery_report& recovery() const { return report_; }

 private:
  struct segment {
    std::string file;
    std::uint64_t first_seq;
    std::uint64_t last_seq;
    std::uint32_t salt;
    std::uint64_t bytes;      // end of the last record
    std::uint64_t allocated;  // file size, zero-filled past `bytes`
    format::codec codec;
  };
  struct pending_record {
    std::uint64_t seq;
    std::int64_t timestamp_ns;
    std::string payload;
  };

  Journal(std::shared_ptr<Directory> dir, journal_options options);
  // journal_recovery.cpp
  void recover(std::uint64_t start_seq, std::uint64_t deliver_from, const visitor& visit,
               const log_function& log);
  void start_segment(std::uint64_t first_seq);  // committer or open; caller holds files_mutex_
  // journal_committer.cpp
  void run_committer();
  void write_batch(std::vector<pending_record>& batch);
  void preallocate(segment& active, std::uint64_t needed_end);
  void sync_active();
  void fail(const std::exception_ptr& e);
  void announce_progress();                  // wakes every waiter
  void announce_batch(std::uint64_t batch);  // wakes the waiters of one batch
  std::atomic<std::uint32_t>& progress_word_for(std::uint64_t seq) const;
  [[noreturn]] void throw_failure() const;
  void wait_until(const std::atomic<std::uint64_t>& mark, std::uint64_t seq, bool request_sync);

  std::shared_ptr<Directory> dir_;
  const journal_options options_;
  recovery_report report_;
  bool closed_ = false;  // close() was called (by its owner, or by the destructor)
  log_function log_;     // from open(), for the error of a close in the destructor

  // Segment bookkeeping, written by the committer (and drop_below), read by anyone.
  mutable std::mutex files_mutex_;
  std::vector<segment> segments_;  // sorted; the last one is being written
  std::shared_ptr<File> active_;

  // The queue between append() and the committer, and the progress marks callers wait on.
  mutable std::mutex queue_mutex_;
  std::condition_variable work_cv_;   // committer waits for records or a sync request
  std::condition_variable space_cv_;  // append() waits for queue space
  std::vector<pending_record> pending_;
  std::size_t pending_bytes_ = 0;  // payload bytes appended and not yet written
  std::uint64_t last_appended_ = 0;
  std::uint64_t sync_requested_ = 0;  // sync_through() wants durable_ >= this
  bool stopping_ = false;
  std::exception_ptr failure_;

  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> durable_{0};
  std::atomic<std::uint64_t> bytes_written_{0};
  std::atomic<bool> failed_{false};
  // Waiters sleep on one of two futex words, by the parity of the batch their record is in,
  // so that finishing a group commit wakes its own waiters and not those of the next group
  // (which would only go back to sleep: a thundering herd at hundreds of writers).
  mutable std::atomic<std::uint32_t> progress_[2] = {0, 0};
  // Batches taken by the committer so far and the highest sequence number in them, published
  // as a seqlock: taken_version_ is odd while the pair changes; batch number = version / 2.
  std::atomic<std::uint64_t> taken_version_{0};
  std::atomic<std::uint64_t> taken_through_{0};
  std::atomic<std::size_t> pending_count_{0};  // pending_.size(), readable without the lock
  std::atomic<int> waiters_{0};                // threads in wait_until()
  bytes frame_;                                // committer's framing buffer
  // Committer only: sequence number of the first record written to the active segment since
  // its last sync. Each record stores its distance from it (format::append_record).
  std::uint64_t run_start_ = 1;
  std::chrono::steady_clock::time_point last_sync_;
  std::thread committer_;
};

}  // namespace prevalent

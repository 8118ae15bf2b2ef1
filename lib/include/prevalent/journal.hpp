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
//
// Journal is a facade over three parts (lib/, not installed), each testable alone:
// - detail::commit_queue (commit_queue.hpp): the queued records, the written/durable marks,
//   the waiters and on_safe() hooks, backpressure, failure. No files. Called by appenders and
//   waiters on any thread and by the committer.
// - detail::segment_writer (segment_writer.hpp): framing, preallocation, rolls, drops; owns the
//   segment list and the active file. Written by the committer only.
// - detail::segment_reader (segment_reader.hpp): streams one segment record by record and
//   sorts failures into end, torn tail and corruption; used by open() and for_each()/read().
// The committer thread (journal_committer.cpp) takes batches from the queue, hands them to
// the writer and reports back; it is the thread on which on_safe() callbacks usually run.
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
#include "prevalent/meters.hpp"
#include "prevalent/options.hpp"

namespace prevalent {
struct raw_record;  // replication_log.hpp
namespace detail {
class commit_queue;
class segment_writer;
class payload_cipher;
}  // namespace detail

class Journal {
 public:
  using visitor = std::function<void(const record_view&)>;
  // For a visitor that works ahead of the records it was given (the replay pipeline,
  // replay_pipeline.hpp): returns once every record visited so far has been dealt with, and
  // throws the error of one that failed.
  using settler = std::function<void()>;

  // Opens the journal in `dir`, verifying every segment, and starts its committer thread.
  // Records with seq >= deliver_from are passed to `visit` in order. When the directory holds
  // no segment, the journal starts at `start_seq`; otherwise it must reach at least
  // start_seq - 1. Throws prevalent::error (corrupt_record, corrupt_segment, sequence_gap,
  // no_usable_snapshot, invalid_option, encryption_mismatch, authentication_failed) naming
  // file and offset. `settle` (if given) is called after each segment's records and before
  // any error open() finds in them is thrown, so that errors come out in record order and no
  // file is changed (a torn tail cut) after a visited record failed.
  static std::unique_ptr<Journal> open(std::shared_ptr<Directory> dir, journal_options options,
                                       std::uint64_t start_seq, std::uint64_t deliver_from,
                                       const visitor& visit, const log_function& log = {},
                                       const settler& settle = {});

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
  // The epoch append() writes with from now on (journal_options::epoch at open): the next
  // record starts a new segment. Throws errc::stale_epoch if below the last record's.
  void set_epoch(std::uint64_t epoch);
  std::uint64_t epoch() const;       // what append() writes with
  std::uint64_t last_epoch() const;  // of the last record appended (or on disk at open)

  // A replica's write (replication_log.hpp, journal_raw.cpp): appends records as the primary
  // stored them, with their seq, timestamp, epoch and codec, the payload verbatim (sealed
  // payloads stay sealed), then returns once they are durable (one fdatasync for the batch,
  // whatever the sync policy); returns the last seq. A record of another epoch or codec than
  // the active segment's starts a new segment. Refuses, before queueing any of the batch:
  // a seq that is not the next (errc::sequence_gap), an epoch below the last record's
  // (errc::stale_epoch), a sealed payload in a journal without a key or a plain one in a
  // journal with one, or a sealed record of epoch 0 (errc::encryption_mismatch), an empty or
  // oversized payload (errc::record_too_large).
  std::uint64_t append_raw(const std::vector<raw_record>& batch);
  // A replica's apply (StoreCore::apply_records): visits `batch` as recovery would visit the
  // same records read back from disk: sealed payloads opened with this journal's key and the
  // associated data of their epoch, seq and timestamp (errc::encryption_mismatch without a
  // key, errc::authentication_failed if one does not open), without reading the segments.
  // Only records after seq `after` are visited; `where` names the records in messages.
  void visit_raw(const std::vector<raw_record>& batch, std::uint64_t after,
                 const std::string& where, const visitor& visit) const;
  // For followers (RecordStream::wait): true once durable_seq() > seq; false when `until`
  // passes first or the journal closes or fails.
  bool wait_durable_beyond(std::uint64_t seq, std::chrono::steady_clock::time_point until) const;
  const std::shared_ptr<Directory>& directory() const { return dir_; }

  // Returns once record `seq` is as safe as the sync policy promises: durable (`always`),
  // written to the OS (`interval`), or at once (`none`). Throws the I/O error that failed
  // the journal if `seq` did not get there.
  void wait(std::uint64_t seq);
  // Returns once every record up to `seq` is durable, whatever the policy (an fdatasync is
  // requested if needed).
  void sync_through(std::uint64_t seq);
  // Returns once every record up to `seq` has been written to the OS.
  void flush_through(std::uint64_t seq);
  // Calls `done` exactly once, without any thread blocking for it: with nullptr once record
  // `seq` is as safe as the sync policy promises (what wait() waits for), or with the error
  // that failed the journal (errc::closed if it closed before `seq` was appended).
  // Where it runs: at once on the calling thread if that is already decided (always under
  // policy `none`); otherwise on the committer thread, right after the write or sync that
  // decided it, in order of seq; errc::closed on the thread calling close(). `done` must be
  // cheap, must not block (post to an executor instead) and must not throw (that terminates):
  // the committer waits for it before writing the next batch.
  void on_safe(std::uint64_t seq, std::function<void(std::exception_ptr)> done);

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
  // written), then syncs the directory. `before_remove(name)`, if given, runs before each
  // deletion (the archive's copy, archive.hpp); if it throws, that segment and later ones stay.
  using retire_hook = std::function<void(const std::string& name)>;
  void drop_below(std::uint64_t seq, const retire_hook& before_remove = {});

  std::uint64_t next_seq() const;       // sequence number the next append gets
  std::uint64_t last_appended() const;  // next_seq() - 1
  std::uint64_t written_seq() const;
  std::uint64_t durable_seq() const;
  std::uint64_t first_seq() const;      // first record still held
  std::uint64_t bytes_written() const;  // since open
  std::uint64_t bytes_held() const;     // record bytes in the segments on disk now
  std::size_t segment_count() const;    // segments on disk now
  // Syncs and their sizes and durations, recorded by the committer (metrics.hpp).
  const detail::journal_meters& meters() const { return meters_; }
  bool failed() const;
  const journal_options& options() const { return options_; }
  std::vector<segment_info> segments() const;
  const recovery_report& recovery() const { return report_; }

 private:
  Journal(std::shared_ptr<Directory> dir, journal_options options);
  // journal_recovery.cpp: verifies the segments and hands them to writer_.
  void recover(std::uint64_t start_seq, std::uint64_t deliver_from, const visitor& visit,
               const log_function& log, const settler& settle);
  // journal_committer.cpp: the committer thread's loop, between queue_ and writer_.
  void run_committer();

  std::shared_ptr<Directory> dir_;
  const journal_options options_;
  // From options_.encryption_key: seals new records, opens encrypted segments (null: no key).
  std::shared_ptr<const detail::payload_cipher> cipher_;
  recovery_report report_;
  bool closed_ = false;  // close() was called (by its owner, or by the destructor)
  log_function log_;     // from open(), for the error of a close in the destructor

  // Records queued and the progress marks callers wait on (any thread; no files).
  std::unique_ptr<detail::commit_queue> queue_;
  // The segments and the file being written (the committer writes; anyone reads or drops).
  std::unique_ptr<detail::segment_writer> writer_;
  // Committer only: when the active segment was last synced (policy `interval`).
  std::chrono::steady_clock::time_point last_sync_;
  detail::journal_meters meters_;
  std::thread committer_;
};

}  // namespace prevalent

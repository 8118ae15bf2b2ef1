// The journal: a segmented, append-only log of records addressed by contiguous sequence
// numbers. It appends, makes records durable, replays them, reads one, and drops whole
// segments that a snapshot has made unnecessary. Opening it verifies every record: a torn tail
// of the last segment (the writer died mid-write) is cut off and reported; anything else that
// fails verification is corruption and fails open with the file and byte offset.
//
// Threads: every member may be called from any thread. append() calls are serialized by the
// caller when the order of records matters (the store appends under its exclusive state lock).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/directory.hpp"

namespace prevalent {

struct journal_options {
  // A segment is closed and a new one started once appending would grow it past this size.
  std::uint64_t segment_bytes = 64ull << 20;
  // Records with a larger payload are refused (errc::record_too_large).
  std::uint32_t max_record_bytes = 16u << 20;
};

// One verified record, as handed to a visitor. `payload` is valid only during the call.
struct record_view {
  std::uint64_t seq;
  std::int64_t timestamp_ns;
  byte_view payload;
  const std::string& file;
  std::uint64_t offset;  // of the record header within `file`
};

// What recovery found when the journal was opened.
struct recovery_report {
  std::size_t segments = 0;
  std::uint64_t records = 0;     // records verified
  std::uint64_t torn_bytes = 0;  // bytes cut from the tail of the last segment
  std::string torn_file;         // where, if torn_bytes > 0 or a segment was removed
  std::uint64_t torn_offset = 0;
  std::string torn_reason;
};

struct segment_info {
  std::string file;
  std::uint64_t first_seq;
  std::uint64_t last_seq;  // first_seq - 1 when the segment holds no record
  std::uint64_t bytes;
};

using log_function = std::function<void(const std::string&)>;

class Journal {
 public:
  using visitor = std::function<void(const record_view&)>;

  // Opens the journal in `dir`, verifying every segment. Records with seq >= deliver_from are
  // passed to `visit` in order. When the directory holds no segment, the journal starts at
  // `start_seq`; otherwise it must reach at least start_seq - 1. Throws prevalent::error
  // (corrupt_record, corrupt_segment, sequence_gap, no_usable_snapshot) naming file and offset.
  static std::unique_ptr<Journal> open(std::shared_ptr<Directory> dir, journal_options options,
                                       std::uint64_t start_seq, std::uint64_t deliver_from,
                                       const visitor& visit, const log_function& log = {});

  // The first sequence number held on disk, from segment names alone (nullopt: no segments).
  static std::optional<std::uint64_t> first_seq_on_disk(const Directory& dir);

  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Writes one record to the OS and returns its sequence number. Not durable until
  // sync_through(seq) returns. After any failure the journal is failed for good.
  std::uint64_t append(std::int64_t timestamp_ns, byte_view payload);

  // Returns once every record up to `seq` is on stable storage. Concurrent callers share one
  // fdatasync. Throws the I/O error (and fails the journal) if the sync fails.
  void sync_through(std::uint64_t seq);

  // Visits records with from <= seq <= to, reading them from disk.
  void for_each(std::uint64_t from, std::uint64_t to, const visitor& visit) const;

  // The payload and timestamp of record `seq`; nullopt if not held.
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
  std::uint64_t durable_seq() const { return durable_.load(); }
  // durable_seq() once any fdatasync in flight has finished: final after a failure.
  std::uint64_t settled_durable_seq();
  std::uint64_t first_seq() const;  // first record still held (== next_seq() when empty)
  bool failed() const { return failed_.load(); }
  std::vector<segment_info> segments() const;
  const recovery_report& recovery() const { return report_; }

 private:
  struct segment {
    std::string file;
    std::uint64_t first_seq;
    std::uint64_t last_seq;
    std::uint32_t salt;
    std::uint64_t bytes;
  };

  Journal(std::shared_ptr<Directory> dir, journal_options options);
  void recover(std::uint64_t start_seq, std::uint64_t deliver_from, const visitor& visit,
               const log_function& log);
  void start_segment(std::uint64_t first_seq);  // caller holds mutex_
  [[noreturn]] void fail_with_current_exception();
  void throw_if_failed() const;

  std::shared_ptr<Directory> dir_;
  journal_options options_;
  recovery_report report_;
  bytes frame_;  // reused framing buffer for append()

  mutable std::mutex mutex_;       // guards segments_, active_, last_appended_
  std::vector<segment> segments_;  // sorted; the last one is being written
  std::shared_ptr<File> active_;
  std::uint64_t last_appended_ = 0;

  std::mutex sync_mutex_;  // one fdatasync at a time; waiters share the next
  std::atomic<std::uint64_t> durable_{0};
  std::atomic<bool> failed_{false};
};

}  // namespace prevalent

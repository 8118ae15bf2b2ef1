// Writes the journal's segments: frames records (with their run index), writes each batch with
// one write, preallocates zero fill ahead of the last record, rolls to a new segment by the
// fixed recipe (write, cut the zero fill, sync the old file; create the new one, write its
// header, sync it, sync the directory), and drops old segments. Owns the list of segments and
// the file being written; knows nothing of queues or waiters.
//
// Threads: adopt() before the committer starts; write() and sync() from the committer only;
// segments(), first_seq(), bytes_written() and drop_below() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "commit_queue.hpp"
#include "prevalent/cipher.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/journal.hpp"

namespace prevalent::detail {

struct segment_state {
  std::string file;
  std::uint64_t first_seq;
  std::uint64_t last_seq;  // first_seq - 1 when it holds no record
  std::uint32_t salt;
  std::uint64_t bytes;      // end of the last record
  std::uint64_t allocated;  // file size, zero-filled past `bytes`
  format::codec codec;
  bool encrypted = false;   // a version 2 header: every record in it is sealed
  std::uint64_t epoch = 0;  // of every record in it (version 3 header when >= 1)
};

// The header a segment_state was written with (what record_ad binds records to).
format::segment_header header_of(const segment_state& s);

class segment_writer {
 public:
  // With `cipher`, new segments are encrypted and every record is sealed (docs/FORMAT.md).
  segment_writer(std::shared_ptr<Directory> dir, const journal_options& options,
                 std::shared_ptr<const payload_cipher> cipher = nullptr);
  segment_writer(const segment_writer&) = delete;
  segment_writer& operator=(const segment_writer&) = delete;

  // Takes the segments recovery verified (sorted; possibly none) and gets ready to write
  // record `next_seq`: into the last segment, or a new one if there is none or its codec is
  // not options.codec, or it is encrypted and this writer is not, or the other way round, or
  // options.epoch is above its epoch (a lower options.epoch keeps the last segment: the
  // journal refuses records of a lower epoch, errc::stale_epoch, and a replica's records bring
  // their own).
  // Everything on disk is synced first: records written from now on start
  // a new run, and recovery may cut only the last unsynced run.
  void adopt(std::vector<segment_state> verified, std::uint64_t next_seq);

  // Committer: appends `batch` (consecutive seqs after the last one written) with one write
  // per segment it touches, rolling as segment_bytes demands, and whenever a record's epoch
  // (or, for a replica's raw record, its codec) is not the active segment's: every record of
  // a segment has the segment's epoch and codec. An active segment without records is
  // replaced rather than closed. Not durable until sync().
  void write(const std::vector<pending_record>& batch);
  // Committer: makes everything written durable; the next record starts a new run.
  void sync();

  std::vector<segment_info> segments() const;
  std::uint64_t first_seq() const;
  std::uint64_t bytes_written() const { return bytes_written_.load(); }  // since adopt()
  // Record bytes (headers included, zero fill not) of the segments, and their number: kept
  // in atomics, readable without waiting for a write in progress.
  std::uint64_t bytes_held() const { return bytes_held_.load(std::memory_order_relaxed); }
  std::size_t segment_count() const { return segment_count_.load(std::memory_order_relaxed); }
  // Deletes every segment whose records all have seq < `seq`, except the one being written,
  // oldest first, then syncs the directory. `before_remove(name)`, if given, runs before each
  // deletion.
  void drop_below(std::uint64_t seq,
                  const std::function<void(const std::string&)>& before_remove = {});

 private:
  // The roll recipe; caller holds mutex_.
  void start_segment(std::uint64_t first_seq, std::uint64_t epoch, format::codec codec);
  // Removes the active segment, which holds no record (its epoch or codec is not wanted).
  void drop_empty_active();
  void preallocate(segment_state& active, std::uint64_t needed_end);
  void publish_sizes();  // bytes_held_ and segment_count_ from segments_; caller holds mutex_

  const std::shared_ptr<Directory> dir_;
  const journal_options options_;
  const std::shared_ptr<const payload_cipher> cipher_;

  mutable std::mutex mutex_;  // segments_ and active_: the committer writes, anyone reads
  std::vector<segment_state> segments_;  // sorted; the last one is being written
  std::shared_ptr<File> active_;
  std::atomic<std::uint64_t> bytes_written_{0};
  std::atomic<std::uint64_t> bytes_held_{0};
  std::atomic<std::size_t> segment_count_{0};

  // Committer only.
  bytes frame_;   // framing buffer, reused
  bytes sealed_;  // one sealed payload, reused
  bytes nonces_;  // a batch's random nonces, drawn with one call
  std::uint64_t last_written_ = 0;
  // First record written to the active segment since its last sync; each record stores its
  // distance from it (format::append_record).
  std::uint64_t run_start_ = 1;
};

}  // namespace prevalent::detail

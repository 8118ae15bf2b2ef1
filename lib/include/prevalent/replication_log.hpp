// The journal as a replication log (issue 11), internal: records as they are stored (raw),
// read from any sequence number on and followed as the journal grows (a primary streams them),
// appended verbatim by a replica (Journal::append_raw), and a replica's journal cut back to a
// sequence number with the cut records moved aside (failover). The wire protocol on top is
// docs/REPLICATION.md's.
//
// Threads: a RecordStream is used by one thread at a time; any number of streams may follow
// one journal while it is written.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/detail/replication_records.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/format.hpp"
#include "prevalent/options.hpp"

namespace prevalent {

class Journal;

// raw_record (one record as stored) and cut_report (what cut_journal() did) are in
// include/prevalent/detail/replication_records.hpp, installed for the repl templates.

// Reads a journal's durable records, as stored, from a sequence number on, keeping its place
// (the segment file and the offset of the next record) between reads, and waits for more.
class RecordStream {
 public:
  // Starts at record `from`. Throws errc::too_far_behind when `from` was already dropped
  // (below journal.first_seq(): the caller needs a snapshot first), errc::sequence_gap when
  // `from` is past the journal's end + 1 (the asker has records this journal does not).
  RecordStream(const Journal& journal, std::uint64_t from);
  ~RecordStream();
  RecordStream(const RecordStream&) = delete;
  RecordStream& operator=(const RecordStream&) = delete;

  std::uint64_t next_seq() const { return next_; }
  // Appends to `out` the durable records from next_seq() on, until `max_bytes` of payload
  // (at least one record when one is durable); returns how many. Throws errc::too_far_behind
  // if the records were dropped meanwhile, errc::corrupt_record if one does not verify.
  std::size_t read(std::vector<raw_record>& out, std::size_t max_bytes = 1u << 20);
  // Returns true once record next_seq() is durable; false when `until` passes first or the
  // journal closes or fails. Sleeps on the condition the committer signals after each sync.
  bool wait(std::chrono::steady_clock::time_point until) const;

 private:
  bool open_segment_with(std::uint64_t seq);  // positions at the segment holding `seq`

  const Journal& journal_;
  std::uint64_t next_;
  std::unique_ptr<File> file_;
  std::string file_name_;
  format::segment_header header_{};
  std::uint64_t offset_ = 0;  // of the next record in file_
  bytes buffer_;
};

// Cuts the journal in `dir` back to record `keep_through` (a replica that has records the new
// primary does not have), moving what is cut aside instead of deleting it: every snapshot of a
// later record and every segment wholly after `keep_through` is renamed `<name>.cut-<N>` (N =
// keep_through), and the segment holding record keep_through + 1 is first copied whole to
// `<name>.cut-<N>`, then truncated before that record. Store files of other names are ignored
// by an open, so the store then opens at `keep_through`. Takes the directory's lock (fails with
// errc::directory_in_use while a store has it open). Crash-safe: snapshots go first, then
// segments newest first, each step synced, so a cut interrupted anywhere leaves a store that
// opens (at keep_through or later) and the cut can be run again. Throws
// errc::no_usable_snapshot when nothing left could rebuild the state at keep_through (the
// journal starts after it and no snapshot at or before it remains), errc::invalid_option for
// a keep_through past the journal's end.
cut_report cut_journal(const std::shared_ptr<Directory>& dir, std::uint64_t keep_through,
                       const journal_options& options);

}  // namespace prevalent

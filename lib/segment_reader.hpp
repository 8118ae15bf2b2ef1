// Reads one journal segment from a File a record at a time (a record header, then its
// payload), verifying each, so that memory holds one record and a read-ahead window however
// large the segment. A failure is classified by classify_failure (segment_failure.hpp): clean
// end, torn tail, or corruption (thrown with file and offset). Used by recovery at open and by
// Journal::for_each/read.
//
// Threads: one reader per thread; the File must outlive the reader and may be written past
// `end` meanwhile (the active segment), never before it.
#pragma once

#include <cstdint>
#include <string>

#include "prevalent/cipher.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/format.hpp"
#include "prevalent/journal.hpp"

namespace prevalent::detail {

struct scan_result {
  format::segment_header header;
  std::uint64_t records = 0;
  std::uint64_t last_seq = 0;   // header.first_seq - 1 when the segment holds no record
  std::uint64_t valid_end = 0;  // offset just past the last good record
  std::string torn_reason;      // nonempty: the bytes from valid_end on are an unfinished write
};

class segment_reader {
 public:
  // Reads `file` (named `name` in messages) up to offset `end`: its size, or less to ignore
  // what a writer appends meanwhile. A shorter file reads as if cut there. `max_payload` is the
  // largest plaintext payload (the sealing overhead is added for encrypted segments). With
  // `cipher`, an encrypted segment's records are authenticated and decrypted, and an
  // unencrypted segment is refused unless `accept_unencrypted`; without, an encrypted segment
  // is refused (both errc::encryption_mismatch, naming the file, before any record is read).
  segment_reader(const File& file, std::uint64_t end, std::string name, std::uint32_t max_payload,
                 const payload_cipher* cipher = nullptr, bool accept_unencrypted = true);
  segment_reader(const segment_reader&) = delete;
  segment_reader& operator=(const segment_reader&) = delete;

  std::uint64_t end() const { return end_; }
  // True when the segment's creation never finished (header short, or the whole file zero):
  // possible only for the last segment, which then holds no record.
  bool unfinished();
  // Verifies every record in order and calls `visit` for each good one (its payload is valid
  // only during the call; decrypted if the segment is encrypted: a record whose checksums
  // match but which does not authenticate throws errc::authentication_failed, naming file,
  // offset and sequence number, and is never taken for a torn tail). `last` says whether this is
  // the journal's last segment (only that one may have a torn tail).
  scan_result scan(bool last, const Journal::visitor& visit);

 private:
  // `n` bytes at `offset` (fewer at the end), valid until the next call.
  byte_view read(std::uint64_t offset, std::size_t n);
  format::decoded_record decode_at(std::uint64_t pos, std::uint32_t salt,
                                   std::uint32_t max_payload);
  // Throws errc::encryption_mismatch unless the header's encryption fits the cipher given.
  void check_encryption(const format::segment_header& h) const;

  const File& file_;
  const std::uint64_t end_;
  const std::string name_;
  const std::uint32_t max_payload_;
  const payload_cipher* const cipher_;
  const bool accept_unencrypted_;
  bytes plain_;   // the decrypted payload of the record being visited
  bytes window_;  // file bytes from window_offset_ on
  std::uint64_t window_offset_ = 0;
};

}  // namespace prevalent::detail

#include "segment_failure.hpp"

#include <algorithm>
#include <optional>
#include <vector>

#include "prevalent/error.hpp"

namespace prevalent::detail {
namespace {

using format::record_status;

bool all_zero(byte_view data) {
  return std::all_of(data.begin(), data.end(), [](std::uint8_t b) { return b == 0; });
}

// Every record header that verifies against this segment's salt at an aligned offset at or
// after `from`: what follows a failed record. Each one is a record someone wrote, so it tells
// which unsynced run the bytes after the failure belong to.
std::vector<format::decoded_record> verified_headers_after(byte_view data, std::size_t from,
                                                           std::uint32_t salt,
                                                           std::uint32_t max_payload) {
  std::vector<format::decoded_record> found;
  for (std::size_t pos = format::aligned(from); pos + format::record_header_size <= data.size();
       pos += format::alignment) {
    auto r = format::decode_record(data.subspan(pos), salt, max_payload);
    if (format::header_verified(r)) found.push_back(r);
  }
  return found;
}

// Whether a failure right after record `prev_seq` (whose run started at `run_begin`) can be
// a missing part of the last write that was never synced. A group of records is written only
// after everything before it was synced, and the sectors of one unsynced write may reach the
// disk in any combination; so the failed record and every verified record after it must
// belong to the run that was still unsynced: the run of `prev_seq` or a run that began with the
// failed record itself. A verified record of any other run was written after a sync that
// covered the failure point, which is then damage to synced data.
bool within_last_run(const format::decoded_record& failed,
                     const std::vector<format::decoded_record>& later, std::uint64_t prev_seq,
                     std::uint64_t run_begin) {
  std::optional<std::uint64_t> run;
  auto fits = [&](const format::decoded_record& r, std::uint64_t min_seq) {
    const std::uint64_t begins = format::run_start(r);
    if (r.status == record_status::bad_length || r.status == record_status::bad_run_index)
      return false;
    if (r.seq < min_seq || (begins != run_begin && begins != prev_seq + 1)) return false;
    if (run && *run != begins) return false;
    run = begins;
    return true;
  };
  if (format::header_verified(failed) && !(failed.seq == prev_seq + 1 && fits(failed, 0)))
    return false;
  // The failed record is number prev_seq + 1, so anything verified after it comes later.
  return std::all_of(later.begin(), later.end(),
                     [&](const format::decoded_record& r) { return fits(r, prev_seq + 2); });
}

[[noreturn]] void corrupt(errc code, const std::string& file, std::uint64_t offset,
                          const std::string& what) {
  throw error(code, file + " at offset " + std::to_string(offset) + ": " + what);
}

}  // namespace

std::string classify_failure(const failure_point& at, const format::decoded_record& r,
                             byte_view rest) {
  const std::string& file = at.file;
  const std::uint64_t pos = at.offset;
  const bool last = at.last;
  const std::uint32_t max_payload = at.max_payload;
  // Only the last segment can hold an unfinished write, and only if every verified record
  // after the failure point belongs to that same unsynced write. Offsets in `rest` are
  // relative to `pos`, which is aligned, so alignment within `rest` is alignment in the file.
  std::size_t resume = format::alignment;  // where later records could start
  if (r.status == record_status::bad_payload_checksum || r.status == record_status::bad_padding)
    resume = r.size;
  const auto later = verified_headers_after(rest, resume, at.salt, max_payload);

  if (r.status == record_status::end_of_log && later.empty()) {
    // Zero-filled space ends the log. Unverifiable bytes after it can only be part of an
    // unfinished write (pages of one write reach the disk in any order).
    if (all_zero(rest)) return "";
    if (!last) corrupt(errc::corrupt_record, file, pos, "unexpected bytes after the last record");
    return "unverifiable bytes after zero-filled space";
  }
  if (r.status == record_status::bad_length)
    corrupt(errc::corrupt_record, file, pos,
            "record " + std::to_string(r.seq) + " has payload length " + std::to_string(r.length) +
                " (limit " + std::to_string(max_payload) + ")");
  if (r.status == record_status::bad_run_index)
    corrupt(errc::corrupt_record, file, pos,
            "record " + std::to_string(r.seq) + " has run index " + std::to_string(r.run_index) +
                ": " + format::describe(r.status));
  if (last && later.empty()) return format::describe(r.status);
  if (last && within_last_run(r, later, at.prev_seq, at.run_begin))
    return std::string(format::describe(r.status)) + ", then " + std::to_string(later.size()) +
           " verified record header(s) of the same unsynced write (parts of a write cut short "
           "by a power loss)";
  std::string what = format::describe(r.status);
  if (r.status == record_status::end_of_log) what = "zero-filled bytes before later records";
  if (format::header_verified(r)) what = "record " + std::to_string(r.seq) + ": " + what;
  if (!last)
    what += " (not the last segment, so not a torn write)";
  else
    what += " (records written after a later sync follow, so not a torn write)";
  corrupt(errc::corrupt_record, file, pos, what);
}

}  // namespace prevalent::detail

#include "segment_scan.hpp"

#include <algorithm>

#include "prevalent/error.hpp"

namespace prevalent::detail {
namespace {

using format::record_status;

bool all_zero(byte_view data) {
  return std::all_of(data.begin(), data.end(), [](std::uint8_t b) { return b == 0; });
}

// Whether a record header that verifies against this segment's salt starts at any aligned
// offset at or after `from`. A failed record followed by one is damage in the middle of the
// log, which acknowledged records follow; without one, it is the unfinished last write.
bool verified_header_after(byte_view data, std::size_t from, std::uint32_t salt,
                           std::uint32_t max_payload) {
  for (std::size_t pos = format::aligned(from); pos + format::record_header_size <= data.size();
       pos += format::alignment) {
    auto r = format::decode_record(data.subspan(pos), salt, max_payload);
    switch (r.status) {
      case record_status::end_of_log:
      case record_status::truncated_header:
      case record_status::bad_header_checksum: continue;
      default: return true;
    }
  }
  return false;
}

[[noreturn]] void corrupt(errc code, const std::string& file, std::uint64_t offset,
                          const std::string& what) {
  throw error(code, file + " at offset " + std::to_string(offset) + ": " + what);
}

}  // namespace

bool unfinished_segment(byte_view data) {
  if (data.size() < format::segment_header_size) return true;
  return all_zero(data);
}

scan_result scan_segment(byte_view data, const std::string& file, bool last,
                         std::uint32_t max_payload, const Journal::visitor& visit) {
  scan_result out;
  std::string why;
  auto header = format::decode_segment_header(data, why);
  if (!header) corrupt(errc::corrupt_segment, file, 0, why);
  out.header = *header;
  out.last_seq = header->first_seq - 1;

  std::size_t pos = format::segment_header_size;
  const std::uint32_t salt = header->salt;
  while (pos < data.size()) {
    auto r = format::decode_record(data.subspan(pos), salt, max_payload);
    if (r.status == record_status::ok) {
      if (r.seq != out.last_seq + 1)
        corrupt(errc::sequence_gap, file, pos,
                "record has sequence number " + std::to_string(r.seq) + ", expected " +
                    std::to_string(out.last_seq + 1));
      if (visit) visit(record_view{r.seq, r.timestamp_ns, r.payload, header->codec, file, pos});
      out.last_seq = r.seq;
      ++out.records;
      pos += r.size;
      continue;
    }

    // Classify the failure. Only the last segment can hold an unfinished write, and only if
    // no verified record follows the failure point.
    std::size_t resume = pos + format::alignment;  // where later records could start
    if (r.status == record_status::bad_payload_checksum || r.status == record_status::bad_padding)
      resume = pos + r.size;
    bool later_record = verified_header_after(data, resume, salt, max_payload);

    if (r.status == record_status::end_of_log && !later_record) {
      // Zero-filled space ends the log. Unverifiable bytes after it can only be part of an
      // unfinished write (pages of one write reach the disk in any order).
      if (!all_zero(data.subspan(pos))) {
        if (!last)
          corrupt(errc::corrupt_record, file, pos, "unexpected bytes after the last record");
        out.torn_reason = "unverifiable bytes after zero-filled space";
      }
      break;
    }
    if (r.status == record_status::bad_length)
      corrupt(errc::corrupt_record, file, pos,
              "record " + std::to_string(r.seq) + " has payload length " +
                  std::to_string(r.length) + " (limit " + std::to_string(max_payload) + ")");
    bool torn_candidate = r.status == record_status::truncated_header ||
                          r.status == record_status::truncated_payload ||
                          r.status == record_status::bad_header_checksum ||
                          r.status == record_status::bad_payload_checksum ||
                          r.status == record_status::bad_padding;
    if (last && torn_candidate && !later_record) {
      out.torn_reason = format::describe(r.status);
      break;
    }
    std::string what = format::describe(r.status);
    if (r.status == record_status::end_of_log) what = "zero-filled bytes before later records";
    if (r.seq != 0) what = "record " + std::to_string(r.seq) + ": " + what;
    if (!last)
      what += " (not the last segment, so not a torn write)";
    else if (later_record)
      what += " (verified records follow, so not a torn write)";
    corrupt(errc::corrupt_record, file, pos, what);
  }
  out.valid_end = pos;
  return out;
}

}  // namespace prevalent::detail

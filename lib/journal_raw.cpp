// Raw records (replication_log.hpp): RecordStream reads a journal's durable records as stored
// and follows it; Journal::append_raw writes a replica's records verbatim.
#include <algorithm>

#include "commit_queue.hpp"
#include "prevalent/cipher.hpp"
#include "prevalent/error.hpp"
#include "prevalent/journal.hpp"
#include "prevalent/replication_log.hpp"

namespace prevalent {
namespace {

[[noreturn]] void too_far_behind(const Journal& j, std::uint64_t seq) {
  throw error(errc::too_far_behind, "journal in " + j.directory()->path() + ": record " +
                                        std::to_string(seq) +
                                        " was already dropped (the journal starts at " +
                                        std::to_string(j.first_seq()) + "); start from a snapshot");
}

}  // namespace

RecordStream::RecordStream(const Journal& journal, std::uint64_t from)
    : journal_(journal), next_(std::max<std::uint64_t>(from, 1)) {
  if (next_ < journal_.first_seq()) too_far_behind(journal_, next_);
  const std::uint64_t end = journal_.last_appended();
  if (next_ > end + 1)
    throw error(errc::sequence_gap, "journal in " + journal_.directory()->path() + ": record " +
                                        std::to_string(next_) + " asked for, but the journal " +
                                        "ends at " + std::to_string(end) +
                                        " (the asker holds records this journal does not)");
}

RecordStream::~RecordStream() = default;

bool RecordStream::open_segment_with(std::uint64_t seq) {
  const auto segs = journal_.segments();
  if (segs.empty() || seq < segs.front().first_seq) too_far_behind(journal_, seq);
  // The last segment starting at or before seq holds it (or will, if it is the active one).
  auto it = std::find_if(segs.rbegin(), segs.rend(),
                         [&](const segment_info& s) { return s.first_seq <= seq; });
  if (it->last_seq < seq && it != segs.rbegin()) return false;  // not written there
  if (it->file == file_name_ && file_) return true;
  const auto& dir = journal_.directory();
  file_ = dir->open(it->file, Directory::open_mode::read);
  file_name_ = it->file;
  bytes head(format::max_segment_header_size);
  head.resize(file_->read_at(0, head));
  std::string why;
  auto h = format::decode_segment_header(head, why);
  if (!h) throw error(errc::corrupt_segment, dir->describe(it->file) + " at offset 0: " + why);
  header_ = *h;
  offset_ = h->size();
  return true;
}

std::size_t RecordStream::read(std::vector<raw_record>& out, std::size_t max_bytes) {
  const std::uint64_t durable = journal_.durable_seq();
  std::size_t n = 0, got_bytes = 0;
  const std::uint32_t max_payload =
      journal_.options().max_record_bytes + static_cast<std::uint32_t>(format::sealed_overhead);
  while (next_ <= durable && (n == 0 || got_bytes < max_bytes)) {
    // At the start, or after the end of a segment: the segment holding next_. (File::size()
    // of a reading handle is its size when opened; the reads below see what was written since.)
    if (!file_ && !open_segment_with(next_)) too_far_behind(journal_, next_);
    buffer_.resize(format::record_header_size);
    buffer_.resize(file_->read_at(offset_, buffer_));
    auto r = format::decode_record(buffer_, header_.salt, max_payload);
    if (r.status == format::record_status::truncated_payload) {
      buffer_.resize(r.size);
      buffer_.resize(file_->read_at(offset_, buffer_));
      r = format::decode_record(buffer_, header_.salt, max_payload);
    }
    if (r.status == format::record_status::end_of_log ||
        (r.status == format::record_status::ok && r.seq > next_)) {
      // The end of this segment's records: the next one is in a later segment.
      const std::string before = file_name_;
      file_.reset();
      file_name_.clear();
      if (!open_segment_with(next_) || file_name_ == before)
        throw error(errc::corrupt_record, journal_.directory()->describe(before) +
                                              ": durable record " + std::to_string(next_) +
                                              " not found");
      continue;
    }
    if (r.status != format::record_status::ok)
      throw error(errc::corrupt_record, journal_.directory()->describe(file_name_) + " at offset " +
                                            std::to_string(offset_) + ": " +
                                            format::describe(r.status) + ", reading record " +
                                            std::to_string(next_) + " for a replica");
    offset_ += r.size;
    if (r.seq < next_) continue;  // positioning: records before the one asked for
    raw_record rec;
    rec.seq = r.seq;
    rec.timestamp_ns = r.timestamp_ns;
    rec.epoch = header_.epoch;
    rec.codec = header_.codec;
    rec.sealed = header_.encrypted();
    rec.payload.assign(r.payload.begin(), r.payload.end());
    got_bytes += rec.payload.size();
    out.push_back(std::move(rec));
    ++next_;
    ++n;
  }
  return n;
}

bool RecordStream::wait(std::chrono::steady_clock::time_point until) const {
  return journal_.wait_durable_beyond(next_ - 1, until);
}

bool Journal::wait_durable_beyond(std::uint64_t seq,
                                  std::chrono::steady_clock::time_point until) const {
  return queue_->wait_durable_beyond(seq, until);
}

std::uint64_t Journal::append_raw(const std::vector<raw_record>& batch) {
  if (batch.empty()) return last_appended();
  const bool keyed = cipher_ != nullptr;
  const std::string where = "journal in " + dir_->path() + ": replicated record ";
  std::uint64_t epoch = last_epoch();
  std::uint64_t seq = last_appended();
  for (const auto& r : batch) {
    const std::string rec = where + std::to_string(r.seq);
    const std::size_t limit = options_.max_record_bytes + (r.sealed ? format::sealed_overhead : 0);
    if (r.payload.empty() || r.payload.size() > limit)
      throw error(errc::record_too_large, rec + " has " + std::to_string(r.payload.size()) +
                                              " payload bytes, outside 1 .. " +
                                              std::to_string(limit));
    if (r.sealed && !keyed)
      throw error(errc::encryption_mismatch,
                  rec +
                      " is sealed, but this journal has no encryption key: a replica is "
                      "encrypted with its primary's key exactly when the primary is");
    if (!r.sealed && keyed)
      throw error(errc::encryption_mismatch,
                  rec +
                      " is not sealed, but this journal encrypts: a replica is encrypted "
                      "exactly when its primary is");
    if (r.sealed && r.epoch == 0)
      throw error(errc::encryption_mismatch,
                  rec +
                      " is sealed and of epoch 0: its associated data binds it to the "
                      "primary's segment (version 2), so it cannot be stored elsewhere");
    if (!known_codec(r.codec)) throw error(errc::invalid_option, rec + " has an unknown codec");
    if (r.seq != seq + 1)
      throw error(errc::sequence_gap,
                  rec + " does not follow the journal's last record, " + std::to_string(seq));
    if (r.epoch < epoch)
      throw error(errc::stale_epoch, rec + " is of epoch " + std::to_string(r.epoch) +
                                         ", older than the last record's, " +
                                         std::to_string(epoch));
    seq = r.seq;
    epoch = r.epoch;
  }
  for (const auto& r : batch) {
    detail::pending_record p{
        r.seq, r.timestamp_ns,
        std::string(reinterpret_cast<const char*>(r.payload.data()), r.payload.size()), r.epoch};
    p.raw = true;
    p.codec = r.codec;
    p.sealed = r.sealed;
    queue_->push_numbered(std::move(p));
  }
  sync_through(seq);
  return seq;
}

void Journal::visit_raw(const std::vector<raw_record>& batch, std::uint64_t after,
                        const std::string& where, const visitor& visit) const {
  bytes plain;
  for (const auto& r : batch) {
    if (r.seq <= after) continue;
    byte_view payload = r.payload;
    if (r.sealed) {
      const std::string rec = where + ": record " + std::to_string(r.seq);
      if (!cipher_)
        throw error(errc::encryption_mismatch, rec + " is sealed and this store has no key");
      // Version 3 (epoch >= 1): the associated data is the codec, epoch, seq and timestamp
      // (format::record_ad), the same wherever the record is stored.
      format::segment_header h{};
      h.epoch = r.epoch;
      h.codec = r.codec;
      if (r.epoch == 0 || !cipher_->open(detail::payload_cipher::purpose::record, r.payload,
                                         format::record_ad(h, r.seq, r.timestamp_ns, 0), plain))
        throw error(errc::authentication_failed, rec + " does not authenticate");
      payload = plain;
    }
    visit(record_view{r.seq, r.timestamp_ns, payload, r.codec, where, 0, r.epoch});
  }
}

}  // namespace prevalent

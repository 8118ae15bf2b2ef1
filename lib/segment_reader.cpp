#include "segment_reader.hpp"

#include <algorithm>

#include "little_endian.hpp"
#include "prevalent/error.hpp"
#include "segment_failure.hpp"

namespace prevalent::detail {
namespace {

using format::record_status;

// Small records are read ahead in one pread of this size rather than two preads each.
constexpr std::size_t read_ahead = 64u << 10;

[[noreturn]] void corrupt(errc code, const std::string& file, std::uint64_t offset,
                          const std::string& what) {
  throw error(code, file + " at offset " + std::to_string(offset) + ": " + what);
}

}  // namespace

segment_reader::segment_reader(const File& file, std::uint64_t end, std::string name,
                               std::uint32_t max_payload, const payload_cipher* cipher,
                               bool accept_unencrypted)
    : file_(file),
      end_(end),
      name_(std::move(name)),
      max_payload_(max_payload),
      cipher_(cipher),
      accept_unencrypted_(accept_unencrypted) {}

byte_view segment_reader::read(std::uint64_t offset, std::size_t n) {
  n = static_cast<std::size_t>(std::min<std::uint64_t>(n, end_ - std::min(offset, end_)));
  const bool inside = offset >= window_offset_ && offset + n <= window_offset_ + window_.size();
  if (!inside) {
    const auto want =
        std::min<std::uint64_t>(std::max(n, read_ahead), end_ - std::min(offset, end_));
    window_.resize(static_cast<std::size_t>(want));
    window_.resize(file_.read_at(offset, window_));
    window_offset_ = offset;
  }
  const std::size_t at = static_cast<std::size_t>(offset - window_offset_);
  return byte_view(window_).subspan(at, std::min(n, window_.size() - at));
}

bool segment_reader::unfinished() {
  const byte_view header = read(0, format::segment_header_size);
  auto zero = [](byte_view d) {
    return std::all_of(d.begin(), d.end(), [](std::uint8_t b) { return b == 0; });
  };
  if (header.size() < format::segment_header_size) return true;
  if (!zero(header)) {
    // Headers of versions 2 and 3 are longer: cut short, the creation never finished either.
    // (The flags of version 3, which say whether the encryption block follows, are past the
    // first 32 bytes: a file cut inside them is unfinished whatever they say.)
    const auto announced =
        format::announced_segment_header_size(read(0, format::max_segment_header_size));
    return announced && end_ < *announced;
  }
  // A zero header: unfinished only if nothing at all follows. Rare; read the whole file.
  for (std::uint64_t at = 0; at < end_; at += read_ahead) {
    const byte_view chunk = read(at, read_ahead);
    if (chunk.empty()) break;
    if (!zero(chunk)) return false;
  }
  return true;
}

format::decoded_record segment_reader::decode_at(std::uint64_t pos, std::uint32_t salt,
                                                 std::uint32_t max_payload) {
  // The header alone decides every status but the payload's; a verified header that wants
  // more bytes says how many (`size`), so the second read never trusts an unverified length.
  auto r = format::decode_record(read(pos, format::record_header_size), salt, max_payload);
  if (r.status != record_status::truncated_payload) return r;
  return format::decode_record(read(pos, r.size), salt, max_payload);
}

void segment_reader::check_encryption(const format::segment_header& h) const {
  if (h.encrypted() && !cipher_)
    throw error(errc::encryption_mismatch,
                name_ +
                    ": the segment is encrypted, but the store was opened without an "
                    "encryption key (store_options::encryption_key)");
  if (h.encrypted() && h.key_check != cipher_->key_check())
    throw error(errc::encryption_mismatch,
                name_ +
                    ": the segment was written with another encryption key (its key check "
                    "value differs from the key given)");
  if (!h.encrypted() && cipher_ && !accept_unencrypted_)
    throw error(errc::encryption_mismatch,
                name_ +
                    ": the segment is not encrypted, but an encryption key was given; set "
                    "accept_unencrypted to read a store written before encryption was "
                    "turned on");
}

scan_result segment_reader::scan(bool last, const Journal::visitor& visit) {
  scan_result out;
  std::string why;
  auto header = format::decode_segment_header(read(0, format::max_segment_header_size), why);
  if (!header) corrupt(errc::corrupt_segment, name_, 0, why);
  check_encryption(*header);
  out.header = *header;
  out.last_seq = header->first_seq - 1;
  // The length field of an encrypted record counts the sealed payload.
  const std::uint32_t max_payload =
      max_payload_ +
      (header->encrypted() ? static_cast<std::uint32_t>(format::sealed_overhead) : 0);

  std::uint64_t pos = header->size();
  std::uint64_t run_begin = header->first_seq;  // first record of the current unsynced run
  while (pos < end_) {
    auto r = decode_at(pos, header->salt, max_payload);
    if (r.status != record_status::ok) {
      // The failure path may read the rest of the segment: the run-index rule needs every
      // verified header after the failure point.
      bytes rest(static_cast<std::size_t>(end_ - pos));
      rest.resize(file_.read_at(pos, rest));
      out.torn_reason = classify_failure(
          {name_, pos, last, header->salt, max_payload, out.last_seq, run_begin}, r, rest);
      break;
    }
    if (r.seq != out.last_seq + 1)
      corrupt(errc::sequence_gap, name_, pos,
              "record has sequence number " + std::to_string(r.seq) + ", expected " +
                  std::to_string(out.last_seq + 1));
    // A record continues the run of the one before it or starts a new run (after a sync);
    // a run never reaches back into an earlier segment (a roll syncs the old one).
    const std::uint64_t begins = format::run_start(r);
    if (begins != r.seq && (out.records == 0 || begins != run_begin))
      corrupt(errc::corrupt_record, name_, pos,
              "record " + std::to_string(r.seq) + ": run index " + std::to_string(r.run_index) +
                  " puts its unsynced run's start at sequence number " + std::to_string(begins) +
                  ", but the run in progress started at " + std::to_string(run_begin));
    run_begin = begins;
    byte_view payload = r.payload;
    if (header->encrypted()) {
      // Its checksums match, so these are the bytes the writer wrote, or bytes someone wrote
      // with the checksums recomputed: never a torn write. Only the key can tell.
      const auto ad = format::record_ad(*header, r.seq, r.timestamp_ns, r.run_index);
      if (!cipher_->open(payload_cipher::purpose::record, r.payload, ad, plain_))
        corrupt(errc::authentication_failed, name_, pos,
                "record " + std::to_string(r.seq) +
                    " does not authenticate (its checksums match, so it is not a torn write: it "
                    "was changed or moved by someone without the key)");
      payload = plain_;
    }
    if (visit)
      visit(record_view{r.seq, r.timestamp_ns, payload, header->codec, name_, pos, header->epoch});
    out.last_seq = r.seq;
    ++out.records;
    pos += r.size;
  }
  out.valid_end = pos;
  return out;
}

}  // namespace prevalent::detail

// Framing and verification of segment headers, records and snapshot headers (docs/FORMAT.md).
#include "prevalent/format.hpp"

#include <algorithm>
#include <charconv>

#include "little_endian.hpp"
#include "prevalent/checksum.hpp"

namespace prevalent::format {

using detail::get_le;
using detail::put_le;

static_assert(segment_header_size == 8 + 4 + 4 + 8 + 4 + 4);
static_assert(record_header_size == 4 + 4 + 8 + 8 + 4 + 4);
static_assert(snapshot_header_v1_size == 8 + 4 + 4 + 8 + 8 + 8 + 4 + 4);
static_assert(snapshot_header_size == snapshot_header_v1_size + 4 + 4 + 16);
static_assert(snapshot_header_size == 72 && encrypted_snapshot_header_size == 96);
static_assert(snapshot_header_v2_size == 72);
static_assert(segment_header_size % alignment == 0 && record_header_size % alignment == 0);
static_assert(encrypted_segment_header_size == 56);
static_assert(encrypted_segment_header_size % alignment == 0);
static_assert(epoch_segment_header_size == 48 && encrypted_epoch_segment_header_size == 72);

// ---- encryption block (version 2 headers) ----

namespace {

// The checksum of a header whose own checksum sits at `crc_at`: every other byte of the header.
std::uint32_t header_crc(byte_view header, std::size_t crc_at) {
  std::uint32_t c = crc32c(header.first(crc_at));
  if (header.size() > crc_at + 4) c = crc32c(header.subspan(crc_at + 4), c);
  return c;
}

void put_encryption_block(std::uint8_t* at, cipher c, const key_check_value& check) {
  put_le(at, static_cast<std::uint32_t>(c));
  put_le(at + 4, std::uint32_t{0});  // reserved
  std::copy(check.begin(), check.end(), at + 8);
}

bool get_encryption_block(const std::uint8_t* at, cipher& c, key_check_value& check,
                          std::string& why) {
  c = static_cast<cipher>(get_le<std::uint32_t>(at));
  if (c != cipher::xchacha20poly1305) {
    why = "unknown cipher " + std::to_string(static_cast<std::uint32_t>(c));
    return false;
  }
  if (get_le<std::uint32_t>(at + 4) != 0) {
    why = "nonzero reserved field in the encryption block";
    return false;
  }
  std::copy(at + 8, at + 8 + key_check_size, check.begin());
  return true;
}

}  // namespace

// ---- segment header ----

namespace {
// Version 3 fields after the version 1 ones.
constexpr std::size_t epoch_at = segment_header_size;              // 32
constexpr std::size_t segment_flags_at = epoch_at + 8;             // 40
constexpr std::size_t segment_reserved_at = segment_flags_at + 4;  // 44
}  // namespace

bytes encode_segment_header(const segment_header& h) {
  const std::uint32_t v = h.written_version();
  bytes out(h.size(), 0);
  std::copy(segment_magic.begin(), segment_magic.end(), out.begin());
  put_le(&out[8], v);
  put_le(&out[12], static_cast<std::uint32_t>(h.codec));
  put_le(&out[16], h.first_seq);
  put_le(&out[24], h.salt);
  std::size_t block_at = segment_header_size;
  if (v == epoch_segment_version) {
    put_le(&out[epoch_at], h.epoch);
    put_le(&out[segment_flags_at], h.encrypted() ? segment_flag_encrypted : std::uint32_t{0});
    block_at = epoch_segment_header_size;
  }
  if (h.encrypted()) put_encryption_block(&out[block_at], h.cipher, h.key_check);
  put_le(&out[28], header_crc(out, 28));
  return out;
}

std::optional<std::size_t> announced_segment_header_size(byte_view data) {
  if (data.size() < 12 || !std::equal(segment_magic.begin(), segment_magic.end(), data.begin()))
    return std::nullopt;
  switch (get_le<std::uint32_t>(&data[8])) {
    case version: return segment_header_size;
    case encrypted_version: return encrypted_segment_header_size;
    case epoch_segment_version:
      if (data.size() < segment_flags_at + 4) return epoch_segment_header_size;
      return (get_le<std::uint32_t>(&data[segment_flags_at]) & segment_flag_encrypted) != 0
                 ? encrypted_epoch_segment_header_size
                 : epoch_segment_header_size;
    default: return std::nullopt;
  }
}

std::optional<segment_header> decode_segment_header(byte_view data, std::string& why) {
  if (data.size() < segment_header_size) {
    why = "segment header is " + std::to_string(data.size()) + " bytes, expected " +
          std::to_string(segment_header_size);
    return std::nullopt;
  }
  if (!std::equal(segment_magic.begin(), segment_magic.end(), data.begin())) {
    why = "bad magic (not a prevalent journal segment)";
    return std::nullopt;
  }
  const std::uint32_t stored_version = get_le<std::uint32_t>(&data[8]);
  // The flags are checked once the checksum has matched; here only the size they imply.
  const std::size_t size = announced_segment_header_size(data).value_or(segment_header_size);
  if (data.size() < size) {
    why = (stored_version == encrypted_version
               ? std::string("encrypted segment header")
               : "version " + std::to_string(stored_version) + " segment header") +
          " is " + std::to_string(data.size()) + " bytes, expected " + std::to_string(size);
    return std::nullopt;
  }
  data = data.first(size);
  if (get_le<std::uint32_t>(&data[28]) != header_crc(data, 28)) {
    why = "segment header checksum mismatch";
    return std::nullopt;
  }
  segment_header h;
  h.version = stored_version;
  h.codec = static_cast<codec>(get_le<std::uint32_t>(&data[12]));
  h.first_seq = get_le<std::uint64_t>(&data[16]);
  h.salt = get_le<std::uint32_t>(&data[24]);
  if (h.version != version && h.version != encrypted_version &&
      h.version != epoch_segment_version) {
    why = "unsupported format version " + std::to_string(h.version);
    return std::nullopt;
  }
  if (!known_codec(h.codec)) {
    why = "unknown codec " + std::to_string(static_cast<std::uint32_t>(h.codec));
    return std::nullopt;
  }
  bool encrypted = h.version == encrypted_version;
  std::size_t block_at = segment_header_size;
  if (h.version == epoch_segment_version) {
    h.epoch = get_le<std::uint64_t>(&data[epoch_at]);
    if (h.epoch == 0) {
      why = "epoch 0 in a version 3 segment header (epochs there start at 1)";
      return std::nullopt;
    }
    const auto flags = get_le<std::uint32_t>(&data[segment_flags_at]);
    if ((flags & ~segment_flag_encrypted) != 0) {
      why = "unknown segment flags " + std::to_string(flags);
      return std::nullopt;
    }
    if (get_le<std::uint32_t>(&data[segment_reserved_at]) != 0) {
      why = "nonzero reserved field in a version 3 segment header";
      return std::nullopt;
    }
    encrypted = (flags & segment_flag_encrypted) != 0;
    block_at = epoch_segment_header_size;
  }
  if (encrypted && !get_encryption_block(&data[block_at], h.cipher, h.key_check, why))
    return std::nullopt;
  return h;
}

record_ad_bytes record_ad(const segment_header& segment, std::uint64_t seq,
                          std::int64_t timestamp_ns, std::uint32_t run_index) {
  record_ad_bytes ad;
  std::uint8_t* a = ad.data.data();
  if (segment.epoch > 0) {
    put_le(a + 0, epoch_segment_version);
    put_le(a + 4, static_cast<std::uint32_t>(segment.codec));
    put_le(a + 8, segment.epoch);
    put_le(a + 16, seq);
    put_le(a + 24, timestamp_ns);
    ad.size = 32;
    return ad;
  }
  put_le(a + 0, segment.encrypted() ? encrypted_version : version);
  put_le(a + 4, static_cast<std::uint32_t>(segment.codec));
  put_le(a + 8, segment.first_seq);
  put_le(a + 16, segment.salt);
  put_le(a + 20, seq);
  put_le(a + 28, timestamp_ns);
  put_le(a + 36, run_index);
  ad.size = record_ad_size;
  return ad;
}

// ---- records ----

namespace {

// The header checksum covers the segment salt, the length and bytes 8..31 of the header
// (sequence number, timestamp, payload checksum, run index): a record copied from another
// segment, or left over from an earlier use of the file, cannot verify here.
std::uint32_t header_checksum(const std::uint8_t* header, std::uint32_t salt) {
  std::uint8_t salt_le[4];
  put_le(salt_le, salt);
  std::uint32_t c = crc32c(byte_view(salt_le, 4));
  c = crc32c(byte_view(header, 4), c);
  return crc32c(byte_view(header + 8, record_header_size - 8), c);
}

}  // namespace

void append_record(bytes& out, std::uint32_t salt, std::uint64_t seq, std::int64_t timestamp_ns,
                   byte_view payload, std::uint32_t run_index) {
  std::size_t start = out.size();
  out.resize(start + framed_size(payload.size()), 0);
  std::uint8_t* h = &out[start];
  put_le(h + 0, static_cast<std::uint32_t>(payload.size()));
  put_le(h + 8, seq);
  put_le(h + 16, timestamp_ns);
  put_le(h + 24, crc32c(payload));
  put_le(h + 28, run_index);
  put_le(h + 4, header_checksum(h, salt));
  std::copy(payload.begin(), payload.end(), h + record_header_size);
}

decoded_record decode_record(byte_view data, std::uint32_t salt, std::uint32_t max_payload) {
  decoded_record r;
  if (data.size() < record_header_size) {
    bool zeros = std::all_of(data.begin(), data.end(), [](std::uint8_t b) { return b == 0; });
    r.status = zeros ? record_status::end_of_log : record_status::truncated_header;
    return r;
  }
  const std::uint8_t* h = data.data();
  if (std::all_of(h, h + record_header_size, [](std::uint8_t b) { return b == 0; })) {
    r.status = record_status::end_of_log;
    return r;
  }
  if (get_le<std::uint32_t>(h + 4) != header_checksum(h, salt)) {
    r.status = record_status::bad_header_checksum;
    return r;
  }
  r.length = get_le<std::uint32_t>(h + 0);
  r.seq = get_le<std::uint64_t>(h + 8);
  r.timestamp_ns = get_le<std::int64_t>(h + 16);
  r.run_index = get_le<std::uint32_t>(h + 28);
  if (r.run_index >= r.seq) {
    // The run would start at or before sequence number 0, which no writer produces: the
    // header verified, so this is corruption (or a writer that breaks the format), never
    // a torn write. Found by fuzzing when the field was "reserved, 0" and went unchecked.
    r.status = record_status::bad_run_index;
    return r;
  }
  if (r.length == 0 || r.length > std::min(max_payload, max_payload_limit)) {
    r.status = record_status::bad_length;
    return r;
  }
  r.size = framed_size(r.length);
  if (data.size() < r.size) {
    r.status = record_status::truncated_payload;
    return r;
  }
  byte_view payload = data.subspan(record_header_size, r.length);
  if (get_le<std::uint32_t>(h + 24) != crc32c(payload)) {
    r.status = record_status::bad_payload_checksum;
    return r;
  }
  byte_view padding =
      data.subspan(record_header_size + r.length, r.size - record_header_size - r.length);
  if (!std::all_of(padding.begin(), padding.end(), [](std::uint8_t b) { return b == 0; })) {
    r.status = record_status::bad_padding;
    return r;
  }
  r.payload = payload;
  return r;
}

bool header_verified(const decoded_record& r) {
  return r.status != record_status::end_of_log && r.status != record_status::truncated_header &&
         r.status != record_status::bad_header_checksum;
}

const char* describe(record_status s) {
  switch (s) {
    case record_status::ok: return "ok";
    case record_status::end_of_log: return "zero-filled header (end of log)";
    case record_status::truncated_header: return "record header cut short by end of file";
    case record_status::bad_header_checksum: return "record header checksum mismatch";
    case record_status::bad_length: return "record length is zero or over the limit";
    case record_status::truncated_payload: return "record payload cut short by end of file";
    case record_status::bad_payload_checksum: return "record payload checksum mismatch";
    case record_status::bad_padding: return "nonzero padding after record payload";
    case record_status::bad_run_index: return "record run index points before sequence number 1";
  }
  return "?";
}

// ---- snapshot header ----

namespace {
// Version 3 fields after the version 1 ones.
constexpr std::size_t flags_at = snapshot_header_v1_size;  // 48
constexpr std::size_t state_version_at = flags_at + 4;     // 52
constexpr std::size_t digest_at = state_version_at + 4;    // 56
}  // namespace

bytes encode_snapshot_header(const snapshot_header& h) {
  const bool v3 = h.version >= snapshot_version;
  bytes out(h.size(), 0);
  std::copy(snapshot_magic.begin(), snapshot_magic.end(), out.begin());
  put_le(&out[8], v3 ? snapshot_version : h.encrypted() ? encrypted_version : version);
  put_le(&out[12], static_cast<std::uint16_t>(h.codec));
  put_le(&out[14], static_cast<std::uint16_t>(h.compression));
  put_le(&out[16], h.last_seq);
  put_le(&out[24], h.timestamp_ns);
  put_le(&out[32], h.payload_length);
  put_le(&out[40], h.payload_crc);
  std::size_t block_at = snapshot_header_v1_size;
  if (v3) {
    put_le(&out[flags_at], h.encrypted() ? snapshot_flag_encrypted : std::uint32_t{0});
    put_le(&out[state_version_at], h.state_version);
    // An encrypted snapshot's digest is sealed with its payload; the field stays zero.
    if (h.digest && !h.encrypted()) std::copy(h.digest->begin(), h.digest->end(), &out[digest_at]);
    block_at = snapshot_header_size;
  }
  if (h.encrypted()) put_encryption_block(&out[block_at], h.cipher, h.key_check);
  put_le(&out[44], header_crc(out, 44));
  return out;
}

std::optional<snapshot_header> decode_snapshot_header(byte_view data, std::string& why) {
  if (data.size() < snapshot_header_v1_size) {
    why = "snapshot header is " + std::to_string(data.size()) + " bytes, expected at least " +
          std::to_string(snapshot_header_v1_size);
    return std::nullopt;
  }
  if (!std::equal(snapshot_magic.begin(), snapshot_magic.end(), data.begin())) {
    why = "bad magic (not a prevalent snapshot)";
    return std::nullopt;
  }
  const std::uint32_t stored_version = get_le<std::uint32_t>(&data[8]);
  std::size_t size = snapshot_header_v1_size;
  bool encrypted = false;
  if (stored_version == encrypted_version) {
    size = snapshot_header_v2_size;
    encrypted = true;
  } else if (stored_version == snapshot_version) {
    // The flags are checked once the checksum has matched; here only the size they imply.
    size = snapshot_header_size;
    if (data.size() >= size &&
        (get_le<std::uint32_t>(&data[flags_at]) & snapshot_flag_encrypted) != 0) {
      size = encrypted_snapshot_header_size;
      encrypted = true;
    }
  }
  if (data.size() < size) {
    why = "version " + std::to_string(stored_version) + " snapshot header is " +
          std::to_string(data.size()) + " bytes, expected " + std::to_string(size);
    return std::nullopt;
  }
  data = data.first(size);
  if (get_le<std::uint32_t>(&data[44]) != header_crc(data, 44)) {
    why = "snapshot header checksum mismatch";
    return std::nullopt;
  }
  snapshot_header h;
  h.version = stored_version;
  h.codec = static_cast<codec>(get_le<std::uint16_t>(&data[12]));
  h.compression = static_cast<compression>(get_le<std::uint16_t>(&data[14]));
  h.last_seq = get_le<std::uint64_t>(&data[16]);
  h.timestamp_ns = get_le<std::int64_t>(&data[24]);
  h.payload_length = get_le<std::uint64_t>(&data[32]);
  h.payload_crc = get_le<std::uint32_t>(&data[40]);
  if (h.version != version && h.version != encrypted_version && h.version != snapshot_version) {
    why = "unsupported format version " + std::to_string(h.version);
    return std::nullopt;
  }
  if (!known_codec(h.codec)) {
    why = "unknown codec " + std::to_string(static_cast<std::uint32_t>(h.codec));
    return std::nullopt;
  }
  if (h.compression != compression::none && h.compression != compression::zstd) {
    why = "unknown compression " + std::to_string(static_cast<unsigned>(h.compression));
    return std::nullopt;
  }
  std::size_t block_at = snapshot_header_v1_size;
  if (h.version == snapshot_version) {
    const auto flags = get_le<std::uint32_t>(&data[flags_at]);
    if ((flags & ~snapshot_flag_encrypted) != 0) {
      why = "unknown snapshot flags " + std::to_string(flags);
      return std::nullopt;
    }
    h.state_version = get_le<std::uint32_t>(&data[state_version_at]);
    if (h.state_version == 0) {
      why = "state version 0 (versions start at 1)";
      return std::nullopt;
    }
    digest_bytes d{};
    std::copy(&data[digest_at], &data[digest_at] + digest_size, d.begin());
    if (!encrypted) {
      h.digest = d;
    } else if (std::any_of(d.begin(), d.end(), [](std::uint8_t b) { return b != 0; })) {
      why = "nonzero digest field in an encrypted snapshot header (its digest is sealed)";
      return std::nullopt;
    }
    block_at = snapshot_header_size;
  }
  if (encrypted && !get_encryption_block(&data[block_at], h.cipher, h.key_check, why))
    return std::nullopt;
  return h;
}

bytes snapshot_ad(const snapshot_header& h) {
  const bool v3 = h.version >= snapshot_version;
  bytes ad(v3 ? 32 : 24, 0);
  put_le(&ad[0], v3 ? snapshot_version : h.encrypted() ? encrypted_version : version);
  put_le(&ad[4], static_cast<std::uint16_t>(h.codec));
  put_le(&ad[6], static_cast<std::uint16_t>(h.compression));
  put_le(&ad[8], h.last_seq);
  put_le(&ad[16], h.timestamp_ns);
  if (v3) {
    put_le(&ad[24], h.encrypted() ? snapshot_flag_encrypted : std::uint32_t{0});
    put_le(&ad[28], h.state_version);
  }
  return ad;
}

// ---- names ----

namespace {

std::string numbered_name(const char* prefix, std::uint64_t n, const char* suffix) {
  std::string digits = std::to_string(n);
  return prefix + std::string(20 - digits.size(), '0') + digits + suffix;
}

std::optional<std::uint64_t> parse_numbered_name(const std::string& name, std::string_view prefix,
                                                 std::string_view suffix) {
  if (name.size() != prefix.size() + 20 + suffix.size()) return std::nullopt;
  if (name.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  if (name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) return std::nullopt;
  std::uint64_t n = 0;
  const char* first = name.data() + prefix.size();
  auto [end, ec] = std::from_chars(first, first + 20, n);
  if (ec != std::errc() || end != first + 20) return std::nullopt;
  return n;
}

}  // namespace

std::string segment_file_name(std::uint64_t first_seq) {
  return numbered_name("journal-", first_seq, ".log");
}
std::string snapshot_file_name(std::uint64_t last_seq) {
  return numbered_name("snapshot-", last_seq, ".snap");
}
std::optional<std::uint64_t> parse_segment_file_name(const std::string& name) {
  return parse_numbered_name(name, "journal-", ".log");
}
std::optional<std::uint64_t> parse_snapshot_file_name(const std::string& name) {
  return parse_numbered_name(name, "snapshot-", ".snap");
}

}  // namespace prevalent::format

// The on-disk format of journal segments and snapshots: constants, framing and verification.
// docs/FORMAT.md is the prose specification; the writer and every reader use only this header
// and lib/format.cpp, so no magic number or size is written twice, and each header's field
// offsets appear only in its encode/decode pair there, side by side (static_asserts pin the
// sizes). All integers are little-endian.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/state_digest.hpp"

namespace prevalent::format {

inline constexpr std::uint32_t version = 1;
// Version 2 headers are those of encrypted segments and snapshots: the version 1 header plus
// an encryption block (cipher and key check value). Unencrypted files stay version 1, byte for
// byte, so a store written without a key reads as before and older readers refuse an encrypted
// file by its version instead of misreading it.
inline constexpr std::uint32_t encrypted_version = 2;
// Snapshots written since issue 10 have version 3 headers, encrypted or not: the version 1
// fields, then flags (bit 0: encrypted, the encryption block follows), the state version
// (State::version) and the state digest (state_digest.hpp). Versions 1 and 2 are still read:
// they have state version 1 and no digest.
inline constexpr std::uint32_t snapshot_version = 3;
// Journal segments of version 3 (issue 11) carry the epoch (term) of the primary that wrote
// their records: the version 1 fields, then the epoch (8), flags (4; bit 0: encrypted, the
// encryption block follows) and a reserved zero (4). Written only for an epoch >= 1: a store
// that is not replicated (epoch 0) writes versions 1 and 2 byte for byte as before, and those
// read as epoch 0.
inline constexpr std::uint32_t epoch_segment_version = 3;

// How payloads are encoded (codec.hpp). Recorded in every segment and snapshot header so tools
// can read a store without its types.
using prevalent::codec;
using prevalent::codec_name;
using prevalent::known_codec;

// Records and the segment header are laid out on 8-byte boundaries so that a length field
// never straddles a sector boundary.
inline constexpr std::size_t alignment = 8;
constexpr std::size_t aligned(std::size_t n) { return (n + alignment - 1) & ~(alignment - 1); }

// ---- encryption at rest (docs/FORMAT.md, "Encryption") ----------------------------------------
// The AEAD that protects record and snapshot payloads; recorded in the header.
enum class cipher : std::uint32_t {
  none = 0,
  xchacha20poly1305 = 1,  // libsodium's crypto_aead_xchacha20poly1305_ietf
};
inline constexpr std::size_t nonce_size = 24;  // random per record and per snapshot
inline constexpr std::size_t tag_size = 16;
// A sealed payload is nonce || ciphertext || tag: this much longer than the plaintext.
inline constexpr std::size_t sealed_overhead = nonce_size + tag_size;
// Keyed BLAKE2b of a fixed label, stored in encrypted headers so that a wrong key is named
// before any record is tried.
inline constexpr std::size_t key_check_size = 16;
using key_check_value = std::array<std::uint8_t, key_check_size>;
// Bytes added to a version 1 header to make the version 2 one: cipher (4), reserved zero (4),
// key check value (16).
inline constexpr std::size_t encryption_block_size = 4 + 4 + key_check_size;

// ---- journal segments ----------------------------------------------------------------------
inline constexpr std::array<std::uint8_t, 8> segment_magic = {'P', 'R', 'V', 'L',
                                                              'J', 'R', 'N', 'L'};
inline constexpr std::size_t segment_header_size = 32;  // version 1 (unencrypted)
inline constexpr std::size_t encrypted_segment_header_size =
    segment_header_size + encryption_block_size;  // version 2
// Version 3: the version 1 fields, epoch (8), flags (4), reserved (4); then the encryption
// block when flag bit 0 is set.
inline constexpr std::size_t epoch_segment_header_size = segment_header_size + 8 + 4 + 4;
inline constexpr std::size_t encrypted_epoch_segment_header_size =
    epoch_segment_header_size + encryption_block_size;
// The most a reader must read to decode any version's segment header.
inline constexpr std::size_t max_segment_header_size = encrypted_epoch_segment_header_size;
// Version 3 flags.
inline constexpr std::uint32_t segment_flag_encrypted = 1;

// `version` is derived when encoding: 3 with an epoch >= 1; otherwise 1 without and 2 with
// encryption. Decoding sets it from the file.
struct segment_header {
  std::uint32_t version = format::version;
  format::codec codec = format::codec::json;
  std::uint64_t first_seq = 1;  // sequence number of the segment's first record
  std::uint32_t salt = 0;       // random per segment; mixed into every record checksum
  // The epoch (term) of the primary that wrote every record of the segment; 0 for versions 1
  // and 2 (a store that is not replicated).
  std::uint64_t epoch = 0;
  format::cipher cipher = format::cipher::none;
  key_check_value key_check{};  // when encrypted

  bool encrypted() const { return cipher != format::cipher::none; }
  // The version encode_segment_header() writes for these fields.
  std::uint32_t written_version() const {
    return epoch > 0 ? epoch_segment_version : encrypted() ? encrypted_version : format::version;
  }
  // Where the first record starts.
  std::size_t size() const {
    if (epoch > 0)
      return encrypted() ? encrypted_epoch_segment_header_size : epoch_segment_header_size;
    return encrypted() ? encrypted_segment_header_size : segment_header_size;
  }
};

bytes encode_segment_header(const segment_header& h);
// Decodes and verifies a segment header (`data` holds at least its first
// max_segment_header_size bytes, or the whole file if shorter); on failure returns nullopt
// and says why in `why`.
std::optional<segment_header> decode_segment_header(byte_view data, std::string& why);
// The header size the first bytes of a segment announce (magic, version and, for version 3,
// flags), or nullopt if they are not a segment header of a known version (or too short to
// tell). For telling a header cut short by a crash from a damaged one.
std::optional<std::size_t> announced_segment_header_size(byte_view data);

// The associated data of a sealed record payload. Version 2 segments (40 bytes): binds it to
// its segment (version, codec, first_seq, salt: segment header bytes 8..27) and its place (seq,
// timestamp, run_index). Version 3 (32 bytes): version, codec, epoch, seq, timestamp: bound to
// its place in the journal and its epoch, not to the segment's salt or the writer's run index,
// so that a replica can store the sealed payload verbatim in a segment of its own
// (docs/FORMAT.md, "Encryption").
inline constexpr std::size_t record_ad_size = 20 + 8 + 8 + 4;
struct record_ad_bytes {
  std::array<std::uint8_t, record_ad_size> data{};
  std::size_t size = 0;
  operator byte_view() const { return byte_view(data.data(), size); }
};
record_ad_bytes record_ad(const segment_header& segment, std::uint64_t seq,
                          std::int64_t timestamp_ns, std::uint32_t run_index);

// ---- journal records -----------------------------------------------------------------------
inline constexpr std::size_t record_header_size = 32;
// A hard ceiling on payload length, whatever the options say: 1 GiB.
inline constexpr std::uint32_t max_payload_limit = 1u << 30;

// Appends one framed record (header, payload, zero padding) to `out`. `run_index` is how many
// records precede this one in its unsynced run: the records the writer wrote to the segment
// since its last sync (0 for the first record after a sync, a segment's creation or an open).
// Recovery uses it to tell the unfinished last write from damage to synced records.
void append_record(bytes& out, std::uint32_t salt, std::uint64_t seq, std::int64_t timestamp_ns,
                   byte_view payload, std::uint32_t run_index = 0);
constexpr std::size_t framed_size(std::size_t payload) {
  return record_header_size + aligned(payload);
}

enum class record_status {
  ok,
  end_of_log,            // the header is all zero bytes: nothing was written here
  truncated_header,      // fewer than record_header_size bytes remain
  bad_header_checksum,   // the header does not match its checksum
  bad_length,            // the header is intact but its length is zero or over the limit
  truncated_payload,     // the header is intact but the data ends inside the payload
  bad_payload_checksum,  // the payload does not match its checksum
  bad_padding,           // the padding after the payload is not zero
  bad_run_index,         // the header is intact but its run would start before sequence number 1
};
const char* describe(record_status s);

// seq, timestamp_ns, length and run_index are valid once the header checksum has matched
// (every status but end_of_log, truncated_header and bad_header_checksum).
struct decoded_record {
  record_status status = record_status::ok;
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::uint32_t length = 0;  // payload length as the header states it
  std::uint32_t run_index = 0;
  byte_view payload;     // valid only when status == ok
  std::size_t size = 0;  // framed size; valid when the header is intact
};

// Decodes the record at the start of `data`. Never reads outside `data` and never trusts the
// length field before the header checksum has matched.
decoded_record decode_record(byte_view data, std::uint32_t salt, std::uint32_t max_payload);
// Whether the header of `r` verified (its fields can be trusted even if the payload cannot).
bool header_verified(const decoded_record& r);
// Sequence number of the first record of r's unsynced run (valid when the header verified).
constexpr std::uint64_t run_start(const decoded_record& r) { return r.seq - r.run_index; }

// ---- snapshots -----------------------------------------------------------------------------
inline constexpr std::array<std::uint8_t, 8> snapshot_magic = {'P', 'R', 'V', 'L',
                                                               'S', 'N', 'A', 'P'};
// Versions 1 and 2: the fields every version has (2 adds the encryption block after them).
inline constexpr std::size_t snapshot_header_v1_size = 48;
inline constexpr std::size_t snapshot_header_v2_size =
    snapshot_header_v1_size + encryption_block_size;
// Version 3: the version 1 fields, flags (4), state version (4) and digest (16); the
// encryption block after them when encrypted. snapshot_header_size is where the payload of an
// unencrypted snapshot written today starts.
inline constexpr std::size_t digest_size = 16;
inline constexpr std::size_t snapshot_header_size = snapshot_header_v1_size + 4 + 4 + digest_size;
inline constexpr std::size_t encrypted_snapshot_header_size =
    snapshot_header_size + encryption_block_size;
// The most a reader must read to decode any version's header.
inline constexpr std::size_t max_snapshot_header_size = encrypted_snapshot_header_size;
// Version 3 flags.
inline constexpr std::uint32_t snapshot_flag_encrypted = 1;

// How a snapshot payload is compressed.
enum class compression : std::uint16_t { none = 0, zstd = 1 };

// XXH3-128 of the serialized state (state_digest.hpp).
using digest_bytes = prevalent::digest128;
static_assert(std::tuple_size_v<digest_bytes> == digest_size);

struct snapshot_header {
  // The writer writes snapshot_version; encode_snapshot_header() also writes versions 1 and 2
  // (for tests of old files): 1 when not encrypted, 2 when encrypted, as before version 3.
  std::uint32_t version = snapshot_version;
  format::codec codec = format::codec::json;
  format::compression compression = format::compression::none;
  std::uint64_t last_seq = 0;     // the state includes every record up to this one
  std::int64_t timestamp_ns = 0;  // timestamp of that record (0 if none)
  std::uint64_t payload_length = 0;
  std::uint32_t payload_crc = 0;
  // Version 3: State::version of the program that wrote it; 1 for versions 1 and 2.
  std::uint32_t state_version = 1;
  // Version 3: the state digest of the uncompressed, unencrypted payload. In the header of an
  // unencrypted snapshot; an encrypted one seals it with the payload (a digest in the clear
  // would let anyone confirm a guess of the state), so it is known only once the snapshot is
  // opened with the key (SnapshotStore::load). Never for versions 1 and 2.
  std::optional<digest_bytes> digest;
  format::cipher cipher = format::cipher::none;
  key_check_value key_check{};  // when encrypted

  bool encrypted() const { return cipher != format::cipher::none; }
  std::size_t size() const {
    if (version < snapshot_version)
      return encrypted() ? snapshot_header_v2_size : snapshot_header_v1_size;
    return encrypted() ? encrypted_snapshot_header_size : snapshot_header_size;
  }
};

bytes encode_snapshot_header(const snapshot_header& h);
// Decodes and verifies a snapshot header of any version (`data` holds at least its first
// max_snapshot_header_size bytes, or the whole file if shorter).
std::optional<snapshot_header> decode_snapshot_header(byte_view data, std::string& why);

// The associated data of a sealed snapshot payload. Versions 1 and 2: header bytes 8..31
// (version, codec, compression, last_seq, timestamp), 24 bytes; version 3 adds flags and the
// state version (header bytes 48..55), 32 bytes.
bytes snapshot_ad(const snapshot_header& h);

// ---- file names ----------------------------------------------------------------------------
// Journal segments are "journal-<first seq, 20 digits>.log", snapshots
// "snapshot-<last seq, 20 digits>.snap"; both sort by sequence number.
std::string segment_file_name(std::uint64_t first_seq);
std::string snapshot_file_name(std::uint64_t last_seq);
std::optional<std::uint64_t> parse_segment_file_name(const std::string& name);
std::optional<std::uint64_t> parse_snapshot_file_name(const std::string& name);
inline constexpr const char* lock_file_name = "LOCK";
inline constexpr const char* temp_suffix = ".tmp";

}  // namespace prevalent::format

// libFuzzer target: a store opening fuzzed content with valid framing, so that the fuzzer
// reaches the decoders behind the checksums. The first byte picks the case:
//   0..2  a journal segment whose one record carries the rest as payload, in codec json,
//         cbor or msgpack: replay must decode and dispatch it or refuse with an error
//   3..5  a snapshot whose payload is the rest, in codec json, cbor or msgpack
//   6     the rest is a raw snapshot file (header included)
// and on an encrypted store (first byte 0x80 and up; the store opens with a fixed key):
//   +0..2 an encrypted segment whose one record is the rest, sealed with the store's key, in
//         codec json, cbor or msgpack: the decoders behind the AEAD
//   +3    an encrypted segment whose one record's stored payload is the rest, unsealed (CRCs
//         valid): authentication must refuse it, whatever its length
//   +4    an encrypted snapshot whose payload is the rest, sealed
//   +5    the rest is a raw snapshot file, opened with a key
// Opening must succeed or throw prevalent::error; nothing else.
#include <prevalent/checksum.hpp>
#include <prevalent/cipher.hpp>
#include <prevalent/format.hpp>
#include <prevalent/prevalent.hpp>
#include <prevalent/state_digest.hpp>

#include <map>

using namespace prevalent;

namespace {

struct State {
  std::map<std::string, long> counts;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, counts)
};
struct Add {
  static constexpr std::string_view name = "add";
  static constexpr int version = 2;
  std::string key;
  long by = 0;
  void apply(State& s, const Context&) const { s.counts[key] += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, key, by)
};

const encryption_key& fuzz_key() {
  static const encryption_key key(bytes(encryption_key::size, 0x5c));
  return key;
}

// The encrypted cases: a store opened with fuzz_key().
void encrypted_case(int kind, byte_view rest, const std::shared_ptr<Directory>& dir) {
  const detail::payload_cipher cipher(fuzz_key());
  const format::codec codecs[3] = {format::codec::json, format::codec::cbor,
                                   format::codec::msgpack};
  if (kind <= 3) {
    format::segment_header h;
    h.codec = codecs[kind % 3];
    h.salt = 7;
    h.cipher = format::cipher::xchacha20poly1305;
    h.key_check = cipher.key_check();
    bytes seg = format::encode_segment_header(h);
    bytes payload(rest.begin(), rest.end());
    if (kind < 3) {
      payload.clear();
      cipher.seal(detail::payload_cipher::purpose::record, rest, format::record_ad(h, 1, 0, 0),
                  payload);
    }
    if (!payload.empty()) format::append_record(seg, h.salt, 1, 0, payload);
    dir->open(format::segment_file_name(1), Directory::open_mode::create_new)->append(seg);
    return;
  }
  bytes snap;
  if (kind == 4) {
    format::snapshot_header h;
    h.cipher = format::cipher::xchacha20poly1305;
    h.key_check = cipher.key_check();
    // Version 3 seals the state digest in front of the payload.
    const digest128 digest = state_digest(rest);
    bytes plain(digest.begin(), digest.end());
    plain.insert(plain.end(), rest.begin(), rest.end());
    bytes sealed;
    cipher.seal(detail::payload_cipher::purpose::snapshot, plain, format::snapshot_ad(h), sealed);
    h.payload_length = sealed.size();
    h.payload_crc = crc32c(sealed);
    snap = format::encode_snapshot_header(h);
    snap.insert(snap.end(), sealed.begin(), sealed.end());
  } else {
    snap.assign(rest.begin(), rest.end());
  }
  dir->open(format::snapshot_file_name(0), Directory::open_mode::create_new)->append(snap);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool encrypted = data[0] >= 0x80;
  const int kind = encrypted ? (data[0] - 0x80) % 6 : data[0] % 7;
  byte_view rest(data + 1, size - 1);
  auto dir = make_memory_directory();
  const format::codec codecs[3] = {format::codec::json, format::codec::cbor,
                                   format::codec::msgpack};
  if (encrypted) {
    encrypted_case(kind, rest, dir);
  } else if (kind < 3) {
    format::segment_header h;
    h.codec = codecs[kind];
    h.salt = 7;
    bytes seg = format::encode_segment_header(h);
    if (!rest.empty()) format::append_record(seg, h.salt, 1, 0, rest);
    dir->open(format::segment_file_name(1), Directory::open_mode::create_new)->append(seg);
  } else {
    bytes snap;
    if (kind < 6) {
      format::snapshot_header h;
      h.codec = codecs[kind - 3];
      h.payload_length = rest.size();
      h.payload_crc = crc32c(rest);
      h.digest = state_digest(rest);
      snap = format::encode_snapshot_header(h);
    }
    snap.insert(snap.end(), rest.begin(), rest.end());
    dir->open(format::snapshot_file_name(0), Directory::open_mode::create_new)->append(snap);
  }
  try {
    store_options o;
    o.sync = sync_policy::none();
    if (encrypted) o.encryption_key = fuzz_key();
    Store<State, Add> store(dir, o);
    store.execute(Add{"k", 1});
  } catch (const error&) {
  }
  return 0;
}

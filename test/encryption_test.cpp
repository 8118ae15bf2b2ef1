// Authenticated encryption at rest (journal_options::encryption_key, docs/FORMAT.md
// "Encryption"): round trips, wrong and missing keys, tampering with the checksums recomputed,
// no plaintext on disk, turning encryption on for an existing store, and the header bytes.
#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include <prevalent/checksum.hpp>
#include <prevalent/cipher.hpp>

#include "support.hpp"
#include "thrown_error.hpp"

using namespace prevalent;
using test::Deposit;
using test::LedgerStore;
using test::thrown_error;
using test::Transfer;

namespace {

encryption_key key_of(std::uint8_t fill) {
  bytes k(encryption_key::size, fill);
  for (std::size_t i = 0; i < k.size(); ++i) k[i] = static_cast<std::uint8_t>(fill + i);
  return encryption_key(k);
}

store_options encrypted(std::uint8_t fill = 1) {
  store_options o;
  o.segment_bytes = 1024;
  o.encryption_key = key_of(fill);
  return o;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool file_contains(const std::filesystem::path& p, std::string_view needle) {
  const auto data = test::read_file(p);
  return std::search(data.begin(), data.end(), needle.begin(), needle.end()) != data.end();
}

// Writes a ledger with a snapshot in the middle; returns the live state.
std::string write_ledger(const std::filesystem::path& dir, const store_options& o) {
  LedgerStore store(dir, o);
  for (int i = 0; i < 40; ++i) store.execute(Deposit{"account-" + std::to_string(i % 5), i + 1});
  store.snapshot();
  for (int i = 0; i < 30; ++i) store.execute(Transfer{"account-1", "account-2", 1});
  return test::dump_state(store);
}

// Replaces the payload of the record at `offset` of segment `path` with `payload` and frames
// it again with valid checksums, as someone who can write the directory (but has no key) can.
void reframe(const std::filesystem::path& path, std::size_t offset, const bytes& payload) {
  auto data = test::read_file(path);
  std::string why;
  auto seg = format::decode_segment_header(data, why);
  REQUIRE(seg);
  auto r = format::decode_record(byte_view(data).subspan(offset), seg->salt, 1u << 20);
  REQUIRE(r.status == format::record_status::ok);
  REQUIRE(r.length == payload.size());
  bytes framed;
  format::append_record(framed, seg->salt, r.seq, r.timestamp_ns, payload, r.run_index);
  std::copy(framed.begin(), framed.end(), data.begin() + static_cast<std::ptrdiff_t>(offset));
  test::write_file(path, data);
}

bytes payload_at(const std::filesystem::path& path, std::size_t offset) {
  auto data = test::read_file(path);
  std::string why;
  auto seg = format::decode_segment_header(data, why);
  REQUIRE(seg);
  auto r = format::decode_record(byte_view(data).subspan(offset), seg->salt, 1u << 20);
  REQUIRE(r.status == format::record_status::ok);
  return bytes(r.payload.begin(), r.payload.end());
}

}  // namespace

TEST_CASE("an encrypted store round-trips its state through journal and snapshots") {
  test::temp_dir tmp;
  auto o = encrypted();
  SUBCASE("json") {}
  SUBCASE("cbor, compressed snapshots") {
    o.codec = codec::cbor;
    o.compress_snapshots = true;  // the suite is built with zstd, as policy_test assumes
  }
  const std::string live = write_ledger(tmp.path(), o);
  {
    LedgerStore store(tmp.path(), o);
    CHECK(test::dump_state(store) == live);
    CHECK(store.last_sequence() == 70);
    store.snapshot();  // the snapshot alone now holds the state
  }
  LedgerStore store(tmp.path(), o);
  CHECK(test::dump_state(store) == live);
  // Every segment and snapshot says it is encrypted (segment header version 2, snapshot
  // header version 3 with its encrypted flag).
  for (auto& p : test::files_with_prefix(tmp.path(), "journal-")) {
    std::string why;
    auto h = format::decode_segment_header(test::read_file(p), why);
    REQUIRE(h);
    CHECK(h->version == format::encrypted_version);
    CHECK(h->cipher == format::cipher::xchacha20poly1305);
    CHECK(h->key_check == detail::payload_cipher(*o.encryption_key).key_check());
  }
  for (auto& p : test::files_with_prefix(tmp.path(), "snapshot-")) {
    std::string why;
    auto h = format::decode_snapshot_header(test::read_file(p), why);
    REQUIRE(h);
    CHECK(h->version == format::snapshot_version);  // version 3 with the encrypted flag
    CHECK(h->encrypted());
  }
}

TEST_CASE("a throwing apply rebuilds an encrypted store's state from its sealed files") {
  // The rebuild reads the snapshot and the journal back through Journal::for_each: sealed
  // records must be opened there too, not only at open.
  test::temp_dir tmp;
  auto o = encrypted();
  LedgerStore store(tmp.path(), o);
  for (int i = 0; i < 20; ++i) store.execute(Deposit{"alice", 10});
  store.snapshot();
  for (int i = 0; i < 20; ++i) store.execute(Deposit{"alice", 5});
  const auto state = test::dump_state(store);
  CHECK_THROWS_WITH_AS(store.execute(test::BrokenTransfer{"alice", "bob", 7}),
                       "injected failure half-way through apply", std::runtime_error);
  CHECK(test::dump_state(store) == state);  // the debit was undone by the rebuild
  CHECK_FALSE(store.failed());
  CHECK(store.execute(Deposit{"alice", 1}) == 301);
}

TEST_CASE("an encrypted store opened with another key or none fails with the file named") {
  test::temp_dir tmp;
  write_ledger(tmp.path(), encrypted(1));
  SUBCASE("another key") {
    auto e = thrown_error([&] { LedgerStore store(tmp.path(), encrypted(2)); });
    CHECK(e.code() == errc::encryption_mismatch);
    CHECK(contains(e.what(), "another encryption key"));
    CHECK(contains(e.what(), format::snapshot_file_name(40)));  // the snapshot is read first
  }
  SUBCASE("another key, journal only") {
    test::temp_dir only_journal;
    {
      LedgerStore store(only_journal.path(), encrypted(1));
      store.execute(Deposit{"alice", 1});
    }
    auto e = thrown_error([&] { LedgerStore store(only_journal.path(), encrypted(2)); });
    CHECK(e.code() == errc::encryption_mismatch);
    CHECK(contains(e.what(), "another encryption key"));
    CHECK(contains(e.what(), format::segment_file_name(1)));
  }
  SUBCASE("no key") {
    store_options plain;
    plain.segment_bytes = 1024;
    auto e = thrown_error([&] { LedgerStore store(tmp.path(), plain); });
    CHECK(e.code() == errc::encryption_mismatch);
    CHECK(contains(e.what(), "without an encryption key"));
    CHECK(contains(e.what(), format::snapshot_file_name(40)));
  }
  // Nothing was changed by the failed opens: the right key still reads everything.
  LedgerStore store(tmp.path(), encrypted(1));
  CHECK(store.last_sequence() == 70);
}

TEST_CASE("a changed record with its checksums recomputed is refused, never cut as a torn tail") {
  test::temp_dir tmp;
  auto o = encrypted();
  o.segment_bytes = 64u << 20;  // one segment: every record is in the last one
  {
    LedgerStore store(tmp.path(), o);
    for (int i = 0; i < 5; ++i) store.execute(Deposit{"alice", 10});
  }
  const auto segment = tmp / format::segment_file_name(1);
  const std::size_t first = format::encrypted_segment_header_size;
  const std::size_t second = first + format::framed_size(payload_at(segment, first).size());
  // The last record of the last segment: exactly where a torn tail would be cut.
  std::size_t last = second;
  for (int i = 2; i < 5; ++i) last += format::framed_size(payload_at(segment, last).size());
  std::size_t target = 0;
  std::uint64_t seq = 0;
  SUBCASE("a ciphertext byte of the last record") {
    auto p = payload_at(segment, last);
    p[format::nonce_size + 3] ^= 0x01;
    reframe(segment, last, p);
    target = last;
    seq = 5;
  }
  SUBCASE("a nonce byte of the first record") {
    auto p = payload_at(segment, first);
    p[0] ^= 0x80;
    reframe(segment, first, p);
    target = first;
    seq = 1;
  }
  SUBCASE("the payloads of records 1 and 2 swapped") {
    auto p1 = payload_at(segment, first);
    auto p2 = payload_at(segment, second);
    REQUIRE(p1.size() == p2.size());  // same command, same length: only the AEAD tells
    reframe(segment, first, p2);
    reframe(segment, second, p1);
    target = first;
    seq = 1;
  }
  // The CRCs match: the scan would accept these bytes without the tag.
  const auto before = test::read_file(segment);
  auto e = thrown_error([&] { LedgerStore store(tmp.path(), o); });
  CHECK(e.code() == errc::authentication_failed);
  CHECK(contains(e.what(), segment.string()));
  CHECK(contains(e.what(), "offset " + std::to_string(target)));
  CHECK(contains(e.what(), "record " + std::to_string(seq)));
  CHECK(test::read_file(segment) == before);  // nothing was cut
}

TEST_CASE("a changed snapshot with its checksums recomputed is refused") {
  test::temp_dir tmp;
  auto o = encrypted();
  write_ledger(tmp.path(), o);
  const auto snap = tmp / format::snapshot_file_name(40);
  auto data = test::read_file(snap);
  std::string why;
  auto h = format::decode_snapshot_header(data, why);
  REQUIRE(h);
  bytes payload(data.begin() + format::encrypted_snapshot_header_size, data.end());
  SUBCASE("a ciphertext byte") { payload[format::nonce_size + 1] ^= 0x40; }
  SUBCASE("renamed to another sequence number") {
    // The header's last_seq is in the associated data: claim it covers only 39 records.
    std::filesystem::remove(snap);
    h->last_seq = 39;
  }
  h->payload_crc = crc32c(payload);
  auto out = format::encode_snapshot_header(*h);
  out.insert(out.end(), payload.begin(), payload.end());
  test::write_file(tmp / format::snapshot_file_name(h->last_seq), out);
  auto e = thrown_error([&] { LedgerStore store(tmp.path(), o); });
  CHECK(e.code() == errc::authentication_failed);
  CHECK(contains(e.what(), format::snapshot_file_name(h->last_seq)));
}

TEST_CASE("no command argument and no state appears in clear in any file of an encrypted store") {
  test::temp_dir tmp;
  auto o = encrypted();
  o.codec = codec::json;
  const std::string secret = "secret-account-7f3a";
  {
    LedgerStore store(tmp.path(), o);
    for (int i = 0; i < 30; ++i) store.execute(Deposit{secret + std::to_string(i % 3), 424242});
    store.snapshot();
    store.execute(Deposit{secret, 1});
  }
  std::size_t files = 0;
  for (auto& e : std::filesystem::directory_iterator(tmp.path())) {
    ++files;
    INFO(e.path().string());
    CHECK_FALSE(file_contains(e.path(), secret));
    CHECK_FALSE(file_contains(e.path(), "424242"));
    CHECK_FALSE(file_contains(e.path(), "deposit"));   // the command name
    CHECK_FALSE(file_contains(e.path(), "balances"));  // the state's field name
  }
  CHECK(files >= 3);  // LOCK, a segment, a snapshot
  // The same workload without a key does show them: the check can fail.
  test::temp_dir plain;
  {
    LedgerStore store(plain.path());
    store.execute(Deposit{secret, 424242});
    store.snapshot();
  }
  CHECK(file_contains(plain / format::segment_file_name(1), secret));
  CHECK(file_contains(plain / format::snapshot_file_name(1), "balances"));
}

TEST_CASE("a store written without a key is refused with one, unless accept_unencrypted") {
  test::temp_dir tmp;
  store_options plain;
  plain.segment_bytes = 1024;
  const std::string before = write_ledger(tmp.path(), plain);
  auto o = encrypted();
  auto e = thrown_error([&] { LedgerStore store(tmp.path(), o); });
  CHECK(e.code() == errc::encryption_mismatch);
  CHECK(contains(e.what(), "not encrypted"));
  CHECK(contains(e.what(), "accept_unencrypted"));

  // Migration: accept the old files once; new segments and snapshots are encrypted.
  o.accept_unencrypted = true;
  std::string live;
  {
    LedgerStore store(tmp.path(), o);
    CHECK(test::dump_state(store) == before);
    store.execute(Deposit{"after", 1});
    auto segs = test::files_with_prefix(tmp.path(), "journal-");
    std::string why;
    auto last = format::decode_segment_header(test::read_file(segs.back()), why);
    REQUIRE(last);
    CHECK(last->encrypted());  // the record went into a new, encrypted segment
    store.snapshot();
    store.execute(Deposit{"after", 2});
    store.snapshot();  // keep_snapshots = 2: both kept snapshots are now encrypted, and the
                       // journal is dropped back to the older one: the plaintext segments go
    live = test::dump_state(store);
  }
  for (auto& p : test::files_with_prefix(tmp.path(), "journal-")) {
    std::string why;
    auto h = format::decode_segment_header(test::read_file(p), why);
    REQUIRE(h);
    CHECK(h->encrypted());
  }
  o.accept_unencrypted = false;
  LedgerStore store(tmp.path(), o);
  CHECK(test::dump_state(store) == live);
}

TEST_CASE("a plaintext segment slipped in after encrypted ones is refused") {
  test::temp_dir tmp;
  auto o = encrypted();
  {
    LedgerStore store(tmp.path(), o);
    store.execute(Deposit{"alice", 1});
  }
  // Someone without the key appends a segment of their own (a valid, unencrypted one).
  {
    auto data = test::read_file(tmp / format::segment_file_name(1));
    format::segment_header h;
    h.first_seq = 2;
    h.salt = 7;
    bytes forged = format::encode_segment_header(h);
    format::append_record(forged, h.salt, 2, 0,
                          as_bytes(R"({"cmd":"deposit","v":1,"args":{"account":"mallory",)"
                                   R"("amount":1000000}})"));
    test::write_file(tmp / format::segment_file_name(2), forged);
  }
  auto e = thrown_error([&] { LedgerStore store(tmp.path(), o); });
  CHECK(e.code() == errc::encryption_mismatch);
  CHECK(contains(e.what(), format::segment_file_name(2)));
}

TEST_CASE("encrypted headers: layout, checksum over the encryption block, version 1 unchanged") {
  format::segment_header h;
  h.first_seq = 9;
  h.salt = 0x1234;
  h.cipher = format::cipher::xchacha20poly1305;
  h.key_check.fill(0xab);
  auto b = format::encode_segment_header(h);
  REQUIRE(b.size() == 56);
  CHECK(b[8] == 2);      // version
  CHECK(b[32] == 1);     // cipher
  CHECK(b[40] == 0xab);  // key check value
  std::string why;
  auto d = format::decode_segment_header(b, why);
  REQUIRE(d);
  CHECK(d->key_check == h.key_check);
  CHECK(d->size() == 56);
  SUBCASE("a flipped key check byte breaks the header checksum") {
    b[50] ^= 1;
    CHECK_FALSE(format::decode_segment_header(b, why));
    CHECK(contains(why, "checksum"));
  }
  SUBCASE("cut short") {
    b.resize(40);
    CHECK_FALSE(format::decode_segment_header(b, why));
    CHECK(contains(why, "encrypted segment header is 40 bytes"));
  }
  SUBCASE("without a cipher the header is version 1, 32 bytes") {
    h.cipher = format::cipher::none;
    auto v1 = format::encode_segment_header(h);
    CHECK(v1.size() == 32);
    CHECK(v1[8] == 1);
  }
  format::snapshot_header s;
  s.last_seq = 3;
  s.cipher = format::cipher::xchacha20poly1305;
  auto sb = format::encode_snapshot_header(s);
  CHECK(sb.size() == 96);  // version 3: 72 bytes, then the encryption block
  auto sd = format::decode_snapshot_header(sb, why);
  REQUIRE(sd);
  CHECK(sd->encrypted());
}

TEST_CASE("an encryption key is exactly 32 bytes, or 64 hex digits; bad ones are named") {
  CHECK_THROWS_WITH_AS(encryption_key(bytes(31, 1)), doctest::Contains("31 bytes, expected 32"),
                       error);
  const std::string hex(64, 'a');
  CHECK(encryption_key::from_hex(hex).bytes()[0] == 0xaa);
  CHECK_THROWS_WITH_AS(encryption_key::from_hex(hex.substr(2)), doctest::Contains("62 characters"),
                       error);
  std::string bad = hex;
  bad[10] = 'g';
  try {
    encryption_key::from_hex(bad);
    FAIL("accepted a non-hex key");
  } catch (const error& e) {
    CHECK(e.code() == errc::invalid_option);
    CHECK(contains(e.what(), "position 10"));
    CHECK_FALSE(contains(e.what(), "aaaa"));  // the message does not echo the key
  }
  // Opening with a key whose max_record_bytes leaves no room for the overhead.
  test::temp_dir tmp;
  auto o = encrypted();
  o.max_record_bytes = format::max_payload_limit;
  auto e = thrown_error([&] { LedgerStore store(tmp.path(), o); });
  CHECK(e.code() == errc::invalid_option);
  CHECK(contains(e.what(), "max_record_bytes"));
}

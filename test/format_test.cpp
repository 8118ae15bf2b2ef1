// The record format: checksums, framing round trips, and decoding of damaged bytes.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <prevalent/checksum.hpp>
#include <prevalent/format.hpp>

using namespace prevalent;
namespace f = prevalent::format;

TEST_CASE("crc32c matches the standard check value and chains") {
  CHECK(crc32c(as_bytes("123456789")) == 0xE3069283u);
  CHECK(crc32c(as_bytes("")) == 0u);
  CHECK(crc32c(as_bytes("6789"), crc32c(as_bytes("12345"))) == 0xE3069283u);
  // RFC 3720 (iSCSI) B.4 test vectors: 32 bytes of zeros, of ones, ascending and descending.
  bytes zeros(32, 0), ones(32, 0xff), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
    down[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(31 - i);
  }
  CHECK(crc32c(zeros) == 0x8A9136AAu);
  CHECK(crc32c(ones) == 0x62A8AB43u);
  CHECK(crc32c(up) == 0x46DD794Eu);
  CHECK(crc32c(down) == 0x113FDB5Cu);
  // Chaining across every split point of a longer buffer.
  bytes big(1000);
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::uint8_t>(i * 7 + 3);
  const std::uint32_t whole = crc32c(big);
  for (std::size_t cut = 0; cut <= big.size(); cut += 37)
    CHECK(crc32c(byte_view(big).subspan(cut), crc32c(byte_view(big).first(cut))) == whole);
}

TEST_CASE("segment header round trip and rejection of damage") {
  f::segment_header h;
  h.first_seq = 42;
  h.salt = 0xdeadbeef;
  bytes b = f::encode_segment_header(h);
  REQUIRE(b.size() == f::segment_header_size);
  std::string why;
  auto back = f::decode_segment_header(b, why);
  REQUIRE(back);
  CHECK(back->first_seq == 42);
  CHECK(back->salt == 0xdeadbeef);
  for (std::size_t i = 0; i < b.size(); ++i) {
    bytes d = b;
    d[i] ^= 1;
    CHECK_MESSAGE(!f::decode_segment_header(d, why), "flip at ", i);
  }
  CHECK(!f::decode_segment_header(byte_view(b).first(31), why));
  CHECK(why.find("31 bytes") != std::string::npos);
}

TEST_CASE("records round trip, are 8-byte aligned, and verify against their segment's salt") {
  bytes log;
  f::append_record(log, 7, 1, 1000, as_bytes("a"));
  f::append_record(log, 7, 2, 2000, as_bytes("hello, world"));
  CHECK(log.size() == f::framed_size(1) + f::framed_size(12));
  CHECK(log.size() % 8 == 0);
  auto r1 = f::decode_record(log, 7, 1024);
  REQUIRE(r1.status == f::record_status::ok);
  CHECK(r1.seq == 1);
  CHECK(r1.timestamp_ns == 1000);
  CHECK(as_chars(r1.payload) == "a");
  auto r2 = f::decode_record(byte_view(log).subspan(r1.size), 7, 1024);
  REQUIRE(r2.status == f::record_status::ok);
  CHECK(as_chars(r2.payload) == "hello, world");
  // The same bytes under another segment's salt do not verify (rule R6 in docs/RELIABILITY.md: no
  // stale records).
  CHECK(f::decode_record(log, 8, 1024).status == f::record_status::bad_header_checksum);
}

TEST_CASE("decoding sorts damage into its kinds and never trusts an unverified length") {
  bytes rec;
  f::append_record(rec, 1, 5, 0, as_bytes("payload!!"));
  SUBCASE("zero bytes are the end of the log") {
    bytes zeros(64, 0);
    CHECK(f::decode_record(zeros, 1, 1024).status == f::record_status::end_of_log);
  }
  SUBCASE("every truncation is a truncated header or payload") {
    for (std::size_t n = 1; n < rec.size(); ++n) {
      auto s = f::decode_record(byte_view(rec).first(n), 1, 1024).status;
      CHECK((n < f::record_header_size ? s == f::record_status::truncated_header
                                       : s == f::record_status::truncated_payload));
    }
  }
  SUBCASE("every single-byte flip is detected") {
    for (std::size_t i = 0; i < rec.size(); ++i) {
      bytes d = rec;
      d[i] ^= 0x40;
      CHECK_MESSAGE(f::decode_record(d, 1, 1024).status != f::record_status::ok, "flip at ", i);
    }
  }
  SUBCASE("a huge length with a valid checksum is refused, not allocated") {
    CHECK(f::decode_record(rec, 1, 4).status == f::record_status::bad_length);
  }
}

TEST_CASE("snapshot header round trip") {
  f::snapshot_header h;
  h.last_seq = 99;
  h.timestamp_ns = -5;
  h.payload_length = 3;
  h.payload_crc = 77;
  bytes b = f::encode_snapshot_header(h);
  std::string why;
  auto back = f::decode_snapshot_header(b, why);
  REQUIRE(back);
  CHECK(back->last_seq == 99);
  CHECK(back->timestamp_ns == -5);
  CHECK(back->payload_length == 3);
  b[20] ^= 1;
  CHECK(!f::decode_snapshot_header(b, why));
  CHECK(why == "snapshot header checksum mismatch");
}

TEST_CASE("file names sort by sequence number and parse back") {
  CHECK(f::segment_file_name(1) == "journal-00000000000000000001.log");
  CHECK(f::segment_file_name(9) < f::segment_file_name(10));
  CHECK(f::parse_segment_file_name(f::segment_file_name(123456)) == 123456u);
  CHECK(f::parse_snapshot_file_name(f::snapshot_file_name(18446744073709551615ull)) ==
        18446744073709551615ull);
  CHECK(!f::parse_segment_file_name("journal-0000000000000000001x.log"));
  CHECK(!f::parse_segment_file_name("journal-1.log"));
  CHECK(!f::parse_snapshot_file_name(f::segment_file_name(3)));
}

TEST_CASE("golden segment: the bytes in docs/FORMAT.md are what the writer produces") {
  // test/fixtures/two_records.log is the segment dumped in docs/FORMAT.md. Re-encoding its
  // content with its salt must give the same bytes, so an accidental format change fails here.
  std::ifstream in(PREVALENT_FIXTURES "/two_records.log", std::ios::binary);
  bytes golden{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  REQUIRE(golden.size() == 224);
  f::segment_header h;
  h.first_seq = 1;
  h.salt = 0x1f695319;
  bytes written = f::encode_segment_header(h);
  f::append_record(written, h.salt, 1, 1795395600000000000LL,
                   as_bytes(R"({"cmd":"deposit","v":1,"args":{"account":"alice","amount":100}})"));
  f::append_record(written, h.salt, 2, 1795395600000000001LL,
                   as_bytes(R"({"cmd":"deposit","v":1,"args":{"account":"bob","amount":5}})"),
                   1);  // written in the same unsynced run as record 1
  CHECK(written == golden);
}

TEST_CASE("the run index round trips and may not point before sequence number 1") {
  bytes rec;
  f::append_record(rec, 9, 10, 5, as_bytes("x"), 3);
  auto r = f::decode_record(rec, 9, 1024);
  REQUIRE(r.status == f::record_status::ok);
  CHECK(r.run_index == 3);
  CHECK(f::run_start(r) == 7);
  bytes again;
  f::append_record(again, 9, r.seq, r.timestamp_ns, r.payload, r.run_index);
  CHECK(again == rec);

  bytes edge;
  f::append_record(edge, 9, 4, 0, as_bytes("x"), 3);  // a run that began at record 1
  CHECK(f::decode_record(edge, 9, 1024).status == f::record_status::ok);
  bytes past;
  f::append_record(past, 9, 4, 0, as_bytes("x"), 4);  // would begin at record 0
  auto bad = f::decode_record(past, 9, 1024);
  CHECK(bad.status == f::record_status::bad_run_index);
  CHECK(f::header_verified(bad));
}

TEST_CASE(
    "regression (issue 13): a nonzero field at bytes 28..31 that the header checksum "
    "covers is checked, not accepted") {
  // The input libFuzzer found (test/fuzz/corpus/fuzz_format/issue13_nonzero_reserved): record 1
  // of salt 0 with bytes 00 00 00 08 in the field that was "reserved, 0". It verifies, and used
  // to decode as a valid record that re-encoded to other bytes. Record 1 cannot be 2^27
  // records into a run.
  std::ifstream in(PREVALENT_FIXTURES "/../fuzz/corpus/fuzz_format/issue13_nonzero_reserved",
                   std::ios::binary);
  bytes input{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  REQUIRE(input.size() == 96);
  auto r = f::decode_record(input, 0, 1u << 20);
  CHECK(r.status == f::record_status::bad_run_index);
  CHECK(r.seq == 1);
  CHECK(r.run_index == 0x08000000u);
  CHECK(std::string(f::describe(r.status)).find("run index") != std::string::npos);
}

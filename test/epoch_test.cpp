// The epoch in the journal format (issue 11): version 3 segment headers, a new segment per
// epoch, epochs read back, old segments (versions 1 and 2, test/fixtures/snapshot_v*/) read as
// epoch 0, and a decreasing epoch refused.
#include <doctest/doctest.h>

#include <prevalent/checksum.hpp>
#include <prevalent/error.hpp>
#include <prevalent/format.hpp>
#include <prevalent/journal.hpp>

#include "support.hpp"

using namespace prevalent;
namespace f = prevalent::format;

namespace {

const std::filesystem::path fixtures = PREVALENT_FIXTURES;

bool has_code(const prevalent::error& e, errc c) { return e.code() == make_error_code(c); }

struct seen_record {
  std::uint64_t seq;
  std::uint64_t epoch;
  std::string payload;
};

std::unique_ptr<Journal> open_journal(const std::filesystem::path& dir, std::uint64_t epoch,
                                      std::vector<seen_record>* seen = nullptr,
                                      const std::optional<encryption_key>& key = std::nullopt) {
  journal_options o;
  o.epoch = epoch;
  o.preallocate_bytes = 0;
  o.encryption_key = key;
  o.accept_unencrypted = true;
  return Journal::open(open_posix_directory(dir), o, 1, 1, [seen](const record_view& r) {
    if (seen) seen->push_back({r.seq, r.epoch, std::string(as_chars(r.payload))});
  });
}

std::vector<std::uint64_t> epochs_of(const std::vector<segment_info>& segs) {
  std::vector<std::uint64_t> out;
  for (const auto& s : segs) out.push_back(s.epoch);
  return out;
}

std::uint32_t header_version(const std::filesystem::path& file) {
  std::string why;
  auto h = f::decode_segment_header(test::read_file(file), why);
  REQUIRE_MESSAGE(h, why);
  return h->version;
}

}  // namespace

TEST_CASE("version 3 segment header: epoch and flags round trip, every byte covered") {
  for (bool encrypted : {false, true}) {
    CAPTURE(encrypted);
    f::segment_header h;
    h.codec = f::codec::cbor;
    h.first_seq = 42;
    h.salt = 0x1f695319;
    h.epoch = 0x0102030405060708ull;
    if (encrypted) {
      h.cipher = f::cipher::xchacha20poly1305;
      h.key_check.fill(0x5a);
    }
    const bytes b = f::encode_segment_header(h);
    REQUIRE(b.size() == (encrypted ? 72u : 48u));
    CHECK(b[8] == 3);  // version 3
    std::string why;
    auto back = f::decode_segment_header(b, why);
    REQUIRE_MESSAGE(back, why);
    CHECK(back->version == 3);
    CHECK(back->epoch == h.epoch);
    CHECK(back->first_seq == 42);
    CHECK(back->encrypted() == encrypted);
    CHECK(f::announced_segment_header_size(b) == b.size());
    // Every byte is covered by the header checksum or checked for its value.
    for (std::size_t i = 0; i < b.size(); ++i) {
      bytes d = b;
      d[i] ^= 0x01;
      CHECK_MESSAGE(!f::decode_segment_header(d, why), "flip at ", i);
    }
    // Cut short: refused, and announced as longer than what is there.
    CHECK_FALSE(f::decode_segment_header(byte_view(b).first(b.size() - 8), why));
  }
  // Epoch 0 is written as version 1 (byte for byte as before epochs), never as version 3.
  f::segment_header plain;
  plain.salt = 9;
  CHECK(f::encode_segment_header(plain).size() == f::segment_header_size);
  CHECK(f::encode_segment_header(plain)[8] == 1);
  // A version 3 header claiming epoch 0 (CRC recomputed) is refused by name.
  f::segment_header e1 = plain;
  e1.epoch = 1;
  bytes b = f::encode_segment_header(e1);
  b[32] = 0;  // epoch 1 -> 0
  std::uint32_t crc = crc32c(byte_view(b).first(28));
  crc = crc32c(byte_view(b).subspan(32), crc);
  for (int i = 0; i < 4; ++i) b[28 + i] = static_cast<std::uint8_t>(crc >> (8 * i));
  std::string why;
  CHECK_FALSE(f::decode_segment_header(b, why));
  CHECK(why.find("epoch 0") != std::string::npos);
}

TEST_CASE("the version 3 header of docs/FORMAT.md's worked example") {
  // The dump in docs/FORMAT.md ("A version 3 header"): epoch 5, JSON, first_seq 3.
  f::segment_header h;
  h.first_seq = 3;
  h.salt = 0x1f695319;
  h.epoch = 5;
  const bytes expected = {0x50, 0x52, 0x56, 0x4c, 0x4a, 0x52, 0x4e, 0x4c, 0x03, 0x00, 0x00, 0x00,
                          0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                          0x19, 0x53, 0x69, 0x1f, 0x23, 0x92, 0x80, 0x57, 0x05, 0x00, 0x00, 0x00,
                          0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  CHECK(f::encode_segment_header(h) == expected);
  std::string why;
  auto back = f::decode_segment_header(expected, why);
  REQUIRE_MESSAGE(back, why);
  CHECK(back->epoch == 5);
}

TEST_CASE("a new epoch starts a new segment, and reopening reads the epochs back") {
  test::temp_dir tmp;
  {
    auto j = open_journal(tmp.path(), 0);
    for (int i = 0; i < 3; ++i) j->append(i, "a" + std::to_string(i));
    j->sync_through(3);
    CHECK(epochs_of(j->segments()) == std::vector<std::uint64_t>{0});
  }
  {
    auto j = open_journal(tmp.path(), 2);
    CHECK(j->last_epoch() == 0);
    // Opened with a higher epoch: a new segment for the next record.
    CHECK(epochs_of(j->segments()) == std::vector<std::uint64_t>{0, 2});
    j->append(10, "b1");
    j->append(11, "b2");
    j->sync_through(5);
    // Raised while open: the next record starts another segment.
    j->set_epoch(3);
    j->append(12, "c1");
    j->sync_through(6);
    CHECK(epochs_of(j->segments()) == std::vector<std::uint64_t>{0, 2, 3});
    auto segs = j->segments();
    CHECK(segs[1].first_seq == 4);
    CHECK(segs[2].first_seq == 6);
    CHECK(header_version(tmp / segs[0].file) == 1);
    CHECK(header_version(tmp / segs[1].file) == 3);
    // Lowering is refused: epochs never decrease.
    try {
      j->set_epoch(2);
      FAIL("set_epoch(2) after epoch 3 was accepted");
    } catch (const prevalent::error& e) {
      CHECK(has_code(e, errc::stale_epoch));
      CHECK(std::string(e.what()).find("epoch 2") != std::string::npos);
    }
  }
  std::vector<seen_record> seen;
  auto j = open_journal(tmp.path(), 3, &seen);
  REQUIRE(seen.size() == 6);
  const std::uint64_t want[] = {0, 0, 0, 2, 2, 3};
  for (std::size_t i = 0; i < 6; ++i) {
    CHECK(seen[i].seq == i + 1);
    CHECK(seen[i].epoch == want[i]);
  }
  CHECK(seen[5].payload == "c1");
  CHECK(j->last_epoch() == 3);
  // Reopened with the same epoch: no new segment.
  CHECK(j->segments().size() == 3);
  // for_each() reports the epoch too.
  std::vector<std::uint64_t> read;
  j->for_each(1, 6, [&](const record_view& r) { read.push_back(r.epoch); });
  CHECK(read == std::vector<std::uint64_t>(std::begin(want), std::end(want)));
}

TEST_CASE("an empty segment of another epoch is replaced, not left behind") {
  test::temp_dir tmp;
  { auto j = open_journal(tmp.path(), 1); }  // creates journal-1 of epoch 1, no record
  {
    auto j = open_journal(tmp.path(), 2);
    CHECK(epochs_of(j->segments()) == std::vector<std::uint64_t>{2});
    j->set_epoch(4);
    j->append(1, "x");
    j->sync_through(1);
    CHECK(epochs_of(j->segments()) == std::vector<std::uint64_t>{4});
  }
  CHECK(test::files_with_prefix(tmp.path(), "journal-").size() == 1);
  std::vector<seen_record> seen;
  auto j = open_journal(tmp.path(), 4, &seen);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].epoch == 4);
}

TEST_CASE("a store opened with a lower epoch than its journal's replays but refuses commands") {
  test::temp_dir tmp;
  store_options o;
  o.epoch = 5;
  {
    test::LedgerStore s(tmp.path(), o);
    s.execute(test::Deposit{"a", 10});
  }
  o.epoch = 0;
  test::LedgerStore s(tmp.path(), o);
  CHECK(s.query([](const test::Ledger& l) { return l.balances.at("a"); }) == 10);
  try {
    s.execute(test::Deposit{"a", 1});
    FAIL("a command of epoch 0 after epoch 5 was accepted");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::stale_epoch));
    CHECK(std::string(e.what()).find("store_options::epoch") != std::string::npos);
    CHECK(std::string(e.what()).find("epoch 5") != std::string::npos);
  }
  // Refused before it ran: the state and the journal are as they were.
  CHECK(s.query([](const test::Ledger& l) { return l.balances.at("a"); }) == 10);
  CHECK(s.last_sequence() == 1);
  CHECK(epochs_of(s.segments()) == std::vector<std::uint64_t>{5});
}

TEST_CASE("a segment of a lower epoch than the one before it is refused, naming the file") {
  test::temp_dir tmp;
  {
    auto j = open_journal(tmp.path(), 5);
    j->append(1, "r1");
    j->sync_through(1);
  }
  // Written by hand: journal-2 of epoch 3 after journal-1 of epoch 5 (what no writer does).
  f::segment_header h;
  h.first_seq = 2;
  h.salt = 77;
  h.epoch = 3;
  bytes seg = f::encode_segment_header(h);
  const std::string p = "r2";
  f::append_record(seg, h.salt, 2, 2, as_bytes(p));
  test::write_file(tmp / f::segment_file_name(2), seg);
  try {
    auto j = open_journal(tmp.path(), 5);
    FAIL("a decreasing epoch was accepted");
  } catch (const prevalent::error& e) {
    const std::string what = e.what();
    CHECK(has_code(e, errc::corrupt_segment));
    CHECK(what.find(f::segment_file_name(2)) != std::string::npos);
    CHECK(what.find("epoch 3") != std::string::npos);
    CHECK(what.find("epochs never decrease") != std::string::npos);
  }
}

TEST_CASE("a version 3 segment cut inside its header is an unfinished creation") {
  test::temp_dir tmp;
  {
    auto j = open_journal(tmp.path(), 1);
    j->append(1, "r1");
    j->sync_through(1);
    j->set_epoch(2);
  }
  // The header of a segment of epoch 2, cut after 40 of its 48 bytes (a crash while creating).
  f::segment_header h;
  h.first_seq = 2;
  h.salt = 5;
  h.epoch = 2;
  bytes seg = f::encode_segment_header(h);
  seg.resize(40);
  test::write_file(tmp / f::segment_file_name(2), seg);
  auto j = open_journal(tmp.path(), 2);
  CHECK(j->recovery().torn_reason == "removed unfinished segment");
  CHECK(j->last_appended() == 1);
}

TEST_CASE("stores written before epochs (test/fixtures/snapshot_v*) read as epoch 0") {
  // Segments of versions 1 and 2, written at commit 181e56b (test/fixtures/README.md).
  for (auto [dir, encrypted] :
       {std::pair{"snapshot_v1_json", false}, std::pair{"snapshot_v2_encrypted", true}}) {
    CAPTURE(dir);
    test::temp_dir tmp;
    test::copy_dir(fixtures / dir, tmp / "store");
    std::optional<encryption_key> key;
    if (encrypted) key = test::test_key();
    {
      std::vector<seen_record> seen;
      auto j = open_journal(tmp / "store", 0, &seen, key);
      REQUIRE(seen.size() == 5);
      for (const auto& r : seen) CHECK(r.epoch == 0);
      for (const auto& s : j->segments()) CHECK(s.epoch == 0);
    }
    // The store goes on under epoch 4: a version 3 segment after the old ones, and a reopen
    // rebuilds the state from both.
    store_options o;
    o.epoch = 4;
    if (encrypted) o.encryption_key = key;
    std::string before;
    {
      test::LedgerStore s(tmp / "store", o);
      s.execute(test::Deposit{"z", 7});
      before = test::dump_state(s);
      const auto segs = s.segments();
      CHECK(segs.back().epoch == 4);
      CHECK(segs.back().first_seq == 6);
      CHECK(header_version(tmp / "store" / segs.back().file) == 3);
      CHECK(header_version(tmp / "store" / segs.front().file) == (encrypted ? 2u : 1u));
    }
    test::LedgerStore again(tmp / "store", o);
    CHECK(test::dump_state(again) == before);
    CHECK(again.last_sequence() == 6);
  }
}

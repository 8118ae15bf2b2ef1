// The journal: append and replay, segment rolls, recovery of torn tails, and corruption that
// must fail open with the file and offset.
#include <doctest/doctest.h>

#include <prevalent/error.hpp>
#include <prevalent/format.hpp>
#include <prevalent/journal.hpp>

#include "support.hpp"

using namespace prevalent;
namespace f = prevalent::format;

namespace {

struct collected {
  std::vector<std::uint64_t> seqs;
  std::vector<std::string> payloads;
  Journal::visitor visitor() {
    return [this](const record_view& r) {
      seqs.push_back(r.seq);
      payloads.emplace_back(as_chars(r.payload));
    };
  }
};

std::unique_ptr<Journal> open_journal(std::shared_ptr<Directory> dir, collected* into = nullptr,
                                      std::uint64_t segment_bytes = 1 << 20,
                                      std::uint64_t preallocate = 0) {
  journal_options o;
  o.segment_bytes = segment_bytes;
  o.max_record_bytes = 1 << 20;
  o.preallocate_bytes = preallocate;
  return Journal::open(std::move(dir), o, 1, 1, into ? into->visitor() : Journal::visitor{});
}

std::string payload_for(std::uint64_t i) {
  return "record-" + std::to_string(i) + std::string(i % 13, 'x');
}

// Writes `n` records into a fresh journal in `path`; returns the end offset of each record in
// the (single) segment.
std::vector<std::uint64_t> write_records(const std::filesystem::path& path, int n) {
  auto j = open_journal(open_posix_directory(path));
  std::vector<std::uint64_t> ends;
  for (int i = 1; i <= n; ++i) {
    j->flush_through(j->append(i * 10, payload_for(i)));
    ends.push_back(j->segments().back().bytes);
  }
  j->sync_through(n);
  return ends;
}

template <class F>
error open_error(F&& f) {
  try {
    f();
  } catch (const error& e) {
    return e;
  }
  FAIL("open succeeded on a damaged journal");
  return error(std::error_code(), "");  // not reached: FAIL throws
}

}  // namespace

TEST_CASE("append, sync and replay in order after reopen") {
  auto dir = make_memory_directory();
  {
    auto j = open_journal(dir);
    CHECK(j->next_seq() == 1);
    for (int i = 1; i <= 100; ++i) CHECK(j->append(i, payload_for(i)) == std::uint64_t(i));
    j->sync_through(100);
    CHECK(j->durable_seq() == 100);
  }
  collected c;
  auto j = open_journal(dir, &c);
  REQUIRE(c.seqs.size() == 100);
  for (std::size_t i = 0; i < 100; ++i) {
    CHECK(c.seqs[i] == i + 1);
    CHECK(c.payloads[i] == payload_for(i + 1));
  }
  CHECK(j->next_seq() == 101);
  CHECK(j->recovery().records == 100);
  CHECK(j->recovery().torn_bytes == 0);
}

TEST_CASE("segments roll past the size limit; read, for_each and drop_below work across them") {
  auto dir = make_memory_directory();
  auto j = open_journal(dir, nullptr, 256);
  for (int i = 1; i <= 40; ++i) j->append(i, payload_for(i));
  j->sync_through(40);
  auto segs = j->segments();
  REQUIRE(segs.size() > 5);
  for (std::size_t i = 1; i < segs.size(); ++i)
    CHECK(segs[i].first_seq == segs[i - 1].last_seq + 1);
  for (auto& s : segs) CHECK((s.bytes <= 256 || s.last_seq == s.first_seq));

  for (std::uint64_t seq : {1u, 17u, 40u}) {
    auto r = j->read(seq);
    REQUIRE(r);
    CHECK(as_chars(r->payload) == payload_for(seq));
    CHECK(r->timestamp_ns == std::int64_t(seq));
  }
  CHECK(!j->read(41));

  std::vector<std::uint64_t> seen;
  j->for_each(10, 20, [&](const record_view& r) { seen.push_back(r.seq); });
  REQUIRE(seen.size() == 11);
  CHECK(seen.front() == 10);
  CHECK(seen.back() == 20);

  j->drop_below(25);
  CHECK(j->first_seq() <= 25);
  CHECK(j->first_seq() > 1);
  CHECK(dir->list().size() == j->segments().size());
  const std::uint64_t kept_from = j->first_seq();
  j.reset();

  collected c;
  auto again = Journal::open(dir, {256, 1 << 20}, 1, kept_from + 1, c.visitor());
  CHECK(c.seqs.front() == kept_from + 1);
  CHECK(c.seqs.back() == 40);
  CHECK(again->next_seq() == 41);
  again->drop_below(1000);  // never drops the segment being written
  CHECK(again->segments().size() == 1);
  CHECK(again->append(0, "more") == 41);
}

TEST_CASE("a torn tail at every byte position of the last record is cut back to the prefix") {
  test::temp_dir tmp;
  auto ends = write_records(tmp / "orig", 3);
  const auto seg = f::segment_file_name(1);
  const auto original = test::read_file(tmp / "orig" / seg);
  REQUIRE(original.size() == ends[2]);

  for (std::uint64_t cut = ends[1]; cut < ends[2]; ++cut) {
    for (bool zero_filled : {false, true}) {
      CAPTURE(cut);
      CAPTURE(zero_filled);
      auto bytes_left = std::vector<std::uint8_t>(original.begin(), original.begin() + cut);
      if (zero_filled) bytes_left.resize(original.size(), 0);  // preallocated space never written
      test::copy_dir(tmp / "orig", tmp / "cut");
      test::write_file(tmp / "cut" / seg, bytes_left);

      collected c;
      std::vector<std::string> logs;
      auto j = Journal::open(open_posix_directory(tmp / "cut"), {1 << 20, 1 << 20}, 1, 1,
                             c.visitor(), [&](const std::string& m) { logs.push_back(m); });
      if (zero_filled &&
          std::all_of(original.begin() + cut, original.end(), [](auto b) { return b == 0; }))
        continue;  // only zero padding was cut, and zero filling restored the record exactly
      REQUIRE(c.seqs.size() == 2);
      CHECK(c.seqs == std::vector<std::uint64_t>{1, 2});
      // Pure zero fill after the last record is preallocated space and is kept; anything
      // else past it is cut.
      const bool pure_zero_fill = zero_filled && cut == ends[1];
      CHECK(std::filesystem::file_size(tmp / "cut" / seg) ==
            (pure_zero_fill ? original.size() : ends[1]));
      if (cut > ends[1] && !zero_filled) {
        CHECK(j->recovery().torn_bytes == cut - ends[1]);
        CHECK(j->recovery().torn_offset == ends[1]);
        REQUIRE(logs.size() == 1);
        CHECK(logs[0].find("offset " + std::to_string(ends[1])) != std::string::npos);
      }
      // The journal goes on from the prefix.
      CHECK(j->append(99, "after") == 3);
      j->sync_through(3);
      j.reset();
      collected again;
      open_journal(open_posix_directory(tmp / "cut"), &again);
      CHECK(again.seqs == std::vector<std::uint64_t>{1, 2, 3});
      CHECK(again.payloads.back() == "after");
    }
  }
}

TEST_CASE("a flipped byte in a middle record fails open naming the file and the record's offset") {
  test::temp_dir tmp;
  auto ends = write_records(tmp / "orig", 3);
  const auto seg = f::segment_file_name(1);
  const std::uint64_t start = ends[0];  // record 2 starts where record 1 ends
  for (std::uint64_t at = start; at < ends[1]; ++at) {
    CAPTURE(at);
    test::copy_dir(tmp / "orig", tmp / "bad");
    test::flip_byte(tmp / "bad" / seg, at);
    auto e = open_error([&] { open_journal(open_posix_directory(tmp / "bad")); });
    CHECK(e.code() == errc::corrupt_record);
    std::string msg = e.what();
    CHECK(msg.find((tmp / "bad" / seg).string()) != std::string::npos);
    CHECK(msg.find("offset " + std::to_string(start)) != std::string::npos);
    // Nothing was cut: the damaged file is left for repair.
    CHECK(std::filesystem::file_size(tmp / "bad" / seg) == ends[2]);
  }
}

TEST_CASE("preallocated zero fill is written into, kept across reopen, and cut at a roll") {
  test::temp_dir tmp;
  auto dir = open_posix_directory(tmp.path());
  const auto first = tmp / f::segment_file_name(1);
  {
    auto j = open_journal(dir, nullptr, 4096, 1024);
    for (int i = 1; i <= 5; ++i) j->append(i, payload_for(i));
    j->sync_through(5);
    CHECK(std::filesystem::file_size(first) == 1024 + 32);  // header + one chunk ahead
    CHECK(j->segments().back().bytes < 1024);
  }
  collected c;
  {
    auto j = open_journal(dir, &c, 4096, 1024);
    CHECK(c.seqs.size() == 5);
    CHECK(j->recovery().torn_bytes == 0);                   // zero fill is not a torn tail
    CHECK(std::filesystem::file_size(first) == 1024 + 32);  // and is kept
    for (int i = 6; i <= 200; ++i) j->append(i, payload_for(i));
    j->sync_through(200);
    REQUIRE(j->segments().size() > 1);
    // The closed segment was cut back to its last record.
    CHECK(std::filesystem::file_size(first) == j->segments().front().bytes);
  }
  collected all;
  open_journal(dir, &all, 4096, 1024);
  CHECK(all.seqs.size() == 200);
  CHECK(all.payloads.back() == payload_for(200));
}

TEST_CASE("a damaged segment header fails open") {
  test::temp_dir tmp;
  write_records(tmp / "j", 2);
  test::flip_byte(tmp / "j" / f::segment_file_name(1), 17);
  auto e = open_error([&] { open_journal(open_posix_directory(tmp / "j")); });
  CHECK(e.code() == errc::corrupt_segment);
  CHECK(std::string(e.what()).find("offset 0") != std::string::npos);
}

TEST_CASE("sequence gaps are corruption") {
  SUBCASE("a missing segment in the middle") {
    auto dir = make_memory_directory();
    {
      auto j = open_journal(dir, nullptr, 128);
      for (int i = 1; i <= 10; ++i) j->append(i, payload_for(i));
      j->sync_through(10);
      REQUIRE(j->segments().size() >= 3);
      dir->remove(j->segments()[1].file);
    }
    auto e = open_error([&] { open_journal(dir, nullptr, 128); });
    CHECK(e.code() == errc::sequence_gap);
    CHECK(std::string(e.what()).find("journal before it ends at") != std::string::npos);
  }
  SUBCASE("a skipped sequence number inside a segment") {
    auto dir = make_memory_directory();
    f::segment_header h;
    h.salt = 1234;
    bytes seg = f::encode_segment_header(h);
    f::append_record(seg, h.salt, 1, 0, as_bytes("one"));
    const auto second = seg.size();
    f::append_record(seg, h.salt, 3, 0, as_bytes("three"));
    dir->open(f::segment_file_name(1), Directory::open_mode::create_new)->append(seg);
    auto e = open_error([&] { open_journal(dir); });
    CHECK(e.code() == errc::sequence_gap);
    CHECK(std::string(e.what()).find("offset " + std::to_string(second)) != std::string::npos);
    CHECK(std::string(e.what()).find("expected 2") != std::string::npos);
  }
}

TEST_CASE("segments left over from an interrupted drop are removed when the snapshot covers them") {
  // A power cut during drop_below() after the unlink of segment 2 reached the disk but not the
  // unlink of segment 1 (directory changes may persist in any order before a directory sync).
  auto dir = make_memory_directory();
  std::vector<segment_info> before;
  {
    auto j = open_journal(dir, nullptr, 128);
    for (int i = 1; i <= 10; ++i) j->append(i, payload_for(i));
    j->sync_through(10);
    before = j->segments();
    REQUIRE(before.size() >= 3);
    dir->remove(before[1].file);
  }
  const std::uint64_t resume = before[2].first_seq;
  SUBCASE("the snapshot covers everything before the gap: the leftover is removed") {
    journal_options o;
    o.segment_bytes = 128;
    o.max_record_bytes = 1 << 20;
    o.preallocate_bytes = 0;
    collected got;
    std::vector<std::string> logged;
    auto j = Journal::open(dir, o, resume, resume, got.visitor(),
                           [&](const std::string& m) { logged.push_back(m); });
    CHECK(j->segments().front().first_seq == resume);
    CHECK(got.seqs.front() == resume);
    CHECK(got.seqs.back() == 10);
    const auto names = dir->list();
    CHECK(std::find(names.begin(), names.end(), before[0].file) == names.end());
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("interrupted drop") != std::string::npos);
  }
  SUBCASE("records before the gap are still needed: a sequence gap") {
    journal_options o;
    o.segment_bytes = 128;
    o.max_record_bytes = 1 << 20;
    auto e = open_error([&] { Journal::open(dir, o, resume - 1, resume - 1, {}); });
    CHECK(e.code() == errc::sequence_gap);
  }
}

TEST_CASE(
    "a last segment whose creation never finished is removed; a torn non-last one is corruption") {
  test::temp_dir tmp;
  auto dir = open_posix_directory(tmp.path());
  {
    auto j = open_journal(dir, nullptr, 128);
    for (int i = 1; i <= 6; ++i) j->append(i, payload_for(i));
    j->sync_through(6);
  }
  auto segs = test::files_with_prefix(tmp.path(), "journal-");
  REQUIRE(segs.size() >= 2);
  SUBCASE("unfinished creation") {
    test::write_file(tmp / f::segment_file_name(7), std::vector<std::uint8_t>(10, 0));
    collected c;
    auto j = open_journal(dir, &c, 128);
    CHECK(c.seqs.size() == 6);
    CHECK(!std::filesystem::exists(tmp / f::segment_file_name(7)));
    CHECK(j->append(7, "seven") == 7);
  }
  SUBCASE("torn record in a segment that is not the last") {
    auto first = test::read_file(segs[0]);
    first.resize(first.size() - 3);
    test::write_file(segs[0], first);
    auto e = open_error([&] { open_journal(dir, nullptr, 128); });
    CHECK(e.code() == errc::corrupt_record);
    CHECK(std::string(e.what()).find("not the last segment") != std::string::npos);
  }
}

TEST_CASE("options and record sizes are checked") {
  auto dir = make_memory_directory();
  auto e = open_error([&] { Journal::open(dir, {0, 1024}, 1, 1, {}); });
  CHECK(e.code() == errc::invalid_option);
  CHECK(std::string(e.what()).find("segment_bytes") != std::string::npos);
  auto j = Journal::open(dir, {1 << 20, 16}, 1, 1, {});
  CHECK_THROWS_AS(j->append(0, std::string(17, 'a')), error);
  CHECK(!j->failed());
  CHECK(j->append(0, "fits") == 1);
}

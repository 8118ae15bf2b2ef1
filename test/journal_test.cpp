// The journal: append and replay, segment rolls, recovery of torn tails, and corruption that
// must fail open with the file and offset.
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <thread>

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
      if (cut > ends[1]) {
        // The log tells the unfinished write (up to its last nonzero byte) from zero fill.
        std::uint64_t written = 0;
        for (std::uint64_t i = ends[1]; i < cut; ++i)
          if (bytes_left[i] != 0) written = i + 1 - ends[1];
        const std::uint64_t fill = bytes_left.size() - ends[1] - written;
        REQUIRE(logs.size() == 1);
        CHECK(logs[0].find(std::to_string(written) + " bytes of an unfinished write, " +
                           std::to_string(fill) + " bytes of zero fill") != std::string::npos);
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

namespace {

// A hand-built segment whose records carry chosen run indexes, to put a failure at a chosen
// record. `runs` gives the run index of records 1, 2, ...; returns the segment and the offset
// of each record.
struct built_segment {
  bytes data;
  std::vector<std::size_t> offsets;
};
built_segment build_segment(const std::vector<std::uint32_t>& runs) {
  f::segment_header h;
  h.salt = 4321;
  built_segment b{f::encode_segment_header(h), {}};
  for (std::size_t i = 0; i < runs.size(); ++i) {
    b.offsets.push_back(b.data.size());
    f::append_record(b.data, h.salt, i + 1, 0, as_bytes(payload_for(i + 1)), runs[i]);
  }
  return b;
}

// Zeroes the record header at `offset`, as a lost sector of an unsynced write leaves it.
void lose_header(built_segment& b, std::size_t offset) {
  std::fill_n(b.data.begin() + static_cast<std::ptrdiff_t>(offset), f::record_header_size, 0);
}

std::shared_ptr<Directory> holding_segment(const bytes& data) {
  auto dir = make_memory_directory();
  dir->open(f::segment_file_name(1), Directory::open_mode::create_new)->append(data);
  return dir;
}

}  // namespace

TEST_CASE("a missing part of the last unsynced write is cut; damage before its start is not") {
  // Records 1-2 form one synced run, records 3-5 the unsynced run a power cut interrupted
  // (run indexes 0 1 | 0 1 2). Sectors of that last write may persist in any combination.
  SUBCASE("a hole inside the last run: cut there, records 1-3 kept, nothing acknowledged lost") {
    auto b = build_segment({0, 1, 0, 1, 2});
    lose_header(b, b.offsets[3]);
    collected got;
    auto j = open_journal(holding_segment(b.data), &got);
    CHECK(got.seqs == std::vector<std::uint64_t>{1, 2, 3});
    CHECK(j->recovery().torn_offset == b.offsets[3]);
    CHECK(j->recovery().torn_reason.find("same unsynced write") != std::string::npos);
    CHECK(j->next_seq() == 4);
  }
  SUBCASE("the last run's first record lost, later ones kept: cut at its start") {
    auto b = build_segment({0, 1, 0, 1, 2});
    lose_header(b, b.offsets[2]);
    collected got;
    auto j = open_journal(holding_segment(b.data), &got);
    CHECK(got.seqs == std::vector<std::uint64_t>{1, 2});
    CHECK(j->recovery().torn_offset == b.offsets[2]);
  }
  SUBCASE("a damaged payload inside the last run is cut too") {
    auto b = build_segment({0, 1, 0, 1, 2});
    b.data[b.offsets[3] + f::record_header_size] ^= 0x20;
    collected got;
    open_journal(holding_segment(b.data), &got);
    CHECK(got.seqs == std::vector<std::uint64_t>{1, 2, 3});
  }
  SUBCASE("a hole in an earlier, synced run is corruption") {
    auto b = build_segment({0, 1, 0, 1, 2});
    lose_header(b, b.offsets[1]);
    auto e = open_error([&] { open_journal(holding_segment(b.data)); });
    CHECK(e.code() == errc::corrupt_record);
    CHECK(std::string(e.what()).find("offset " + std::to_string(b.offsets[1])) !=
          std::string::npos);
    CHECK(std::string(e.what()).find("written after a later sync") != std::string::npos);
  }
  SUBCASE("records that each started their own run (every record synced): a hole is corruption") {
    auto b = build_segment({0, 0, 0, 0, 0});
    lose_header(b, b.offsets[3]);
    CHECK(open_error([&] { open_journal(holding_segment(b.data)); }).code() ==
          errc::corrupt_record);
  }
  SUBCASE("a later record whose run reaches back past the failure's run is corruption") {
    auto b = build_segment({0, 1, 0, 1, 4});  // record 5 claims a run that began at record 1
    lose_header(b, b.offsets[3]);
    CHECK(open_error([&] { open_journal(holding_segment(b.data)); }).code() ==
          errc::corrupt_record);
  }
  SUBCASE("among intact records, a run index that neither continues the run nor starts one") {
    auto b = build_segment({0, 0, 2});
    auto e = open_error([&] { open_journal(holding_segment(b.data)); });
    CHECK(e.code() == errc::corrupt_record);
    CHECK(std::string(e.what()).find("run index 2") != std::string::npos);
  }
  SUBCASE("a segment's first record cannot continue a run of the segment before") {
    auto b = build_segment({1});
    CHECK(open_error([&] { open_journal(holding_segment(b.data)); }).code() ==
          errc::corrupt_record);
  }
}

TEST_CASE("the committer numbers runs: one group write is one run, a sync starts the next") {
  auto dir = make_memory_directory();
  {
    journal_options o;
    o.sync = sync_policy::interval(std::chrono::hours(1));
    o.preallocate_bytes = 0;
    auto j = Journal::open(dir, o, 1, 1, {});
    for (int i = 1; i <= 3; ++i) j->flush_through(j->append(i, payload_for(i)));
    j->sync_through(3);
    for (int i = 4; i <= 5; ++i) j->flush_through(j->append(i, payload_for(i)));
  }
  bytes data = read_all(*dir->open(f::segment_file_name(1), Directory::open_mode::read));
  std::string why;
  auto header = f::decode_segment_header(data, why);
  REQUIRE(header);
  std::vector<std::uint32_t> runs;
  for (std::size_t pos = f::segment_header_size; pos < data.size();) {
    auto r = f::decode_record(byte_view(data).subspan(pos), header->salt, 1 << 20);
    if (r.status == f::record_status::end_of_log) break;
    REQUIRE(f::header_verified(r));
    runs.push_back(r.run_index);
    pos += r.size;
  }
  // Under `interval` the three writes before the sync are one run; so are the two after it.
  CHECK(runs == std::vector<std::uint32_t>{0, 1, 2, 0, 1});
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

TEST_CASE("for_each fails loudly unless it delivered exactly the records asked for") {
  auto dir = make_memory_directory();
  auto j = open_journal(dir, nullptr, 256);
  for (int i = 1; i <= 40; ++i) j->append(i, payload_for(i));
  j->sync_through(40);
  const auto segs = j->segments();
  REQUIRE(segs.size() > 5);
  std::vector<std::uint64_t> seen;
  auto collect = [&](const record_view& r) { seen.push_back(r.seq); };
  auto message = [](const error& e) { return std::string(e.what()); };

  SUBCASE("a range past what was written is clamped, not an error") {
    j->for_each(35, 100, collect);
    CHECK(seen == std::vector<std::uint64_t>{35, 36, 37, 38, 39, 40});
  }
  SUBCASE("the start was dropped") {
    j->drop_below(25);
    REQUIRE(j->first_seq() > 10);
    auto e = open_error([&] { j->for_each(10, 30, collect); });
    CHECK(e.code() == errc::sequence_gap);
    CHECK(message(e).find("records 10..30") != std::string::npos);
    CHECK(message(e).find("where 10 was expected") != std::string::npos);
    CHECK(message(e).find(j->segments().front().file + " at offset") != std::string::npos);
    j->drop_below(1000);
    e = open_error([&] { j->for_each(1, 2, collect); });
    CHECK(e.code() == errc::sequence_gap);
    CHECK(message(e).find("records 1..2 found none of them; record 1 is missing (the journal holds "
                          "only " +
                          j->segments().front().file + ")") != std::string::npos);
    CHECK(!j->read(10));  // read() of a dropped record is still just "not there"
  }
  SUBCASE("a segment in the middle lost its records") {
    const auto& middle = segs[2];
    dir->open(middle.file, Directory::open_mode::write)->truncate(f::segment_header_size);
    auto e = open_error([&] { j->for_each(1, 40, collect); });
    CHECK(e.code() == errc::sequence_gap);
    CHECK(message(e).find(segs[3].file + " at offset " + std::to_string(f::segment_header_size)) !=
          std::string::npos);
    CHECK(message(e).find("record " + std::to_string(segs[3].first_seq) + " where " +
                          std::to_string(middle.first_seq) + " was expected") != std::string::npos);
  }
  SUBCASE("the end is missing") {
    const auto& last = segs.back();
    REQUIRE(last.last_seq == 40);
    dir->open(last.file, Directory::open_mode::write)->truncate(f::segment_header_size);
    auto e = open_error([&] { j->for_each(30, 40, collect); });
    CHECK(e.code() == errc::sequence_gap);
    CHECK(message(e).find("found only 30.." + std::to_string(last.first_seq - 1)) !=
          std::string::npos);
    CHECK(message(e).find("record " + std::to_string(last.first_seq) + " is missing") !=
          std::string::npos);
  }
}

TEST_CASE("a journal with no segment left though records before start_seq were expected says so") {
  auto dir = make_memory_directory();
  journal_options o;
  o.segment_bytes = 256;
  std::vector<std::string> logged;
  auto log = [&](const std::string& m) { logged.push_back(m); };
  SUBCASE("a fresh journal starting at 1 is not missing anything") {
    auto j = Journal::open(dir, o, 1, 1, {}, log);
    CHECK(!j->recovery().segments_missing);
    CHECK(logged.empty());
  }
  SUBCASE("no segment at all") {
    auto j = Journal::open(dir, o, 11, 11, {}, log);
    CHECK(j->recovery().segments_missing);
    REQUIRE(logged.size() == 1);
    CHECK(logged[0].find("no journal segment in <memory> reaches sequence number 10") !=
          std::string::npos);
    CHECK(logged[0].find("records after 10 are lost") != std::string::npos);
    CHECK(j->append(0, "eleven") == 11);
  }
  SUBCASE("only an unfinished segment, before start_seq") {
    dir->open(f::segment_file_name(5), Directory::open_mode::create_new)->append(bytes(10, 0));
    auto j = Journal::open(dir, o, 11, 11, {}, log);
    CHECK(j->recovery().segments_missing);
    REQUIRE(logged.size() == 2);  // the unfinished segment removed, then the missing records
    CHECK(logged[1].find("reaches sequence number 10") != std::string::npos);
    CHECK(j->next_seq() == 11);
  }
}

TEST_CASE("on_safe calls back from the committer once the record is durable, exactly once") {
  test::temp_dir tmp;
  auto j = open_journal(open_posix_directory(tmp.path()));
  const auto caller = std::this_thread::get_id();
  std::promise<void> all_done;
  std::atomic<int> calls{0};
  std::atomic<bool> ok{true};
  const int n = 50;
  for (int i = 1; i <= n; ++i) {
    const std::uint64_t seq = j->append(i, payload_for(i));
    j->on_safe(seq, [&, seq, i](std::exception_ptr e) {
      // In append order, and only once the record is durable (policy `always`).
      if (e || j->durable_seq() < seq || calls.load() + 1 != i) ok = false;
      if (++calls == n) all_done.set_value();
    });
  }
  REQUIRE(all_done.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  CHECK(ok.load());
  // Already durable: called back at once, on this thread.
  std::thread::id ran_on;
  j->on_safe(n, [&](std::exception_ptr e) {
    if (!e) ran_on = std::this_thread::get_id();
  });
  CHECK(ran_on == caller);
  // Never appended: the close fails it with errc::closed.
  std::exception_ptr left;
  j->on_safe(n + 5, [&](std::exception_ptr e) { left = e; });
  j->close();
  REQUIRE(left);
  CHECK_THROWS_AS(std::rethrow_exception(left), error);
  CHECK(calls.load() == n);
}

// The journal as a replication log (issue 11, replication_log.hpp): raw records read from any
// sequence number and followed as the journal grows, appended verbatim by a replica, and a
// replica's journal cut back with the cut records moved aside.
#include <doctest/doctest.h>

#include <atomic>
#include <thread>

#include <prevalent/error.hpp>
#include <prevalent/format.hpp>
#include <prevalent/journal.hpp>
#include <prevalent/replication_log.hpp>

#include "support.hpp"

using namespace prevalent;
namespace f = prevalent::format;
using clock_type = std::chrono::steady_clock;

namespace {

bool has_code(const prevalent::error& e, errc c) { return e.code() == make_error_code(c); }

journal_options options_for(std::uint64_t epoch, bool encrypted, std::uint64_t segment_bytes) {
  journal_options o;
  o.epoch = epoch;
  o.segment_bytes = segment_bytes;
  o.preallocate_bytes = 0;
  if (encrypted) o.encryption_key = test::test_key();
  return o;
}

struct plain_record {
  std::uint64_t seq;
  std::int64_t timestamp_ns;
  std::uint64_t epoch;
  std::string payload;
  bool operator==(const plain_record&) const = default;
};

std::unique_ptr<Journal> open_journal(const std::filesystem::path& dir, const journal_options& o,
                                      std::vector<plain_record>* seen = nullptr) {
  return Journal::open(open_posix_directory(dir), o, 1, 1, [seen](const record_view& r) {
    if (seen) seen->push_back({r.seq, r.timestamp_ns, r.epoch, std::string(as_chars(r.payload))});
  });
}

std::string payload_for(std::uint64_t i) {
  return "{\"cmd\":\"p\",\"v\":1,\"args\":" + std::to_string(i) + std::string(i % 7, ' ') + "}";
}

std::vector<raw_record> read_all(const Journal& j, std::uint64_t from) {
  RecordStream stream(j, from);
  std::vector<raw_record> out;
  while (stream.read(out, 64) > 0) {
  }
  return out;
}

}  // namespace

TEST_CASE("RecordStream: raw records from any sequence number, across rolls and epochs") {
  for (bool encrypted : {false, true}) {
    CAPTURE(encrypted);
    test::temp_dir tmp;
    auto j = open_journal(tmp.path(), options_for(3, encrypted, 300));
    for (std::uint64_t i = 1; i <= 20; ++i) {
      if (i == 12) j->set_epoch(4);
      j->append(static_cast<std::int64_t>(i) * 10, payload_for(i));
    }
    j->sync_through(20);
    REQUIRE(j->segments().size() > 3);  // rolls by size and by epoch
    for (std::uint64_t from : {1, 7, 12, 20, 21}) {
      CAPTURE(from);
      const auto got = read_all(*j, from);
      REQUIRE(got.size() == 21 - from);
      for (std::size_t k = 0; k < got.size(); ++k) {
        const std::uint64_t seq = from + k;
        CHECK(got[k].seq == seq);
        CHECK(got[k].timestamp_ns == static_cast<std::int64_t>(seq) * 10);
        CHECK(got[k].epoch == (seq < 12 ? 3u : 4u));
        CHECK(got[k].codec == codec::json);
        CHECK(got[k].sealed == encrypted);
        const std::string stored(got[k].payload.begin(), got[k].payload.end());
        if (encrypted) {
          // Sealed as stored: nonce, ciphertext, tag; the plaintext nowhere in it.
          CHECK(stored.size() == payload_for(seq).size() + f::sealed_overhead);
          CHECK(stored.find("\"cmd\"") == std::string::npos);
        } else {
          CHECK(stored == payload_for(seq));
        }
      }
    }
  }
}

TEST_CASE("RecordStream follows the journal: wait() wakes on a sync, false once closed") {
  test::temp_dir tmp;
  auto j = open_journal(tmp.path(), options_for(1, false, 1 << 20));
  j->append(1, payload_for(1));
  j->sync_through(1);
  RecordStream stream(*j, 1);
  std::vector<raw_record> got;
  CHECK(stream.read(got) == 1);
  // Nothing durable after record 1: a deadline already passed returns false at once.
  CHECK_FALSE(stream.wait(clock_type::now()));
  CHECK(stream.read(got) == 0);
  std::atomic<bool> woke{false};
  std::thread follower([&] {
    // Generous deadline: it only bounds the test if the wakeup is lost.
    woke = stream.wait(clock_type::now() + std::chrono::seconds(60));
  });
  j->append(2, payload_for(2));
  j->sync_through(2);
  follower.join();
  CHECK(woke);
  REQUIRE(stream.read(got) == 1);
  CHECK(got.back().seq == 2);
  // A follower waiting when the journal closes is released with false.
  std::atomic<bool> result{true};
  std::thread closing([&] { result = stream.wait(clock_type::now() + std::chrono::seconds(60)); });
  std::this_thread::yield();
  j->close();
  closing.join();
  CHECK_FALSE(result);
}

TEST_CASE("RecordStream: too far behind once the records were dropped; ahead is a gap") {
  test::temp_dir tmp;
  auto j = open_journal(tmp.path(), options_for(1, false, 200));
  for (std::uint64_t i = 1; i <= 12; ++i) j->append(0, payload_for(i));
  j->sync_through(12);
  j->drop_below(8);
  REQUIRE(j->first_seq() > 1);
  try {
    RecordStream s(*j, 1);
    FAIL("a stream from a dropped record was made");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::too_far_behind));
    CHECK(std::string(e.what()).find("record 1 was already dropped") != std::string::npos);
  }
  CHECK(read_all(*j, j->first_seq()).size() == 13 - j->first_seq());
  try {
    RecordStream s(*j, 14);
    FAIL("a stream past the end was made");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::sequence_gap));
  }
}

TEST_CASE("append_raw: a replica stores the primary's records verbatim and reads them back") {
  for (bool encrypted : {false, true}) {
    CAPTURE(encrypted);
    test::temp_dir primary_dir, replica_dir;
    auto primary = open_journal(primary_dir.path(), options_for(3, encrypted, 400));
    std::vector<plain_record> want;
    for (std::uint64_t i = 1; i <= 15; ++i) {
      if (i == 9) primary->set_epoch(5);
      primary->append(static_cast<std::int64_t>(i), payload_for(i));
      want.push_back({i, static_cast<std::int64_t>(i), i < 9 ? 3u : 5u, payload_for(i)});
    }
    primary->sync_through(15);
    const auto stored = read_all(*primary, 1);
    {
      // The replica writes with epoch 0 of its own: it only stores what it is sent.
      auto replica = open_journal(replica_dir.path(), options_for(0, encrypted, 400));
      RecordStream stream(*primary, 1);
      std::vector<raw_record> batch;
      while (stream.read(batch, 100) > 0) {
        CHECK(replica->append_raw(batch) == batch.back().seq);
        CHECK(replica->durable_seq() == batch.back().seq);  // durable when it returns
        batch.clear();
      }
      // Same payload bytes as stored on the primary (sealed ones too), same epochs.
      const auto copied = read_all(*replica, 1);
      REQUIRE(copied.size() == stored.size());
      for (std::size_t k = 0; k < copied.size(); ++k) {
        CHECK(copied[k].payload == stored[k].payload);
        CHECK(copied[k].epoch == stored[k].epoch);
        CHECK(copied[k].timestamp_ns == stored[k].timestamp_ns);
      }
      std::vector<std::uint64_t> epochs;
      for (const auto& s : replica->segments()) epochs.push_back(s.epoch);
      CHECK(epochs.front() == 3);
      CHECK(epochs.back() == 5);
    }
    // Reopened (and, encrypted, authenticated and opened with the key): the primary's records.
    std::vector<plain_record> seen;
    auto again = open_journal(replica_dir.path(), options_for(5, encrypted, 400), &seen);
    CHECK(seen == want);
  }
}

TEST_CASE("append_raw refuses a gap, a lower epoch and mismatched encryption, queueing nothing") {
  test::temp_dir tmp;
  auto j = open_journal(tmp.path(), options_for(0, false, 1 << 20));
  auto rec = [](std::uint64_t seq, std::uint64_t epoch, bool sealed = false) {
    const std::string p = payload_for(seq);
    return raw_record{seq, 0, epoch, codec::json, sealed, bytes(p.begin(), p.end())};
  };
  j->append_raw({rec(1, 2), rec(2, 2)});
  auto refused = [&](std::vector<raw_record> batch, errc code, const std::string& words) {
    try {
      j->append_raw(batch);
      FAIL("accepted");
    } catch (const prevalent::error& e) {
      CHECK(has_code(e, code));
      CHECK_MESSAGE(std::string(e.what()).find(words) != std::string::npos, e.what());
    }
    CHECK(j->last_appended() == 2);  // nothing of the batch was queued
  };
  refused({rec(3, 2), rec(5, 2)}, errc::sequence_gap, "record 5 does not follow");
  refused({rec(2, 2)}, errc::sequence_gap, "record 2 does not follow");
  refused({rec(3, 2), rec(4, 1)}, errc::stale_epoch, "epoch 1, older");
  refused({rec(3, 2, true)}, errc::encryption_mismatch, "no encryption key");
  // A local append after records of epoch 2 by a journal of epoch 0 is refused too.
  try {
    j->append(0, "x");
    FAIL("accepted");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::stale_epoch));
  }
  CHECK(j->append_raw({rec(3, 4)}) == 3);
  CHECK(j->segments().back().epoch == 4);
}

TEST_CASE("cut_journal: cut back to a sequence number, the cut records and snapshots aside") {
  test::temp_dir tmp;
  const auto dir = tmp.path() / "store";
  store_options o;
  o.segment_bytes = 400;  // several segments
  o.epoch = 2;
  std::string state_at_12;
  {
    test::LedgerStore s(dir, o);
    for (int i = 1; i <= 20; ++i) {
      s.execute(test::Deposit{"a", i});
      if (i == 8 || i == 15) s.snapshot();
      if (i == 12) state_at_12 = test::dump_state(s);
    }
    // While the store has the directory, the cut is refused.
    try {
      cut_journal(open_posix_directory(dir), 12, o);
      FAIL("cut an open store");
    } catch (const prevalent::error& e) {
      CHECK(has_code(e, errc::directory_in_use));
    }
  }
  const auto before = test::files_with_prefix(dir, "journal-");
  try {
    cut_journal(open_posix_directory(dir), 21, o);
    FAIL("cut past the end");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::invalid_option));
  }
  const cut_report r = cut_journal(open_posix_directory(dir), 12, o);
  CHECK(r.records_cut == 8);
  CHECK(std::find(r.moved.begin(), r.moved.end(), f::snapshot_file_name(15) + ".cut-12") !=
        r.moved.end());
  for (const auto& name : r.moved) CHECK(std::filesystem::exists(dir / name));
  // Nothing deleted: every original segment is still there under its name or moved aside.
  for (const auto& p : before) {
    const std::string name = p.filename().string();
    CHECK((std::filesystem::exists(p) || std::filesystem::exists(dir / (name + ".cut-12"))));
  }
  {
    test::LedgerStore s(dir, o);
    CHECK(s.last_sequence() == 12);
    CHECK(test::dump_state(s) == state_at_12);
    // It goes on from 13 (as a replica following a new primary would).
    s.execute(test::Deposit{"b", 1});
    CHECK(s.last_sequence() == 13);
  }
  // The moved-aside copy of the partly cut segment still holds records 13.. verbatim: read as
  // a segment, it verifies through record 13 at least.
  bool found_13 = false;
  for (const auto& name : r.moved) {
    if (name.rfind("journal-", 0) != 0) continue;
    const auto data = test::read_file(dir / name);
    std::string why;
    auto h = f::decode_segment_header(data, why);
    REQUIRE_MESSAGE(h, why);
    for (std::size_t pos = h->size(); pos < data.size();) {
      auto rec = f::decode_record(byte_view(data).subspan(pos), h->salt, 1 << 20);
      if (rec.status != f::record_status::ok) break;
      found_13 = found_13 || rec.seq == 13;
      pos += rec.size;
    }
  }
  CHECK(found_13);
}

TEST_CASE("cut_journal refuses a cut nothing left could rebuild the state for") {
  test::temp_dir tmp;
  const auto dir = tmp.path() / "store";
  store_options o;
  o.segment_bytes = 300;
  o.keep_snapshots = 1;
  {
    test::LedgerStore s(dir, o);
    for (int i = 1; i <= 20; ++i) s.execute(test::Deposit{"a", i});
    s.snapshot();  // at 20: the journal before it is dropped
  }
  const auto segs_before = test::files_with_prefix(dir, "journal-").size();
  try {
    cut_journal(open_posix_directory(dir), 3, o);
    FAIL("cut below the journal's start");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::no_usable_snapshot));
    CHECK(std::string(e.what()).find("copy a snapshot from the primary") != std::string::npos);
  }
  // Refused before anything was moved.
  CHECK(test::files_with_prefix(dir, "journal-").size() == segs_before);
  test::LedgerStore s(dir, o);
  CHECK(s.last_sequence() == 20);
}

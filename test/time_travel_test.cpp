// Time travel (issue 10, part 4): a StoreView rebuilds the state after a given record or at a
// given time from snapshots, journal and archive, without the directory lock and without
// writing anything; reachable_sequences() says which states can be rebuilt; the archive keeps
// what retention drops, copied durably before the deletion.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <prevalent/testing/fault_injecting_directory.hpp>

#include "support.hpp"

namespace fs = std::filesystem;
using prevalent::as_of;
using prevalent::errc;

namespace {

using LedgerView = test::LedgerStore::view;

// A Directory that fails every operation that could change anything (creating, opening for
// write, removing, renaming, syncing, locking) and counts the attempts: what a directory the
// process may not write looks like, even to root (for whom chmod -w changes nothing).
class ReadOnlyDirectory final : public prevalent::Directory {
 public:
  explicit ReadOnlyDirectory(std::shared_ptr<prevalent::Directory> inner)
      : inner_(std::move(inner)) {}
  std::string path() const override { return inner_->path(); }
  std::vector<std::string> list() const override { return inner_->list(); }
  std::unique_ptr<prevalent::File> open(const std::string& name, open_mode mode) override {
    if (mode != open_mode::read) refuse("open for writing " + name);
    return inner_->open(name, mode);  // read mode: O_RDONLY, its writes fail too
  }
  void remove(const std::string& name) override { refuse("remove " + name); }
  void rename(const std::string& from, const std::string&) override { refuse("rename " + from); }
  void sync() override { refuse("sync"); }
  std::unique_ptr<prevalent::DirectoryLock> lock(const std::string& name) override {
    refuse("lock " + name);
  }
  const std::vector<std::string>& attempts() const { return attempts_; }

 private:
  [[noreturn]] void refuse(const std::string& what) {
    attempts_.push_back(what);
    throw prevalent::error(std::make_error_code(std::errc::read_only_file_system), what);
  }
  std::shared_ptr<prevalent::Directory> inner_;
  std::vector<std::string> attempts_;
};

// Every file of `dir` with its bytes.
std::map<std::string, std::vector<std::uint8_t>> contents(const fs::path& dir) {
  std::map<std::string, std::vector<std::uint8_t>> out;
  for (const auto& e : fs::directory_iterator(dir))
    out[e.path().filename().string()] = test::read_file(e.path());
  return out;
}

// The ledger after records 1..k of deposits of i to "acct" + (i % 3): computed without a store.
test::Ledger expected_ledger(std::uint64_t k) {
  test::Ledger l;
  for (std::uint64_t i = 1; i <= k; ++i) {
    l.balances["acct" + std::to_string(i % 3)] += static_cast<std::int64_t>(i);
    l.applied.push_back(i);
  }
  return l;
}

std::string json_of(const test::Ledger& l) { return nlohmann::json(l).dump(); }

std::string view_json(const LedgerView& v) {
  return v.query([](const test::Ledger& l) { return nlohmann::json(l).dump(); });
}

// Runs deposit i for i in from..to.
void deposits(test::LedgerStore& store, std::uint64_t from, std::uint64_t to) {
  for (std::uint64_t i = from; i <= to; ++i)
    store.execute(test::Deposit{"acct" + std::to_string(i % 3), static_cast<std::int64_t>(i)});
}

bool has_code(const prevalent::error& e, errc c) { return e.code() == c; }

}  // namespace

TEST_CASE("time travel: every state from the empty one to the last, by sequence number") {
  test::temp_dir dir;
  {
    test::LedgerStore store(dir.path());
    deposits(store, 1, 10);
    store.snapshot();  // snapshot-10
    deposits(store, 11, 20);
    store.snapshot();  // snapshot-20
    deposits(store, 21, 25);
  }
  const auto range = prevalent::reachable_sequences(dir.path());
  CHECK(range.first == 0);  // the journal still reaches back to record 1 (one segment)
  CHECK(range.last == 25);
  for (std::uint64_t k = 0; k <= 25; ++k) {
    INFO("as of record ", k);
    LedgerView then(dir.path(), as_of{.seq = k});
    CHECK(then.sequence() == k);
    CHECK(view_json(then) == json_of(expected_ledger(k)));
    // The newest snapshot at or before k, then the records after it.
    const std::uint64_t base = k >= 20 ? 20 : k >= 10 ? 10 : 0;
    CHECK(then.report().snapshot_seq == base);
    CHECK(then.report().replayed == k - base);
    CHECK(then.report().snapshot.empty() == (base == 0));
  }
  // Past the end: not reachable, and the message says what is.
  try {
    LedgerView beyond(dir.path(), as_of{.seq = 26});
    FAIL("record 26 does not exist");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::not_reachable));
    CHECK(std::string(e.what()).find("0..25") != std::string::npos);
  }
}

TEST_CASE("time travel: by time, the state after the last record stamped at or before it") {
  test::temp_dir dir;
  std::vector<std::chrono::system_clock::time_point> after;  // after[i]: once record i+1 is done
  const auto before_all = std::chrono::system_clock::now();
  {
    test::LedgerStore store(dir.path());
    for (std::uint64_t i = 1; i <= 12; ++i) {
      deposits(store, i, i);
      after.push_back(std::chrono::system_clock::now());
      if (i == 6) store.snapshot();
    }
  }
  // Record i is stamped before after[i-1] and record i+1 after it.
  for (std::uint64_t i = 1; i <= 12; ++i) {
    INFO("at the time record ", i, " was done");
    LedgerView then(dir.path(), as_of{.time = after[i - 1]});
    CHECK(then.sequence() == i);
    // The same answer without the types, for tools.
    CHECK(prevalent::sequence_as_of(dir.path(), as_of{.time = after[i - 1]}) == i);
    CHECK(view_json(then) == json_of(expected_ledger(i)));
    CHECK(then.report().snapshot_seq == (i >= 6 ? 6 : 0));
    CHECK(then.report().timestamp_ns <=
          std::chrono::duration_cast<std::chrono::nanoseconds>(after[i - 1].time_since_epoch())
              .count());
  }
  LedgerView empty(dir.path(), as_of{.time = before_all});
  CHECK(empty.sequence() == 0);
  CHECK(prevalent::sequence_as_of(dir.path(), as_of{.time = before_all}) == 0);
  CHECK(prevalent::sequence_as_of(dir.path(), as_of{.seq = 12}) == 12);
  CHECK_THROWS_AS(prevalent::sequence_as_of(dir.path(), as_of{.seq = 13}), prevalent::error);
  CHECK(view_json(empty) == json_of(test::Ledger{}));

  // Exactly one of seq and time.
  CHECK_THROWS_AS(LedgerView(dir.path(), as_of{}), prevalent::error);
  CHECK_THROWS_AS(LedgerView(dir.path(), as_of{.seq = 1, .time = before_all}), prevalent::error);
}

TEST_CASE("time travel writes nothing: no lock, no torn-tail cut, no temp cleanup, no segment") {
  test::temp_dir dir;
  prevalent::store_options o;
  o.preallocate_bytes = 0;  // the segment ends at its last record, so the torn tail is ours
  {
    test::LedgerStore store(dir.path(), o);
    deposits(store, 1, 5);
    store.snapshot();
    deposits(store, 6, 9);
  }
  // What an open would change: a torn tail to cut, a temp file of an interrupted snapshot.
  auto segments = test::files_with_prefix(dir.path(), "journal-");
  REQUIRE(segments.size() == 1);
  {
    auto bytes = test::read_file(segments[0]);
    bytes.insert(bytes.end(), 11, 0x5a);  // a record header cut short: an unfinished write
    test::write_file(segments[0], bytes);
  }
  test::write_file(dir / (prevalent::format::snapshot_file_name(7) + ".tmp"), {1, 2, 3});
  const auto before = contents(dir.path());

  // While a store holds the directory lock, on a directory that refuses every write.
  test::temp_dir copy;  // the files as they are now: the live store below changes them
  for (const auto& [name, bytes] : before) test::write_file(copy / name, bytes);
  const auto copied = contents(copy.path());
  test::LedgerStore live(dir.path(), o);  // holds the lock, cuts the torn tail

  auto read_only =
      std::make_shared<ReadOnlyDirectory>(prevalent::open_posix_directory(copy.path()));
  LedgerView then(read_only, as_of{.seq = 9});
  CHECK(then.sequence() == 9);
  CHECK(view_json(then) == json_of(expected_ledger(9)));
  LedgerView mid(read_only, as_of{.seq = 3});
  CHECK(view_json(mid) == json_of(expected_ledger(3)));
  CHECK(prevalent::reachable_sequences(read_only).last == 9);
  CHECK(read_only->attempts().empty());
  CHECK(contents(copy.path()) == copied);  // torn tail and temp file still there, byte for byte

  // By path, beside the live store that holds the lock: the view needs no lock.
  LedgerView beside(dir.path(), as_of{.seq = 9});
  CHECK(view_json(beside) == json_of(expected_ledger(9)));

  // A missing directory is not created.
  CHECK_THROWS_AS(LedgerView(dir / "nothing-here", as_of{.seq = 0}), prevalent::error);
  CHECK_FALSE(fs::exists(dir / "nothing-here"));
}

TEST_CASE("time travel: a damaged snapshot is skipped for an older one, as on open") {
  test::temp_dir dir;
  {
    test::LedgerStore store(dir.path());
    deposits(store, 1, 4);
    store.snapshot();
    deposits(store, 5, 8);
    store.snapshot();
  }
  std::vector<std::string> log;
  prevalent::store_options o;
  o.log = [&log](const std::string& line) { log.push_back(line); };
  test::flip_byte(dir / prevalent::format::snapshot_file_name(8), 60);  // in its payload
  LedgerView then(dir.path(), as_of{.seq = 8}, o);
  CHECK(then.report().snapshot_seq == 4);
  CHECK(then.report().replayed == 4);
  CHECK(view_json(then) == json_of(expected_ledger(8)));
  REQUIRE(log.size() == 1);
  CHECK(log[0].find("skipping snapshot") != std::string::npos);
}

TEST_CASE("time travel: retention bounds the reachable range; the archive extends it") {
  test::temp_dir dir, archive_dir;
  const fs::path archive = archive_dir / "archive";  // created by the store
  prevalent::store_options o;
  o.segment_bytes = 512;  // a few records per segment
  o.keep_snapshots = 1;
  std::map<std::string, std::vector<std::uint8_t>> seen;  // every file the store ever had
  auto remember = [&] {
    for (auto& [name, bytes] : contents(dir.path()))
      if (name != "LOCK") seen[name] = bytes;
  };
  for (bool archived : {false, true}) {
    CAPTURE(archived);
    fs::remove_all(dir.path());
    fs::create_directories(dir.path());
    o.archive_directory = archived ? archive : fs::path();
    {
      test::LedgerStore store(dir.path(), o);
      for (std::uint64_t i = 1; i <= 40; i += 10) {
        deposits(store, i, i + 9);
        remember();
        store.snapshot();
        remember();
      }
    }
    const auto range = prevalent::reachable_sequences(dir.path(), o);
    CHECK(range.last == 40);
    if (!archived) {
      // Only the newest snapshot (40) and the journal from its segment on are left.
      CHECK(range.first > 0);
      CHECK(range.first <= 40);
      CHECK_FALSE(fs::exists(archive));
      try {
        LedgerView lost(dir.path(), as_of{.seq = 5}, o);
        FAIL("record 5 was dropped");
      } catch (const prevalent::error& e) {
        CHECK(has_code(e, errc::not_reachable));
      }
      // A time in the message is ISO 8601 UTC, not nanoseconds since the epoch.
      try {
        LedgerView lost(
            dir.path(),
            as_of{.time = std::chrono::system_clock::time_point{} + std::chrono::hours(1)}, o);
        FAIL("the records of 1970 were dropped");
      } catch (const prevalent::error& e) {
        CHECK(has_code(e, errc::not_reachable));
        CHECK_MESSAGE(std::string(e.what()).find("the state at 1970-01-01T01:00:00.000000000Z") !=
                          std::string::npos,
                      e.what());
      }
      continue;
    }
    CHECK(range.first == 0);
    // Every dropped file is in the archive, byte for byte as the store wrote it; no temp file.
    std::size_t archived_files = 0;
    for (const auto& [name, bytes] : contents(archive)) {
      INFO(name);
      CHECK_FALSE(fs::exists(dir / name));
      REQUIRE(seen.count(name) == 1);
      // A segment may have grown after this copy was taken; the archived one is final.
      if (name.rfind("snapshot-", 0) == 0) CHECK(bytes == seen[name]);
      CHECK(name.find(".tmp") == std::string::npos);
      ++archived_files;
    }
    CHECK(archived_files >= 4);  // segments and the snapshots 10, 20, 30
    for (std::uint64_t k : {0, 1, 5, 10, 15, 33, 40}) {
      INFO("as of record ", k);
      LedgerView then(dir.path(), as_of{.seq = k}, o);
      CHECK(view_json(then) == json_of(expected_ledger(k)));
    }
    // The snapshot used for record 15 is the archived snapshot 10.
    LedgerView fifteen(dir.path(), as_of{.seq = 15}, o);
    CHECK(fifteen.report().snapshot_seq == 10);
    CHECK(fifteen.report().snapshot.find(archive.string()) == 0);
    // Without the archive option, the same directory reaches less.
    CHECK(prevalent::reachable_sequences(dir.path()).first > 0);
  }
}

TEST_CASE("archive: each file is durable in the archive before the store deletes it") {
  // The fault rule runs before every mutating operation on the store directory: at each
  // removal it checks that the archive already holds the whole file under its final name.
  test::temp_dir dir, archive_dir;
  auto disk = std::make_shared<prevalent::testing::FaultInjectingDirectory>(
      prevalent::open_posix_directory(dir.path()));
  prevalent::store_options o;
  o.segment_bytes = 512;
  o.keep_snapshots = 1;
  o.archive_directory = archive_dir.path();
  std::vector<std::string> checked, problems;
  using op = prevalent::testing::FaultInjectingDirectory::op;
  disk->fail_when([&](op kind, const std::string& name) {
    if (kind != op::remove || name == "LOCK" || name.ends_with(".tmp")) return false;
    const fs::path copy = archive_dir / name;
    if (!fs::exists(copy) || test::read_file(copy) != test::read_file(dir / name))
      problems.push_back(name);
    if (fs::exists(archive_dir / (name + ".tmp"))) problems.push_back(name + ".tmp");
    checked.push_back(name);
    return false;
  });
  {
    test::LedgerStore store(disk, o);
    for (std::uint64_t i = 1; i <= 30; i += 10) {
      deposits(store, i, i + 9);
      store.snapshot();
    }
  }
  CHECK(problems.empty());
  CHECK(checked.size() >= 3);  // snapshots 10 and 20 and at least one segment

  // A removal that fails after the copy (a crash between the two leaves the same): the file is
  // in both places, the store opens, and the next snapshot archives it again and deletes it.
  disk->fail_when([](op kind, const std::string& name) {
    return kind == op::remove && name.rfind("journal-", 0) == 0;
  });
  {
    test::LedgerStore store(disk, o);
    deposits(store, 31, 40);
    CHECK_THROWS(store.snapshot());
    auto both = test::files_with_prefix(dir.path(), "journal-");
    bool duplicated = false;
    for (const auto& seg : both)
      if (fs::exists(archive_dir / seg.filename()))
        duplicated =
            duplicated || test::read_file(archive_dir / seg.filename()) == test::read_file(seg);
    CHECK(duplicated);
  }
  disk->fail_when({});
  test::write_file(archive_dir / (prevalent::format::segment_file_name(999) + ".tmp"), {1});
  {
    test::LedgerStore store(disk, o);  // the open removes the archive's leftover temp file
    CHECK_FALSE(fs::exists(archive_dir / (prevalent::format::segment_file_name(999) + ".tmp")));
    deposits(store, 41, 50);
    store.snapshot();
  }
  LedgerView all(dir.path(), as_of{.seq = 50}, o);
  CHECK(view_json(all) == json_of(expected_ledger(50)));
  LedgerView first(dir.path(), as_of{.seq = 1}, o);
  CHECK(view_json(first) == json_of(expected_ledger(1)));

  // The archive may not be the store's own directory.
  prevalent::store_options same = o;
  same.archive_directory = dir.path();
  try {
    test::LedgerStore store(dir.path(), same);
    FAIL("the store's own directory is no archive");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::invalid_option));
  }
}

TEST_CASE("archive: a power cut at any deletion finds the file whole in the archive (R3)") {
  // Store and archive on simulated disks. Before each deletion of a segment or snapshot, the
  // archive's disk is cut in several ways (unsynced writes torn, directory changes since its
  // last sync kept in any combination): the file must be there with every byte. Without the
  // copy's sync or the archive directory's sync, some cut loses it.
  using disk_t = prevalent::testing::FaultInjectingDirectory;
  auto disk = std::make_shared<disk_t>();
  auto archive = std::make_shared<disk_t>();
  prevalent::store_options o;
  o.segment_bytes = 512;
  o.keep_snapshots = 1;
  o.archive = archive;
  std::vector<std::string> problems;
  std::size_t checked = 0;
  disk->fail_when([&](disk_t::op kind, const std::string& name) {
    if (kind != disk_t::op::remove || name.ends_with(".tmp") ||
        !(name.rfind("journal-", 0) == 0 || name.rfind("snapshot-", 0) == 0))
      return false;
    const auto original =
        prevalent::read_all(*disk->open(name, prevalent::Directory::open_mode::read));
    for (std::uint64_t seed = 0; seed < 8; ++seed) {
      const auto image = archive->power_loss(seed);
      const auto names = image->list();
      if (std::find(names.begin(), names.end(), name) == names.end())
        problems.push_back(name + " missing after power cut " + std::to_string(seed));
      else if (prevalent::read_all(*image->open(name, prevalent::Directory::open_mode::read)) !=
               original)
        problems.push_back(name + " torn after power cut " + std::to_string(seed));
    }
    ++checked;
    return false;
  });
  {
    test::LedgerStore store(disk, o);
    for (std::uint64_t i = 1; i <= 30; i += 10) {
      deposits(store, i, i + 9);
      store.snapshot();
    }
  }
  CHECK(problems.empty());
  CHECK(checked >= 3);
  LedgerView first(disk, as_of{.seq = 1}, o);
  CHECK(view_json(first) == json_of(expected_ledger(1)));
}

namespace {
// The store directory as a view beside a running store may see it: it lists files that are
// gone when opened (the store dropped them, after copying them to its archive, in between).
class StaleListing final : public prevalent::Directory {
 public:
  StaleListing(std::shared_ptr<prevalent::Directory> inner, std::vector<std::string> dropped)
      : inner_(std::move(inner)), dropped_(std::move(dropped)) {}
  std::string path() const override { return inner_->path(); }
  std::vector<std::string> list() const override {
    auto names = inner_->list();
    names.insert(names.end(), dropped_.begin(), dropped_.end());
    return names;
  }
  std::unique_ptr<prevalent::File> open(const std::string& name, open_mode mode) override {
    if (std::find(dropped_.begin(), dropped_.end(), name) != dropped_.end()) {
      ++gone_;
      throw prevalent::error(std::make_error_code(std::errc::no_such_file_or_directory),
                             "open " + describe(name));
    }
    return inner_->open(name, mode);
  }
  void remove(const std::string& name) override { inner_->remove(name); }
  void rename(const std::string& from, const std::string& to) override { inner_->rename(from, to); }
  void sync() override { inner_->sync(); }
  std::unique_ptr<prevalent::DirectoryLock> lock(const std::string& name) override {
    return inner_->lock(name);
  }
  int gone() const { return gone_; }

 private:
  std::shared_ptr<prevalent::Directory> inner_;
  std::vector<std::string> dropped_;
  int gone_ = 0;
};
}  // namespace

TEST_CASE(
    "time travel beside a running store: a file dropped after the listing is read from "
    "the archive") {
  test::temp_dir dir, archive;
  prevalent::store_options o;
  o.segment_bytes = 512;
  o.keep_snapshots = 1;
  o.archive_directory = archive.path();
  {
    test::LedgerStore store(dir.path(), o);
    for (std::uint64_t i = 1; i <= 30; i += 10) {
      deposits(store, i, i + 9);
      store.snapshot();
    }
  }
  std::vector<std::string> dropped;
  for (const auto& [name, bytes] : contents(archive.path())) dropped.push_back(name);
  REQUIRE(dropped.size() >= 3);
  auto stale = std::make_shared<StaleListing>(prevalent::open_posix_directory(dir.path()), dropped);
  LedgerView early(stale, as_of{.seq = 12}, o);  // snapshot 10 and segments: all "gone"
  CHECK(view_json(early) == json_of(expected_ledger(12)));
  CHECK(early.report().snapshot_seq == 10);
  CHECK(stale->gone() >= 2);  // the snapshot and at least one segment were looked for first
  // Without the archive the gone files cannot be read: the error says which.
  CHECK_THROWS_AS(LedgerView(stale, as_of{.seq = 12}), prevalent::error);
}

TEST_CASE("time travel on an encrypted store needs its key") {
  test::temp_dir dir;
  prevalent::store_options o;
  o.encryption_key = test::test_key();
  {
    test::LedgerStore store(dir.path(), o);
    deposits(store, 1, 6);
    store.snapshot();
    deposits(store, 7, 9);
  }
  LedgerView then(dir.path(), as_of{.seq = 7}, o);
  CHECK(view_json(then) == json_of(expected_ledger(7)));
  try {
    LedgerView no_key(dir.path(), as_of{.seq = 7});
    FAIL("opened without the key");
  } catch (const prevalent::error& e) {
    CHECK(has_code(e, errc::encryption_mismatch));
  }
}

// The determinism check (issue 10, part 5): replaying the journal from an older snapshot must
// rebuild a newer one exactly; a command that reads the clock, and one that iterates an
// unordered container into its result, are caught and named; a deterministic store passes.
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <unordered_set>
#include <vector>

#include "support.hpp"

namespace {

// A state whose serialization is canonical (the set is written sorted), but whose unordered set
// iterates in an order that depends on how it was built: inserted one by one by commands, or
// loaded from a snapshot.
struct Tagged {
  std::unordered_set<std::string> tags;
  std::vector<std::string> picked;
  std::vector<std::int64_t> stamps;
  std::int64_t total = 0;
};
void to_json(nlohmann::json& j, const Tagged& t) {
  std::vector<std::string> sorted(t.tags.begin(), t.tags.end());
  std::sort(sorted.begin(), sorted.end());
  j = {{"tags", sorted}, {"picked", t.picked}, {"stamps", t.stamps}, {"total", t.total}};
}
void from_json(const nlohmann::json& j, Tagged& t) {
  t.tags.clear();
  for (const auto& tag : j.at("tags")) t.tags.insert(tag.get<std::string>());
  j.at("picked").get_to(t.picked);
  j.at("stamps").get_to(t.stamps);
  j.at("total").get_to(t.total);
}

struct AddTag {
  static constexpr std::string_view name = "add_tag";
  std::string tag;
  void apply(Tagged& t, const prevalent::Context&) const { t.tags.insert(tag); }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(AddTag, tag)
};
struct Add {
  static constexpr std::string_view name = "add";
  std::int64_t by = 0;
  void apply(Tagged& t, const prevalent::Context&) const { t.total += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, by)
};
// Deterministic: the smallest tag, whatever the set's order.
struct PickSmallest {
  static constexpr std::string_view name = "pick_smallest";
  void apply(Tagged& t, const prevalent::Context&) const {
    t.picked.push_back(*std::min_element(t.tags.begin(), t.tags.end()));
  }
};
// Deterministic: the time comes from the context.
struct StampContext {
  static constexpr std::string_view name = "stamp_context";
  void apply(Tagged& t, const prevalent::Context& ctx) const {
    t.stamps.push_back(ctx.timestamp_ns());
  }
};
// NOT deterministic: the first tag in the set's iteration order.
struct PickFirst {
  static constexpr std::string_view name = "pick_first";
  void apply(Tagged& t, const prevalent::Context&) const { t.picked.push_back(*t.tags.begin()); }
};
// NOT deterministic: reads the clock.
struct StampClock {
  static constexpr std::string_view name = "stamp_clock";
  std::string note;
  void apply(Tagged& t, const prevalent::Context&) const {
    t.stamps.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(StampClock, note)
};

using TaggedStore =
    prevalent::Store<Tagged, AddTag, Add, PickSmallest, StampContext, PickFirst, StampClock>;

// Tags inserted in this order by commands iterate in another order than the same tags loaded
// from a snapshot (inserted sorted): checked, so that the test below tests what it claims.
const std::vector<std::string> tag_order = [] {
  std::vector<std::string> tags;
  for (int i = 29; i >= 0; --i) tags.push_back("tag-" + std::to_string(i));
  return tags;
}();

// The live history common to the tests: tags added, a snapshot, deterministic commands, then
// `odd` (if any) at record `odd_seq`, more deterministic commands, a snapshot.
template <class Odd>
std::uint64_t write_history(const std::filesystem::path& dir, const Odd* odd) {
  TaggedStore store(dir);
  for (const auto& tag : tag_order) store.execute(AddTag{tag});
  store.snapshot();  // record 30
  for (int i = 1; i <= 5; ++i) store.execute(Add{i});
  store.execute(PickSmallest{});
  store.execute(StampContext{});
  std::uint64_t odd_seq = 0;
  if (odd) {
    store.execute(*odd);
    odd_seq = store.last_sequence();
  }
  for (int i = 6; i <= 9; ++i) store.execute(Add{i});
  store.execute(PickSmallest{});
  store.snapshot();
  return odd_seq;
}

}  // namespace

TEST_CASE("determinism check: a deterministic store passes, between any two snapshots") {
  test::temp_dir dir;
  write_history<Add>(dir.path(), nullptr);
  auto report = prevalent::check_determinism<TaggedStore>(dir.path());
  INFO(report.summary);
  CHECK(report.checked);
  CHECK(report.consistent);
  CHECK(report.from_seq == 30);
  CHECK(report.to_seq == 42);
  CHECK(report.replayed == 12);
  CHECK(report.expected_digest == report.replayed_digest);
  CHECK(report.expected_digest.size() == 32);
  CHECK_FALSE(report.first_divergence);
  // The expected digest is the one the newer snapshot's header records (version 3).
  {
    const auto file = test::read_file(report.to_snapshot);
    std::string why;
    const auto header = prevalent::format::decode_snapshot_header(file, why);
    REQUIRE(header);
    REQUIRE(header->digest);
    CHECK(report.expected_digest == prevalent::to_hex(*header->digest));
  }

  // From the empty state (the journal reaches back to record 1) to either snapshot.
  for (std::uint64_t to : {30, 42}) {
    auto from_empty = prevalent::check_determinism<Tagged, AddTag, Add, PickSmallest, StampContext,
                                                   PickFirst, StampClock>(
        dir.path(), prevalent::determinism_options{.from = 0, .to = to});
    INFO(from_empty.summary);
    CHECK(from_empty.consistent);
    CHECK(from_empty.replayed == to);
  }
  // A snapshot that does not exist is named as such.
  CHECK_THROWS_AS(prevalent::check_determinism<TaggedStore>(
                      dir.path(), prevalent::determinism_options{.from = 12}),
                  prevalent::error);
}

TEST_CASE("determinism check: a command that reads the clock is caught and named") {
  test::temp_dir dir;
  const StampClock odd{"reads the clock"};
  const std::uint64_t odd_seq = write_history(dir.path(), &odd);
  auto report = prevalent::check_determinism<TaggedStore>(dir.path());
  INFO(report.summary);
  CHECK(report.checked);
  CHECK_FALSE(report.consistent);
  CHECK(report.expected_digest != report.replayed_digest);
  REQUIRE(report.first_divergence);
  CHECK(report.first_divergence->seq == odd_seq);
  CHECK(report.first_divergence->name == "stamp_clock");
  CHECK(report.first_divergence->args == nlohmann::json{{"note", "reads the clock"}});
  CHECK(report.first_divergence->difference.find("/stamps/1") != std::string::npos);
  // The same difference as JSON (the tool's --json prints it as such, not as a string).
  const auto& patch = report.first_divergence->patch;
  REQUIRE(patch.is_array());
  REQUIRE_FALSE(patch.empty());
  CHECK(patch[0].at("path").get<std::string>().starts_with("/stamps/1"));
  CHECK(report.first_divergence->patch_operations >= patch.size());
  CHECK(report.summary.find("record " + std::to_string(odd_seq) + " \"stamp_clock\"") !=
        std::string::npos);
  // Without narrowing: the mismatch alone.
  auto quick = prevalent::check_determinism<TaggedStore>(
      dir.path(), prevalent::determinism_options{.narrow = false});
  CHECK_FALSE(quick.consistent);
  CHECK_FALSE(quick.first_divergence);
}

TEST_CASE("determinism check: a command that iterates an unordered container is caught") {
  // The precondition: the live set (inserted in tag_order) and the set loaded from a snapshot
  // begin with different tags.
  {
    Tagged live;
    for (const auto& tag : tag_order) live.tags.insert(tag);
    const Tagged loaded = nlohmann::json(live).get<Tagged>();
    REQUIRE(*live.tags.begin() != *loaded.tags.begin());
  }
  test::temp_dir dir;
  const PickFirst odd;
  const std::uint64_t odd_seq = write_history(dir.path(), &odd);
  auto report = prevalent::check_determinism<TaggedStore>(dir.path());
  INFO(report.summary);
  CHECK(report.checked);
  CHECK_FALSE(report.consistent);
  // The replay from snapshot 30 (the set loaded from it) picked another tag than the live
  // store; narrowing replays from the empty state, where the set is built as live, and
  // applies each record to that state and to a copy loaded from its serialization.
  CHECK(report.narrowed_from == 0);
  REQUIRE(report.first_divergence);
  CHECK(report.first_divergence->seq == odd_seq);
  CHECK(report.first_divergence->name == "pick_first");
  CHECK(report.first_divergence->difference.find("/picked/1") != std::string::npos);
}

namespace {
// A state whose serialization is NOT canonical: nlohmann writes an unordered_set in its
// iteration order.
struct Loose {
  std::unordered_set<std::string> tags;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Loose, tags)
};
struct LooseTag {
  static constexpr std::string_view name = "tag";
  std::string tag;
  void apply(Loose& l, const prevalent::Context&) const { l.tags.insert(tag); }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(LooseTag, tag)
};
}  // namespace

TEST_CASE("determinism check: a serialization that is not canonical is named as the cause") {
  // The precondition: a round trip changes the bytes, also after one more tag.
  {
    Loose live;
    for (const auto& tag : tag_order) live.tags.insert(tag);
    Loose loaded = nlohmann::json(live).get<Loose>();
    REQUIRE(nlohmann::json(live).dump() != nlohmann::json(loaded).dump());
    live.tags.insert("last");
    loaded.tags.insert("last");
    REQUIRE(nlohmann::json(live).dump() != nlohmann::json(loaded).dump());
  }
  test::temp_dir dir;
  {
    prevalent::Store<Loose, LooseTag> store(dir.path());
    for (const auto& tag : tag_order) store.execute(LooseTag{tag});
    store.snapshot();
    store.execute(LooseTag{"last"});
    store.snapshot();
  }
  auto report = prevalent::check_determinism<Loose, LooseTag>(dir.path());
  INFO(report.summary);
  CHECK_FALSE(report.consistent);
  CHECK_FALSE(report.first_divergence);
  REQUIRE(report.non_canonical_after);
  CHECK(*report.non_canonical_after == 30);
  CHECK(report.summary.find("not canonical") != std::string::npos);
}

TEST_CASE("determinism check: the ledger, through an archive, after retention dropped files") {
  test::temp_dir dir, archive;
  prevalent::store_options o;
  o.segment_bytes = 512;
  o.keep_snapshots = 1;
  o.archive_directory = archive.path();
  {
    test::LedgerStore store(dir.path(), o);
    for (int round = 0; round < 4; ++round) {
      for (int i = 0; i < 8; ++i) store.execute(test::Deposit{"a" + std::to_string(i % 3), i + 1});
      store.execute(test::Transfer{"a0", "a1", 1});
      store.snapshot();
    }
  }
  // The store directory holds one snapshot; the older ones are in the archive.
  CHECK(test::files_with_prefix(dir.path(), "snapshot-").size() == 1);
  auto report = prevalent::check_determinism<test::LedgerStore>(dir.path(), {}, o);
  INFO(report.summary);
  CHECK(report.checked);
  CHECK(report.consistent);
  CHECK(report.from_seq == 27);
  CHECK(report.to_seq == 36);
  // Without the archive: only one snapshot, and the journal no longer starts at record 1.
  auto alone = prevalent::check_determinism<test::LedgerStore>(dir.path());
  CHECK_FALSE(alone.checked);
  CHECK(alone.summary.find("nothing to compare") != std::string::npos);
}

TEST_CASE("determinism check: encrypted and compressed snapshots (the digest sealed inside)") {
  test::temp_dir dir;
  prevalent::store_options o;
  o.encryption_key = test::test_key();
  o.compress_snapshots = true;  // the suite is built with zstd, as policy_test assumes
  {
    TaggedStore store(dir.path(), o);
    for (const auto& tag : tag_order) store.execute(AddTag{tag});
    store.snapshot();
    store.execute(PickSmallest{});
    store.execute(StampClock{"sealed"});
    store.execute(Add{3});
    store.snapshot();
  }
  auto report = prevalent::check_determinism<TaggedStore>(dir.path(), {}, o);
  INFO(report.summary);
  CHECK(report.checked);
  CHECK_FALSE(report.consistent);
  REQUIRE(report.first_divergence);
  CHECK(report.first_divergence->seq == 32);
  CHECK(report.first_divergence->name == "stamp_clock");
  // Without the key nothing is read.
  CHECK_THROWS_AS(prevalent::check_determinism<TaggedStore>(dir.path()), prevalent::error);
}

TEST_CASE("determinism check: narrowing needs the history before the set was built (a limit)") {
  // The unordered-iteration command again, on a store whose journal no longer reaches back to
  // the records that built the set: narrowing starts from snapshot 30, whose set is loaded like
  // the replay's, so it cannot name the command (the mismatch is still reported, with the
  // advice to keep more history). With the archive the journal reaches back to record 1 and
  // the command is named.
  for (bool archived : {false, true}) {
    CAPTURE(archived);
    test::temp_dir dir, archive;
    prevalent::store_options o;
    o.segment_bytes = 512;  // segments before snapshot 30 are dropped (or archived)
    if (archived) o.archive_directory = archive.path();
    std::uint64_t odd_seq = 0;
    {
      TaggedStore store(dir.path(), o);
      for (const auto& tag : tag_order) store.execute(AddTag{tag});
      store.snapshot();
      store.execute(PickFirst{});
      odd_seq = store.last_sequence();
      store.execute(Add{1});
      store.snapshot();
    }
    auto report = prevalent::check_determinism<TaggedStore>(dir.path(), {}, o);
    INFO(report.summary);
    CHECK(report.checked);
    CHECK_FALSE(report.consistent);
    if (archived) {
      CHECK(report.narrowed_from == 0);
      REQUIRE(report.first_divergence);
      CHECK(report.first_divergence->seq == odd_seq);
    } else {
      CHECK(report.narrowed_from == 30);
      CHECK_FALSE(report.first_divergence);
      CHECK(report.summary.find("keep more history") != std::string::npos);
    }
  }
}

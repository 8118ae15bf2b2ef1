// Schema evolution (README, "Changing a command or the state"): stores written by the "v1"
// inventory types (test/schema/v1_types.hpp; fixtures in test/fixtures/schema/, made by
// test/schema/make_v1_fixtures.cpp) opened by the "v2" types below: a renamed command (an
// alias), an added field with a default, a removed field, a changed field type (command
// version 2 with upgrade()), and a renamed state member (State::version 2 with upgrade()).
// Each fixture is a snapshot plus records after it, so both paths are read. Then what must
// fail clearly: versions newer than the program's, older ones without an upgrade(), and names
// claimed twice (test/compile_fail/ for the compile-time half).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include <prevalent/determinism.hpp>

#include "schema/v1_types.hpp"
#include "support.hpp"
#include "thrown_error.hpp"

using namespace prevalent;
using test::thrown_error;

namespace {

const std::filesystem::path fixtures = std::filesystem::path(PREVALENT_FIXTURES) / "schema";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

namespace v2 {

struct Inventory {
  static constexpr int version = 2;
  std::map<std::string, std::int64_t> stock;        // was "items"
  std::map<std::string, std::int64_t> price_cents;  // was "prices", in euros (a double)
  std::vector<std::string> notes;
  // Version 1 called the stock "items" and kept prices in euros.
  static void upgrade(nlohmann::json& state, int from_version) {
    if (from_version < 2) {
      state["stock"] = std::move(state.at("items"));
      state.erase("items");
      nlohmann::json cents = nlohmann::json::object();
      for (auto& [item, euros] : state.at("prices").items())
        cents[item] = std::llround(euros.get<double>() * 100);
      state["price_cents"] = std::move(cents);
      state.erase("prices");
    }
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Inventory, stock, price_cents, notes)
};

struct StockItem {  // was "add_item"
  static constexpr std::string_view name = "stock_item";
  static constexpr std::array<std::string_view, 1> aliases{"add_item"};
  std::string item;
  std::int64_t qty = 0;
  void apply(Inventory& s, const Context&) const { s.stock[item] += qty; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(StockItem, item, qty)
};

struct Note {  // gained "author"; records without it read as "unknown"
  static constexpr std::string_view name = "note";
  std::string item;
  std::string text;
  std::string author = "unknown";
  void apply(Inventory& s, const Context&) const {
    s.notes.push_back(item + ": " + text + " (" + author + ")");
  }
  friend void to_json(nlohmann::json& j, const Note& n) {
    j = {{"item", n.item}, {"text", n.text}, {"author", n.author}};
  }
  friend void from_json(const nlohmann::json& j, Note& n) {
    j.at("item").get_to(n.item);
    j.at("text").get_to(n.text);
    n.author = j.value("author", "unknown");
  }
};

struct Discard {  // lost "reason": from_json ignores it in old records
  static constexpr std::string_view name = "discard";
  std::string item;
  std::int64_t qty = 0;
  void apply(Inventory& s, const Context&) const { s.stock[item] -= qty; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Discard, item, qty)
};

struct SetPrice {  // version 2: the price in cents, an integer, instead of euros
  static constexpr std::string_view name = "set_price";
  static constexpr int version = 2;
  std::string item;
  std::int64_t cents = 0;
  static void upgrade(nlohmann::json& args, int from_version) {
    if (from_version < 2) {
      args["cents"] = std::llround(args.at("price").get<double>() * 100);
      args.erase("price");
    }
  }
  void apply(Inventory& s, const Context&) const { s.price_cents[item] = cents; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(SetPrice, item, cents)
};

using InventoryStore = Store<Inventory, StockItem, Note, Discard, SetPrice>;

}  // namespace v2

// Opens a copy of fixture `name` with the v2 types; `check` sees the state. Then takes a new
// command and a snapshot, reopens, and checks that the state went on from there.
std::string open_fixture(const std::string& name, test::temp_dir& tmp) {
  test::copy_dir(fixtures / name, tmp / "store");
  v2::InventoryStore store(tmp / "store");
  CHECK(store.recovery().replayed > 0);  // the snapshot was used, records after it replayed
  return store.query([](const v2::Inventory& s) { return nlohmann::json(s).dump(); });
}

template <class F>
void check_state(const std::filesystem::path& dir, F&& check) {
  v2::InventoryStore store(dir);
  store.query([&](const v2::Inventory& s) {
    check(s);
    return 0;
  });
}

}  // namespace

TEST_CASE("a renamed command replays its old records by its alias; new records use the name") {
  test::temp_dir tmp;
  open_fixture("renamed_command", tmp);
  check_state(tmp / "store", [](const v2::Inventory& s) {
    CHECK(s.stock == std::map<std::string, std::int64_t>{{"apple", 15}, {"pear", 4}, {"plum", 1}});
  });
  {
    v2::InventoryStore store(tmp / "store");
    store.execute(v2::StockItem{"pear", 6});
  }
  check_state(tmp / "store", [](const v2::Inventory& s) { CHECK(s.stock.at("pear") == 10); });
  // Records keep the name they were written with; the new one has the new name.
  const auto segments = test::files_with_prefix(tmp / "store", "journal-");
  std::string journal;
  for (auto& p : segments) {
    auto data = test::read_file(p);
    journal.append(data.begin(), data.end());
  }
  CHECK(contains(journal, R"({"cmd":"add_item","v":1,"args":{"item":"plum","qty":1}})"));
  CHECK(contains(journal, R"({"cmd":"stock_item","v":1,"args":{"item":"pear","qty":6}})"));
}

TEST_CASE("an added field takes its default in old records") {
  test::temp_dir tmp;
  open_fixture("added_field", tmp);
  check_state(tmp / "store", [](const v2::Inventory& s) {
    CHECK(s.notes == std::vector<std::string>{"apple: from the north orchard",
                                              "pear: ripe in a week (unknown)",
                                              "apple: sold out soon (unknown)"});
  });
}

TEST_CASE("a removed field in old records is ignored") {
  test::temp_dir tmp;
  open_fixture("removed_field", tmp);
  check_state(tmp / "store", [](const v2::Inventory& s) { CHECK(s.stock.at("apple") == 5); });
}

TEST_CASE("a changed field type: version 1 records go through the command's upgrade()") {
  test::temp_dir tmp;
  open_fixture("changed_type", tmp);
  check_state(tmp / "store", [](const v2::Inventory& s) {
    // Before the snapshot: through State::upgrade; after it: through SetPrice::upgrade.
    CHECK(s.price_cents ==
          std::map<std::string, std::int64_t>{{"apple", 40}, {"pear", 120}, {"plum", 205}});
  });
}

TEST_CASE("a renamed state member: a version 1 snapshot goes through State::upgrade()") {
  test::temp_dir tmp;
  open_fixture("renamed_state_member", tmp);
  check_state(tmp / "store", [](const v2::Inventory& s) {
    CHECK(s.stock == std::map<std::string, std::int64_t>{{"apple", 9}});
    CHECK(s.price_cents.at("apple") == 50);
    CHECK(s.notes == std::vector<std::string>{"apple: keep cool"});
  });
  // The determinism check does not compare a version 1 snapshot with the version 2 state it
  // would serialize (their bytes differ whatever the commands did): it says so.
  const auto before = check_determinism<v2::InventoryStore>(tmp / "store");
  INFO(before.summary);
  CHECK_FALSE(before.checked);
  CHECK(before.summary.find("state version 1") != std::string::npos);
  // A snapshot now records state version 2 and loads without the upgrade.
  {
    v2::InventoryStore store(tmp / "store");
    store.snapshot();
  }
  check_state(tmp / "store", [](const v2::Inventory& s) { CHECK(s.stock.at("apple") == 9); });
  // From the version 1 snapshot (upgraded on load) to the version 2 one: compared, equal.
  const auto after = check_determinism<v2::InventoryStore>(tmp / "store");
  INFO(after.summary);
  CHECK(after.checked);
  CHECK(after.consistent);
}

namespace {
// v2's state without an upgrade(): cannot read a version 1 snapshot.
struct NoUpgradeInventory {
  static constexpr int version = 2;
  std::map<std::string, std::int64_t> stock;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(NoUpgradeInventory, stock)
};
struct NoUpgradeAdd {
  static constexpr std::string_view name = "add_item";
  std::string item;
  std::int64_t qty = 0;
  void apply(NoUpgradeInventory& s, const Context&) const { s.stock[item] += qty; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(NoUpgradeAdd, item, qty)
};
// v2's set_price without an upgrade(): cannot read a version 1 record.
struct SetPriceNoUpgrade {
  static constexpr std::string_view name = "set_price";
  static constexpr int version = 2;
  std::string item;
  std::int64_t cents = 0;
  void apply(v2::Inventory& s, const Context&) const { s.price_cents[item] = cents; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(SetPriceNoUpgrade, item, cents)
};
// v1's set_price in a program with the v2 state: cannot read a version 2 record.
struct SetPriceV1 {
  static constexpr std::string_view name = "set_price";
  std::string item;
  double price = 0;
  void apply(v2::Inventory&, const Context&) const {}
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(SetPriceV1, item, price)
};
// stock_item without its alias.
struct StockItemNoAlias {
  static constexpr std::string_view name = "stock_item";
  std::string item;
  std::int64_t qty = 0;
  void apply(v2::Inventory& s, const Context&) const { s.stock[item] += qty; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(StockItemNoAlias, item, qty)
};
// For the compile-time checks of names and aliases.
struct A {
  static constexpr std::string_view name = "a";
  static constexpr std::array<std::string_view, 2> aliases{"old_a", "older_a"};
};
struct B {
  static constexpr std::string_view name = "b";
};
struct ClaimsOldA {
  static constexpr std::string_view name = "old_a";
};
struct AliasIsOwnName {
  static constexpr std::string_view name = "c";
  static constexpr std::array<std::string_view, 1> aliases{"c"};
};
}  // namespace

TEST_CASE("a snapshot of an older state version without State::upgrade fails open, named") {
  test::temp_dir tmp;
  test::copy_dir(fixtures / "renamed_command", tmp / "store");
  auto e = thrown_error([&] { Store<NoUpgradeInventory, NoUpgradeAdd> s(tmp / "store"); });
  CHECK(e.code() == errc::incompatible_version);
  const std::string msg = e.what();
  CHECK(contains(msg, "NoUpgradeInventory"));
  CHECK(contains(msg, "at version 1"));
  CHECK(contains(msg, "this program's version 2"));
  CHECK(contains(msg, format::snapshot_file_name(2)));
  CHECK(contains(msg, "sequence number 2"));
  CHECK(contains(msg, "upgrade"));
}

TEST_CASE("a snapshot of a newer state version fails open, named, and is not skipped") {
  // Written by v2 (state version 2), opened by v1: the open fails; it does not fall back to
  // replaying the journal from the start, which would hide that the program is too old.
  test::temp_dir tmp;
  test::copy_dir(fixtures / "renamed_command", tmp / "store");
  {
    v2::InventoryStore store(tmp / "store");
    store.snapshot();  // state version 2, at sequence number 4
  }
  auto e = thrown_error([&] { schema_v1::InventoryStore s(tmp / "store"); });
  CHECK(e.code() == errc::incompatible_version);
  const std::string msg = e.what();
  CHECK(contains(msg, "schema_v1::Inventory"));
  CHECK(contains(msg, "at version 2, newer than this program's version 1"));
  CHECK(contains(msg, format::snapshot_file_name(4)));
}

TEST_CASE("an older record without the command's upgrade() fails open, named") {
  test::temp_dir tmp;
  test::copy_dir(fixtures / "changed_type", tmp / "store");
  using Store2 = Store<v2::Inventory, v2::StockItem, v2::Note, v2::Discard, SetPriceNoUpgrade>;
  auto e = thrown_error([&] { Store2 s(tmp / "store"); });
  CHECK(e.code() == errc::incompatible_version);
  const std::string msg = e.what();
  CHECK(contains(msg, "\"set_price\" has version 1, older than this program's 2"));
  CHECK(contains(msg, "record 3"));  // the first record after the snapshot
  CHECK(contains(msg, "upgrade"));
}

TEST_CASE("a record newer than the program's command version fails open, named") {
  test::temp_dir tmp;
  test::copy_dir(fixtures / "changed_type", tmp / "store");
  {
    v2::InventoryStore store(tmp / "store");
    store.execute(v2::SetPrice{"kiwi", 99});  // record 5, set_price version 2
  }
  auto e = thrown_error([&] {
    Store<v2::Inventory, v2::StockItem, v2::Note, v2::Discard, SetPriceV1> s(tmp / "store");
  });
  CHECK(e.code() == errc::incompatible_version);
  const std::string msg = e.what();
  CHECK(contains(msg, "\"set_price\" has version 2, newer than this program's 1"));
  CHECK(contains(msg, "record 5"));
}

TEST_CASE("an alias is a name: a record under it is unknown to a store without the alias") {
  test::temp_dir tmp;
  test::copy_dir(fixtures / "renamed_command", tmp / "store");
  auto e = thrown_error([&] { Store<v2::Inventory, StockItemNoAlias> s(tmp / "store"); });
  CHECK(e.code() == errc::unknown_command);
  CHECK(contains(e.what(), "unknown command \"add_item\""));
}

TEST_CASE("duplicate names and aliases are found at compile time") {
  static_assert(!duplicate_command_names<A, B>());
  static_assert(duplicate_command_names<A, ClaimsOldA>());
  static_assert(duplicate_command_names<AliasIsOwnName>());
  static_assert(command_answers_to<A>("older_a") && command_answers_to<A>("a"));
  static_assert(!command_answers_to<B>("old_a"));
  CHECK(alias_count<A>() == 2);
}

TEST_CASE("a large older snapshot is upgraded as one tree, its large containers decoded apart") {
  // 3,000 items: "items" and "prices" are containers of over 1,024 entries, which the
  // streamed loader decodes in chunks; with an older state version they are put back into
  // one tree for State::upgrade. Written by the v1 types now, in each codec.
  for (codec c : {codec::json, codec::cbor, codec::msgpack}) {
    CAPTURE(codec_name(c));
    test::temp_dir tmp;
    store_options o;
    o.codec = c;
    o.snapshot_codec = c;
    {
      schema_v1::InventoryStore store(tmp.path(), o);
      for (int i = 0; i < 3000; ++i) {
        const std::string item = "item-" + std::to_string(i);
        store.execute(schema_v1::AddItem{item, i});
        store.execute(schema_v1::SetPrice{item, i / 4.0});
      }
      store.snapshot();
      store.execute(schema_v1::AddItem{"item-7", 1});
    }
    v2::InventoryStore store(tmp.path(), o);
    CHECK(store.recovery().replayed == 1);
    store.query([](const v2::Inventory& s) {
      REQUIRE(s.stock.size() == 3000);
      REQUIRE(s.price_cents.size() == 3000);
      for (int i = 0; i < 3000; ++i) {
        const std::string item = "item-" + std::to_string(i);
        CHECK(s.stock.at(item) == i + (i == 7 ? 1 : 0));
        CHECK(s.price_cents.at(item) == i * 25);
      }
      return 0;
    });
  }
}

// The "v1" inventory program of the schema-evolution fixtures (test/fixtures/schema/): the
// types as they were before the changes test/schema_test.cpp opens them with. Kept exactly as
// the fixtures were written; change only together with them (make_v1_fixtures.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <prevalent/prevalent.hpp>

namespace schema_v1 {

struct Inventory {                            // state version 1 (no `version`)
  std::map<std::string, std::int64_t> items;  // renamed to "stock" in v2
  std::map<std::string, double> prices;       // euros; cents (an integer) in v2
  std::vector<std::string> notes;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Inventory, items, prices, notes)
};

struct AddItem {  // renamed to "stock_item" in v2
  static constexpr std::string_view name = "add_item";
  std::string item;
  std::int64_t qty = 0;
  void apply(Inventory& s, const prevalent::Context&) const { s.items[item] += qty; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(AddItem, item, qty)
};

struct Note {  // v2 adds "author", with a default
  static constexpr std::string_view name = "note";
  std::string item;
  std::string text;
  void apply(Inventory& s, const prevalent::Context&) const {
    s.notes.push_back(item + ": " + text);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Note, item, text)
};

struct Discard {  // v2 removes "reason"
  static constexpr std::string_view name = "discard";
  std::string item;
  std::int64_t qty = 0;
  std::string reason;
  void apply(Inventory& s, const prevalent::Context&) const { s.items[item] -= qty; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Discard, item, qty, reason)
};

struct SetPrice {  // v2 (command version 2) stores the price in cents, an integer
  static constexpr std::string_view name = "set_price";
  std::string item;
  double price = 0;
  void apply(Inventory& s, const prevalent::Context&) const { s.prices[item] = price; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(SetPrice, item, price)
};

using InventoryStore = prevalent::Store<Inventory, AddItem, Note, Discard, SetPrice>;

}  // namespace schema_v1

// Writes the schema-evolution fixtures of test/fixtures/schema/ with the "v1" inventory types
// (v1_types.hpp): one small store per kind of change, each a snapshot followed by journal
// records, so that test/schema_test.cpp proves the "v2" types read both. Regenerate (only
// when v1_types.hpp changes, which it should not):
//
//   ninja -C build test/make_v1_fixtures && build/test/make_v1_fixtures test/fixtures/schema
//
// The snapshots are written in the snapshot format of the code this is built with (header
// version 3 since issue 10); what the fixtures pin is the v1 types' JSON, not the format.
#include <cstdio>
#include <filesystem>
#include <functional>

#include "v1_types.hpp"

namespace {

using namespace schema_v1;

// Runs `before`, takes a snapshot, runs `after`, and leaves only the store's files in `dir`.
void write_store(const std::filesystem::path& dir,
                 const std::function<void(InventoryStore&)>& before,
                 const std::function<void(InventoryStore&)>& after) {
  std::filesystem::remove_all(dir);
  prevalent::store_options o;
  o.preallocate_bytes = 0;  // small files: no zero fill after the last record
  {
    InventoryStore s(dir, o);
    before(s);
    s.snapshot();
    after(s);
    s.close();
  }
  std::filesystem::remove(dir / "LOCK");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path out = argv[1];
  // A renamed command: "add_item" records before and after the snapshot.
  write_store(
      out / "renamed_command",
      [](InventoryStore& s) {
        s.execute(AddItem{"apple", 10});
        s.execute(AddItem{"pear", 4});
      },
      [](InventoryStore& s) {
        s.execute(AddItem{"apple", 5});
        s.execute(AddItem{"plum", 1});
      });
  // An added field with a default: "note" records without "author".
  write_store(
      out / "added_field",
      [](InventoryStore& s) {
        s.execute(Note{"apple", "from the north orchard"});
      },
      [](InventoryStore& s) {
        s.execute(Note{"pear", "ripe in a week"});
        s.execute(Note{"apple", "sold out soon"});
      });
  // A removed field: "discard" records with a "reason" v2 no longer has.
  write_store(
      out / "removed_field",
      [](InventoryStore& s) {
        s.execute(AddItem{"apple", 10});
        s.execute(Discard{"apple", 2, "bruised"});
      },
      [](InventoryStore& s) {
        s.execute(Discard{"apple", 3, "eaten by the inspector"});
      });
  // A changed field type: "set_price" records with a price in euros (a double).
  write_store(
      out / "changed_type",
      [](InventoryStore& s) {
        s.execute(SetPrice{"apple", 0.35});
        s.execute(SetPrice{"pear", 1.2});
      },
      [](InventoryStore& s) {
        s.execute(SetPrice{"apple", 0.4});
        s.execute(SetPrice{"plum", 2.05});
      });
  // A renamed state member ("items" becomes "stock"): the snapshot holds it, records add to it.
  write_store(
      out / "renamed_state_member",
      [](InventoryStore& s) {
        s.execute(AddItem{"apple", 7});
        s.execute(Discard{"apple", 1, "sample"});
        s.execute(SetPrice{"apple", 0.5});
        s.execute(Note{"apple", "keep cool"});
      },
      [](InventoryStore& s) {
        s.execute(AddItem{"apple", 3});
      });
  std::printf("wrote the schema fixtures under %s\n", out.c_str());
  return 0;
}

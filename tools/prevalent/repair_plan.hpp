// What `prevalent repair` changes, decided before anything is touched (repair_plan.cpp): the
// cuts and removals of the journal (a torn tail, an unfinished last segment, leftovers of an
// interrupted drop, and with --salvage the damage and what follows it) and of the snapshots
// (a damaged one, or one the salvaged journal no longer reaches), or a refusal when a change
// would lose acknowledged history.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.hpp"

namespace prevalent::tool {

struct repair_action {
  bool remove = false;       // the whole file; otherwise cut it at `offset`
  std::string name;          // in the store directory
  std::uint64_t offset = 0;  // where the cut starts (0 for a removal)
  std::uint64_t bytes = 0;   // how many bytes go
  std::string why;
};

struct repair_plan {
  std::vector<repair_action> actions;
  std::vector<std::string> damaged_snapshots;  // names of those that do not verify
  std::uint64_t last_seq_after = 0;            // the last record an open finds afterwards
  std::string refusal;  // non-empty: repair changes nothing and exits 1 with this message
};

// `walk` is walk_journal's result for `store`; with damage in it, the plan salvages (cuts at
// the first corrupt record, keeping a later snapshot that verifies and the segments after it
// that an open can replay from it).
repair_plan plan_repair(const StoreDir& store, const walk_result& walk);

}  // namespace prevalent::tool

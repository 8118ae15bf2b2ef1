// plan_repair: what repair cuts and removes, from the journal walk and a check of every
// snapshot, before anything changes (repair_plan.hpp).
#include "repair_plan.hpp"

#include <filesystem>
#include <optional>

namespace prevalent::tool {
namespace {

std::string range(std::uint64_t from, std::uint64_t to) {
  return from == to ? std::to_string(from) : std::to_string(from) + ".." + std::to_string(to);
}

class Planner {
 public:
  Planner(const StoreDir& store, repair_plan& plan)
      : store_(store), segs_(store.segments()), plan_(plan), removed_(segs_.size(), false) {}

  void remove_segment(std::size_t i, const std::string& why) {
    if (removed_[i]) return;
    removed_[i] = true;
    plan_.actions.push_back({true, segs_[i].name, 0, segs_[i].bytes, why});
  }

  // What recovery would cut at the end of the journal a walk read.
  void cut_tail(const walk_result& w) {
    if (w.unfinished_last) {
      remove_segment(segs_.size() - 1, w.torn_reason);
    } else if (!w.torn_reason.empty()) {
      plan_.actions.push_back({false, std::filesystem::path(w.torn_file).filename().string(),
                               w.torn_offset, w.torn_bytes, "torn tail: " + w.torn_reason});
    }
  }

  // Salvage: the journal ends after the last good record before `d`.
  void cut_at(const damage& d) {
    const auto& seg = segs_[d.segment];
    if (d.cut_offset == 0)
      remove_segment(d.segment, "salvage: " + d.what);
    else if (d.cut_offset < seg.bytes)
      plan_.actions.push_back(
          {false, seg.name, d.cut_offset, seg.bytes - d.cut_offset, "salvage: " + d.what});
    for (std::size_t i = d.segment + 1; i < segs_.size(); ++i)
      remove_segment(i, "salvage: after the damage in " + seg.name);
  }

  // The first sequence number of the first segment left, if any is.
  std::optional<std::uint64_t> start() const {
    for (std::size_t i = 0; i < segs_.size(); ++i)
      if (!removed_[i]) return segs_[i].seq;
    return std::nullopt;
  }

 private:
  const StoreDir& store_;
  const std::vector<store_file>& segs_;
  repair_plan& plan_;
  std::vector<bool> removed_;
};

}  // namespace

repair_plan plan_repair(const StoreDir& store, const walk_result& walk) {
  repair_plan plan;
  const auto& segs = store.segments();
  const auto& snaps = store.snapshots();
  std::vector<std::optional<std::string>> problem;
  for (const auto& s : snaps) {
    problem.push_back(snapshot_problem(store, s));
    if (problem.back()) plan.damaged_snapshots.push_back(s.name);
  }
  // The newest snapshot that verifies, among those after `seq` (nullopt: none).
  auto newest_good_after = [&](std::uint64_t seq) -> std::optional<std::size_t> {
    for (std::size_t i = snaps.size(); i-- > 0;)
      if (!problem[i] && snaps[i].seq > seq) return i;
    return std::nullopt;
  };

  Planner p(store, plan);
  for (std::size_t i = 0; i < walk.leftovers; ++i)
    p.remove_segment(i,
                     "left over from an interrupted drop: a snapshot covers it, and a gap "
                     "follows it");
  std::uint64_t end = 0;  // the last record the journal holds after the plan
  if (!walk.damaged) {
    p.cut_tail(walk);
    const auto first = p.start();
    end = walk.records > 0 ? walk.last_seq : (first ? *first - 1 : 0);
  } else {
    const auto& d = *walk.damaged;
    const auto later_snap = newest_good_after(d.last_good_seq);
    bool kept_later = false;
    if (later_snap && d.segment + 1 < segs.size() &&
        segs[d.segment + 1].seq <= snaps[*later_snap].seq + 1) {
      // A snapshot beyond the cut verifies, and the segments after the damaged one reach back
      // to it: an open loads it and replays them (the segments before the gap are leftovers to
      // recovery, which removes them), so keep both.
      const std::uint64_t from = segs[d.segment + 1].seq;
      const auto later = walk_journal(store, {}, nullptr, from);
      const std::uint64_t later_end = later.damaged       ? later.damaged->last_good_seq
                                      : later.records > 0 ? later.last_seq
                                                          : from - 1;
      if (later_end >= snaps[*later_snap].seq) {
        kept_later = true;
        for (std::size_t i = 0; i <= d.segment; ++i)
          p.remove_segment(i, "salvage: the journal up to the damage in " + segs[d.segment].name +
                                  "; " + snaps[*later_snap].name +
                                  " verifies and holds the state after it, and the segments "
                                  "from sequence number " +
                                  std::to_string(from) + " on continue from it");
        if (later.damaged)
          p.cut_at(*later.damaged);
        else
          p.cut_tail(later);
        end = later_end;
      }
    }
    if (!kept_later && later_snap) {
      // The journal after the damage does not reach the snapshot: it alone holds the newest
      // state. Without segments an open goes on from it (recovery().segments_missing).
      for (std::size_t i = 0; i < segs.size(); ++i)
        p.remove_segment(i, "salvage: " + snaps[*later_snap].name +
                                " verifies and holds the state after the damage in " +
                                segs[d.segment].name +
                                ", but no intact run of the journal after the damage reaches "
                                "it; the store goes on from the snapshot");
      end = snaps[*later_snap].seq;
    }
    if (!kept_later && !later_snap) {
      p.cut_at(d);
      end = d.last_good_seq;
    }
  }
  plan.last_seq_after = end;

  // Damaged snapshots: each is moved to the backup, unless that loses acknowledged history.
  const auto start = p.start();
  for (std::size_t i = 0; i < snaps.size(); ++i) {
    if (!problem[i]) continue;
    const auto& s = snaps[i];
    const std::string why = "damaged snapshot: " + *problem[i];
    if (walk.damaged && s.seq > end) {
      plan.actions.push_back(
          {true, s.name, 0, s.bytes, "salvage: " + why + "; it covers records after the cut"});
      continue;
    }
    if (auto newer = newest_good_after(s.seq)) {
      plan.actions.push_back(
          {true, s.name, 0, s.bytes,
           why + "; " + snaps[*newer].name + ", which verifies, holds a newer state"});
      continue;
    }
    // The previous good snapshot (or the empty state) and the journal must give its state.
    std::uint64_t prev = 0;
    std::string prev_name = "the empty state";
    for (std::size_t k = 0; k < i; ++k)
      if (!problem[k]) {
        prev = snaps[k].seq;
        prev_name = snaps[k].name;
      }
    const bool holds = start && *start <= prev + 1 && end >= s.seq;
    if (!holds) {
      const std::string held = start && end >= *start
                                   ? "the journal holds records " + range(*start, end)
                                   : std::string("the journal holds no record");
      plan.refusal =
          store.describe(s.name) + " does not verify (" + *problem[i] +
          "), and moving it out would lose acknowledged history: records " +
          range(prev + 1, s.seq) + " (after " + prev_name + ") are in no other file (" + held +
          "). Nothing was changed. What you can do: restore " + s.name +
          " from a backup of the store, or put the journal segments holding records " +
          range(prev + 1, s.seq) +
          " back into the directory (from a backup, or from the store's archive_directory if "
          "it has one), then run repair again; or, if the state it held can be given up, move " +
          s.name + " out of the directory by hand (prevalent verify then says what the store " +
          "can still open from).";
      return plan;
    }
    plan.actions.push_back({true, s.name, 0, s.bytes,
                            why + "; an open replays records " + range(prev + 1, s.seq) +
                                " of the journal onto " + prev_name + " instead"});
  }
  return plan;
}

}  // namespace prevalent::tool

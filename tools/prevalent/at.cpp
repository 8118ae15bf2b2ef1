// `prevalent at DIR --seq N | --time T`: time travel without the store's types. Prints the
// newest snapshot at or before N (its state) and the records after it up to N:
// {"seq":N,"snapshot":{"file","last_seq","time","state"} or null,"records":[...]}.
// Applying the records needs the types (a typed tool's `state`); this is what they would get.
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "prevalent/error.hpp"

namespace prevalent::tool {
namespace {

using ordered = nlohmann::ordered_json;

[[noreturn]] void unreachable(const StoreDir& store, const std::string& what) {
  const auto walk = walk_journal(store, {});
  const auto range = reachable(store, walk);
  throw tool_error(exit_usage,
                   what + " is not reachable in " + store.path().string() +
                       (range.any ? ": reachable are sequence numbers " +
                                        std::to_string(range.from) + ".." + std::to_string(range.to)
                                  : ": nothing is reachable"));
}

}  // namespace

int run_at(const at_args& a) {
  const StoreDir store(a.dir, a.key_file);
  std::uint64_t target = 0;
  if (a.seq) {
    target = *a.seq;
  } else {
    // The last record at or before the time.
    const std::int64_t t = parse_iso_time(a.time);
    bool found = false;
    const auto walk = walk_journal(store, [&](const record_view& r) {
      if (r.timestamp_ns > t) throw stop_walk{};
      target = r.seq;
      found = true;
    });
    if (!found) {
      // No record that early; a snapshot taken before any later record may still be it.
      for (const auto& s : store.snapshots()) {
        std::string why;
        auto h = store.snapshot_header(s, why);
        if (h && h->timestamp_ns <= t && s.seq >= target) {
          target = s.seq;
          found = true;
        }
      }
    }
    if (!found && !store.segments().empty() && store.segments().front().seq == 1) {
      // Before the first record, with the journal from record 1: the empty state (sequence 0),
      // as Store::view and sequence_as_of() say.
      target = 0;
      found = true;
    }
    if (!found) unreachable(store, "time " + a.time);
    (void)walk;
  }

  // The newest usable snapshot at or before the target that the journal reaches from.
  const auto& segs = store.segments();
  ordered snapshot = nullptr;
  std::uint64_t base = 0;
  bool have_base = !segs.empty() && segs.front().seq == 1;  // the empty state, then replay
  const auto& snaps = store.snapshots();
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    if (it->seq > target) continue;
    if (it->seq < target && !segs.empty() && segs.front().seq > it->seq + 1) continue;
    if (it->seq < target && segs.empty()) continue;
    try {
      auto state = snapshot_state(store, *it);
      std::string why;
      const auto h = store.snapshot_header(*it, why);
      snapshot = {{"file", it->name}, {"last_seq", it->seq}};
      snapshot["time"] =
          h && h->timestamp_ns != 0 ? ordered(iso_time(h->timestamp_ns)) : ordered(nullptr);
      snapshot["state"] = state;
      base = it->seq;
      have_base = true;
      break;
    } catch (const prevalent::error& e) {
      if (e.code() == errc::encryption_mismatch) throw;
      (void)std::fprintf(stderr, "prevalent: skipping %s: %s\n", it->name.c_str(), e.what());
    } catch (const tool_error& e) {
      (void)std::fprintf(stderr, "prevalent: skipping %s: %s\n", it->name.c_str(), e.what());
    }
  }
  if (!have_base) unreachable(store, "sequence number " + std::to_string(target));

  ordered records = ordered::array();
  std::uint64_t last = base;
  const auto walk = walk_journal(
      store,
      [&](const record_view& r) {
        if (r.seq > target) throw stop_walk{};
        if (r.seq <= base) return;
        auto env = decode_record(r);
        ordered rec;
        rec["seq"] = r.seq;
        rec["time"] = iso_time(r.timestamp_ns);
        rec["cmd"] = env["cmd"];
        rec["v"] = env.contains("v") ? env["v"] : nlohmann::json(nullptr);
        rec["args"] = env.contains("args") ? env["args"] : nlohmann::json(nullptr);
        records.push_back(std::move(rec));
        last = r.seq;
      },
      nullptr, base + 1);
  if (last != target) {
    if (walk.damaged && walk.last_seq < target)
      throw tool_error(exit_damaged, "sequence number " + std::to_string(target) +
                                         " lies after damage: " + walk.damaged->what);
    unreachable(store, "sequence number " + std::to_string(target));
  }
  ordered out;
  out["seq"] = target;
  out["snapshot"] = std::move(snapshot);
  out["records"] = std::move(records);
  print_line(out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  finish_output();
  return exit_ok;
}

}  // namespace prevalent::tool

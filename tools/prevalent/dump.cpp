// `prevalent dump DIR`: the journal's records as JSON lines
// {"seq":..,"time":"<ISO 8601>","epoch":..,"cmd":..,"v":..,"args":..}, filtered by sequence number
// or time (--from/--to, both inclusive) and command name (--command, repeatable). Stops quietly
// when the reader of the pipe goes away (jq, head).
#include <algorithm>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"

namespace prevalent::tool {

int run_dump(const dump_args& a) {
  const position from = a.from.empty() ? position{} : parse_position(a.from, "--from");
  const position to = a.to.empty() ? position{} : parse_position(a.to, "--to", true);
  if ((from.seq && to.seq && *from.seq > *to.seq) ||
      (from.time_ns && to.time_ns && *from.time_ns > *to.time_ns))
    throw tool_error(exit_usage, "--from " + a.from + " is after --to " + a.to +
                                     ": the range is empty (both are inclusive)");
  const StoreDir store(a.dir, a.key_file);
  std::uint64_t bytes = 0;
  for (const auto& s : store.segments()) bytes += s.bytes;
  Progress progress("dumping", bytes, !a.quiet && !a.json);
  bool reader_gone = false;
  std::uint64_t printed = 0;
  const auto walk = walk_journal(
      store,
      [&](const record_view& r) {
        if (to.seq && r.seq > *to.seq) throw stop_walk{};
        if (from.time_ns && r.timestamp_ns < *from.time_ns) return;
        if (to.time_ns && r.timestamp_ns > *to.time_ns) return;
        auto env = decode_record(r);
        const std::string cmd = env["cmd"].is_string() ? env["cmd"].get<std::string>() : "";
        if (!a.commands.empty() &&
            std::find(a.commands.begin(), a.commands.end(), cmd) == a.commands.end())
          return;
        nlohmann::ordered_json line;
        line["seq"] = r.seq;
        line["time"] = iso_time(r.timestamp_ns);
        line["epoch"] = r.epoch;
        line["cmd"] = env["cmd"];
        line["v"] = env.contains("v") ? env["v"] : nlohmann::json(nullptr);
        line["args"] = env.contains("args") ? env["args"] : nlohmann::json(nullptr);
        if (!print_line(line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace))) {
          reader_gone = true;
          throw stop_walk{};
        }
        ++printed;
      },
      &progress, from.seq.value_or(0));
  progress.done();
  if (reader_gone || !finish_output()) return exit_ok;
  if (walk.damaged) {
    (void)std::fprintf(stderr, "prevalent: stopped at damage after record %llu: %s\n",
                       static_cast<unsigned long long>(walk.damaged->last_good_seq),
                       walk.damaged->what.c_str());
    return exit_damaged;
  }
  if (printed == 0) {
    // Say why nothing came: the range (or the command names) matched no record of the journal.
    std::uint64_t first = 0, last = 0;
    std::int64_t first_ns = 0, last_ns = 0;
    (void)walk_journal(store, [&](const record_view& r) {
      if (first == 0) {
        first = r.seq;
        first_ns = r.timestamp_ns;
      }
      last = r.seq;
      last_ns = r.timestamp_ns;
    });
    std::string asked;
    if (!a.from.empty()) asked += " --from " + a.from;
    if (!a.to.empty()) asked += " --to " + a.to;
    for (const auto& c : a.commands) asked += " --command " + c;
    (void)std::fprintf(
        stderr, "prevalent: no record matches%s: %s\n", asked.empty() ? "" : asked.c_str(),
        first == 0
            ? "the journal holds no record"
            : ("the journal holds records " + std::to_string(first) + ".." + std::to_string(last) +
               ", from " + iso_time(first_ns) + " to " + iso_time(last_ns))
                  .c_str());
  }
  if (!walk.torn_reason.empty() && !a.quiet)
    (void)std::fprintf(stderr, "prevalent: note: torn tail in %s at offset %llu (%s): not dumped\n",
                       walk.torn_file.c_str(), static_cast<unsigned long long>(walk.torn_offset),
                       walk.torn_reason.c_str());
  return exit_ok;
}

}  // namespace prevalent::tool

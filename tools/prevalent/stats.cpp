// `prevalent stats DIR`: commands by name (records, payload bytes) and records per minute or
// per hour over the journal's time span.
#include <algorithm>
#include <cstdio>
#include <map>

#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"

namespace prevalent::tool {
namespace {

struct tally {
  std::uint64_t count = 0;
  std::uint64_t bytes = 0;
};

}  // namespace

int run_stats(const stats_args& a) {
  if (a.per != "minute" && a.per != "hour")
    throw tool_error(exit_usage, "--per takes minute or hour, not '" + a.per + "'");
  const std::int64_t bucket_ns = (a.per == "minute" ? 60LL : 3600LL) * 1000000000LL;
  const StoreDir store(a.dir, a.key_file);
  std::uint64_t total = 0;
  for (const auto& s : store.segments()) total += s.bytes;
  Progress progress("counting", total, !a.quiet);
  std::map<std::string, tally> by_name;
  std::map<std::int64_t, std::uint64_t> per_bucket;
  std::uint64_t payload_bytes = 0;
  std::int64_t first_ns = 0, last_ns = 0;
  const auto walk = walk_journal(
      store,
      [&](const record_view& r) {
        auto env = decode_record(r);
        const std::string name = env["cmd"].is_string() ? env["cmd"].get<std::string>() : "?";
        auto& t = by_name[name];
        ++t.count;
        t.bytes += r.payload.size();
        payload_bytes += r.payload.size();
        std::int64_t b = r.timestamp_ns / bucket_ns;
        if (r.timestamp_ns < 0 && r.timestamp_ns % bucket_ns != 0) --b;
        ++per_bucket[b * bucket_ns];
        if (first_ns == 0) first_ns = r.timestamp_ns;
        last_ns = r.timestamp_ns;
      },
      &progress);
  progress.done();

  std::vector<std::pair<std::string, tally>> names(by_name.begin(), by_name.end());
  std::stable_sort(names.begin(), names.end(),
                   [](const auto& x, const auto& y) { return x.second.count > y.second.count; });
  if (a.json) {
    nlohmann::ordered_json out;
    out["records"] = walk.records;
    out["payload_bytes"] = payload_bytes;
    out["first_time"] = walk.records ? nlohmann::ordered_json(iso_time(first_ns)) : nullptr;
    out["last_time"] = walk.records ? nlohmann::ordered_json(iso_time(last_ns)) : nullptr;
    out["commands"] = nlohmann::ordered_json::array();
    for (const auto& [name, t] : names)
      out["commands"].push_back({{"name", name}, {"count", t.count}, {"bytes", t.bytes}});
    out["per"] = a.per;
    out["rate"] = nlohmann::ordered_json::array();
    for (const auto& [start, n] : per_bucket)
      out["rate"].push_back({{"start", iso_time(start)}, {"records", n}});
    print_line(out.dump());
  } else {
    std::printf("%s, %s", plural(walk.records, "record").c_str(),
                plural(payload_bytes, "payload byte").c_str());
    if (walk.records)
      std::printf(", %s to %s", iso_time(first_ns).c_str(), iso_time(last_ns).c_str());
    std::printf("\n\n%-32s %12s %14s %10s\n", "command", "records", "bytes", "avg bytes");
    for (const auto& [name, t] : names)
      std::printf("%-32s %12llu %14llu %10llu\n", name.c_str(),
                  static_cast<unsigned long long>(t.count),
                  static_cast<unsigned long long>(t.bytes),
                  static_cast<unsigned long long>(t.bytes / t.count));
    std::printf("\nrecords per %s\n", a.per.c_str());
    for (const auto& [start, n] : per_bucket)
      std::printf("  %s  %llu\n", iso_time(start).substr(0, a.per == "minute" ? 16 : 13).c_str(),
                  static_cast<unsigned long long>(n));
  }
  finish_output();
  if (walk.damaged) {
    (void)std::fprintf(stderr, "prevalent: counted up to record %llu, then damage: %s\n",
                       static_cast<unsigned long long>(walk.damaged->last_good_seq),
                       walk.damaged->what.c_str());
    return exit_damaged;
  }
  return exit_ok;
}

}  // namespace prevalent::tool

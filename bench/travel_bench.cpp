// Time travel, the archive and the determinism check against their baselines in the same run
// (issue 10, parts 4 and 5): a view as of the last record against opening the store (the same
// snapshot and tail), views further back, reachable_sequences and sequence_as_of, the
// determinism check against the open, and snapshot() with an archive against without.
//
//   build/bench/travel_bench [records]      (default 200000; median of 5 runs per figure)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <unistd.h>

#include <prevalent/prevalent.hpp>

namespace fs = std::filesystem;

namespace {

struct Counters {
  std::map<std::string, std::int64_t> values;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Counters, values)
};

struct Put {
  static constexpr std::string_view name = "put";
  std::string key;
  std::int64_t value = 0;
  void apply(Counters& c, const prevalent::Context&) const { c.values[key] = value; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Put, key, value)
};

using CounterStore = prevalent::Store<Counters, Put>;

double median_ms(int runs, const std::function<void()>& f) {
  std::vector<double> ms;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

void row(const char* what, double ms, double baseline) {
  std::printf("| %-52s | %10.1f | %6.2f x |\n", what, ms, ms / baseline);
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t records = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 200000;
  const std::uint64_t keys = 50000, snapshot_every = records / 4;
  const fs::path base = fs::temp_directory_path() / ("travel_bench-" + std::to_string(::getpid()));
  fs::remove_all(base);
  const fs::path dir = base / "store", archive = base / "archive";

  prevalent::store_options o;
  o.sync = prevalent::sync_policy::none();
  o.verify_encoding = false;
  o.segment_bytes = 4u << 20;
  std::vector<std::chrono::system_clock::time_point> quarter_times;
  {
    CounterStore store(dir, o);
    for (std::uint64_t i = 1; i <= records; ++i) {
      store.execute(Put{"key" + std::to_string(i % keys), static_cast<std::int64_t>(i)});
      if (i % snapshot_every == 0) {
        quarter_times.push_back(std::chrono::system_clock::now());
        if (i + snapshot_every / 2 <= records) store.snapshot();  // the last quarter stays a tail
      }
    }
  }
  const auto range = prevalent::reachable_sequences(dir, o);
  std::printf("%llu records, %llu keys, snapshots every %llu; reachable %llu..%llu\n\n",
              static_cast<unsigned long long>(records), static_cast<unsigned long long>(keys),
              static_cast<unsigned long long>(snapshot_every),
              static_cast<unsigned long long>(range.first),
              static_cast<unsigned long long>(range.last));
  const int runs = 5;
  std::printf("| %-52s | %10s | %8s |\n|---|---:|---:|\n", "operation (median of 5)", "ms",
              "vs open");
  const double open_ms = median_ms(runs, [&] { CounterStore s(dir, o); });
  row("baseline: open the store (newest snapshot + tail)", open_ms, open_ms);
  row("view as of the last record (same snapshot + tail)",
      median_ms(runs, [&] { CounterStore::view v(dir, prevalent::as_of{.seq = records}, o); }),
      open_ms);
  const std::uint64_t mid = 2 * snapshot_every + snapshot_every / 2;  // between the kept two
  row("view as of a record half-way between two snapshots",
      median_ms(runs, [&] { CounterStore::view v(dir, prevalent::as_of{.seq = mid}, o); }),
      open_ms);
  row("view as of a time (third quarter's end: a snapshot)",
      median_ms(runs,
                [&] { CounterStore::view v(dir, prevalent::as_of{.time = quarter_times[2]}, o); }),
      open_ms);
  row("reachable_sequences (names + last segment)",
      median_ms(runs, [&] { (void)prevalent::reachable_sequences(dir, o); }), open_ms);
  row("sequence_as_of a time (headers + records after)",
      median_ms(runs,
                [&] {
                  (void)prevalent::sequence_as_of(dir, prevalent::as_of{.time = quarter_times[2]},
                                                  o);
                }),
      open_ms);
  row("check_determinism (two newest snapshots)",
      median_ms(runs,
                [&] {
                  auto r = prevalent::check_determinism<CounterStore>(dir, {}, o);
                  if (!r.consistent) std::abort();
                }),
      open_ms);

  // snapshot() with and without an archive: each run adds records enough to drop a segment.
  std::printf("\n| %-52s | %10s | %8s |\n|---|---:|---:|\n", "snapshot() after 20,000 records",
              "ms", "vs none");
  auto snapshot_ms = [&](bool archived) {
    prevalent::store_options a = o;
    a.keep_snapshots = 1;
    a.segment_bytes = 1u << 20;  // 20,000 records fill more than one: each snapshot drops some
    if (archived) a.archive_directory = archive;
    CounterStore store(dir, a);
    std::uint64_t n = store.last_sequence();
    std::vector<double> ms;
    for (int r = 0; r < runs; ++r) {
      for (int i = 0; i < 20000; ++i, ++n)
        store.execute(Put{"key" + std::to_string(n % keys), static_cast<std::int64_t>(n)});
      ms.push_back(median_ms(1, [&] { store.snapshot(); }));
    }
    std::sort(ms.begin(), ms.end());
    return ms[ms.size() / 2];
  };
  const double plain = snapshot_ms(false);
  row("without archive (segments and snapshots deleted)", plain, plain);
  row("with archive_directory (copied, synced, then deleted)", snapshot_ms(true), plain);
  fs::remove_all(base);
}

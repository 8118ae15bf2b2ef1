// Replication's cost (issue 11, docs/REPLICATION.md): durable commands per second with W
// concurrent writers on one primary under acks = local without replicas, local with two
// replicas following, replicated(1) and replicated(2), all in one run on this machine
// (replicas on loopback in the same process: the figures show the protocol's cost, not a
// network's), and the replicas' lag under that load (records behind the primary's durable
// mark, sampled every millisecond). Usage: replication_bench [WRITERS] [COMMANDS_PER_WRITER]
// [one] (only replicated(1) with one replica, for profiling).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include <prevalent/prevalent.hpp>

#include "prevalent/repl/replica.hpp"

namespace {

struct Table {
  std::map<std::string, long> rows;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Table, rows)
};

struct Put {
  static constexpr std::string_view name = "put";
  std::string key;
  long value = 0;
  void apply(Table& t, const prevalent::Context&) const { t.rows[key] = value; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Put, key, value)
};

using clock_type = std::chrono::steady_clock;

std::filesystem::path make_temp_dir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "replbench-XXXXXX").string();
  if (!mkdtemp(pattern.data())) {
    std::perror("mkdtemp");
    std::exit(1);
  }
  return pattern;
}

struct result {
  double commands_per_second = 0;
  std::uint64_t failures = 0;
  double mean_behind = 0;
  std::uint64_t max_behind = 0;
};

result run(const char* label, unsigned replicas, prevalent::ack_policy acks, int writers,
           int per_writer) {
  const auto root = make_temp_dir();
  result out;
  {
    prevalent::store_options o;
    o.acks = acks;
    prevalent::Store<Table, Put> primary(root / "primary", o);
    prevalent::repl::ReplicationPrimary serving(primary);
    std::vector<std::unique_ptr<prevalent::repl::Replica<Table, Put>>> followers;
    const std::string at = "127.0.0.1:" + std::to_string(serving.port());
    for (unsigned r = 0; r < replicas; ++r)
      followers.push_back(std::make_unique<prevalent::repl::Replica<Table, Put>>(
          root / ("replica" + std::to_string(r)), at));
    while (serving.connected_replicas() < replicas)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));

    std::atomic<bool> done{false};
    std::uint64_t samples = 0, behind_sum = 0;
    std::thread sampler([&] {
      while (!done) {
        const auto primary_seq = primary.durable_sequence();
        for (const auto& f : followers) {
          const auto applied = f->last_sequence();
          const auto behind = primary_seq > applied ? primary_seq - applied : 0;
          out.max_behind = std::max(out.max_behind, behind);
          behind_sum += behind;
          ++samples;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    std::atomic<std::uint64_t> failures{0};
    const auto start = clock_type::now();
    std::vector<std::thread> threads;
    for (int w = 0; w < writers; ++w)
      threads.emplace_back([&, w] {
        for (int i = 0; i < per_writer; ++i) {
          try {
            primary.execute(
                Put{std::string("k") + std::to_string(w) + "-" + std::to_string(i % 100), i});
          } catch (const std::exception&) {
            ++failures;
          }
        }
      });
    for (auto& t : threads) t.join();
    const double seconds = std::chrono::duration<double>(clock_type::now() - start).count();
    done = true;
    sampler.join();
    out.commands_per_second = writers * per_writer / seconds;
    out.failures = failures;
    out.mean_behind = samples ? static_cast<double>(behind_sum) / static_cast<double>(samples) : 0;
    serving.stop();
  }
  std::filesystem::remove_all(root);
  std::printf("%-26s %12.0f %10llu %14.1f %12llu\n", label, out.commands_per_second,
              static_cast<unsigned long long>(out.failures), out.mean_behind,
              static_cast<unsigned long long>(out.max_behind));
  std::fflush(stdout);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const int writers = argc > 1 ? std::atoi(argv[1]) : 64;
  const int per_writer = argc > 2 ? std::atoi(argv[2]) : 200;
  std::printf(
      "replication: %d writers x %d durable commands (sync always), replicas on "
      "loopback\n",
      writers, per_writer);
  std::printf("%-26s %12s %10s %14s %12s\n", "mode", "commands/s", "failures", "mean behind",
              "max behind");
  using prevalent::ack_policy;
  const auto timeout = std::chrono::seconds(10);
  if (argc > 3 && std::string(argv[3]) == "one") {  // one mode alone, for profiling
    run("replicated(1), 1 replica", 1, ack_policy::replicated(1, timeout), writers, per_writer);
    return 0;
  }
  const auto local = run("local, no replica", 0, ack_policy::local(), writers, per_writer);
  run("local, 2 replicas", 2, ack_policy::local(), writers, per_writer);
  run("replicated(1), 1 replica", 1, ack_policy::replicated(1, timeout), writers, per_writer);
  const auto r1 =
      run("replicated(1), 2 replicas", 2, ack_policy::replicated(1, timeout), writers, per_writer);
  const auto r2 =
      run("replicated(2), 2 replicas", 2, ack_policy::replicated(2, timeout), writers, per_writer);
  std::printf(
      "replicated(1) / local: %.2f   replicated(2) / local: %.2f   (target >= 0.5 for "
      "replicated(1))\n",
      r1.commands_per_second / local.commands_per_second,
      r2.commands_per_second / local.commands_per_second);
}

// A model-based concurrent test: four threads issue random operations against one store
// (deposits; transfers, some rejected by validate(); commands whose apply() throws half-way,
// after changing the state, so that the store rebuilds its state from disk; queries;
// explicit snapshots) while automatic snapshots run on the store's own thread, segments roll
// at 256-2048 bytes and one or two snapshots are kept, so that rebuilds, snapshot publishes and
// segment deletions overlap. Run once as is and once on a directory that injects random
// yields and 0-200 us sleeps before its file operations (test/jittery_directory.hpp), to reach
// rare interleavings. Nothing fails on purpose apart from the throwing apply().
//
// Verified, during a round: every query sees the invariants (money only comes from deposits,
// no negative balance, the applied sequence numbers are exactly 1..n, so a half-applied command
// is never visible) and what it saw is durable when it returns; no operation fails other than
// as designed, and the store does not stop. After each round, with the threads joined: the live
// state equals (1) the state of a fresh store opened on a copy of the directory, with the same
// last sequence number, and (2) a model outside the store: the commands that were acknowledged,
// recorded by the sequence number execute() returned, which must be exactly 1..N (no gap, N the
// live last sequence number) and replayed in that order; and it equals the store reopened on
// the original directory once closed. This catches the state in memory silently diverging
// from disk, as when a rebuild read files that a concurrent publish deleted (issue 7).
//
// PREVALENT_MODEL_SEED reproduces a run (printed on failure; thread scheduling still varies);
// PREVALENT_MODEL_ROUNDS sets the rounds per test case (default 12).
#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "jittery_directory.hpp"
#include "support.hpp"

using namespace prevalent;

namespace {

struct Books {
  std::map<std::string, std::int64_t> balances;
  std::int64_t deposited = 0;          // what all deposits brought in: the total of balances
  std::vector<std::uint64_t> applied;  // sequence number of every command applied, in order
  bool operator==(const Books&) const = default;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Books, balances, deposited, applied)
};

struct Deposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  std::int64_t amount = 0;
  std::uint64_t apply(Books& b, const Context& ctx) const {
    b.balances[account] += amount;
    b.deposited += amount;
    b.applied.push_back(ctx.sequence());
    return ctx.sequence();
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Deposit, account, amount)
};

struct Transfer {
  static constexpr std::string_view name = "transfer";
  std::string from, to;
  std::int64_t amount = 0;
  void validate(const Books& b, const Context&) const {
    auto it = b.balances.find(from);
    if (amount <= 0 || it == b.balances.end() || it->second < amount)
      throw std::invalid_argument("insufficient funds in " + from);
  }
  std::uint64_t apply(Books& b, const Context& ctx) const {
    b.balances[from] -= amount;
    b.balances[to] += amount;
    b.applied.push_back(ctx.sequence());
    return ctx.sequence();
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Transfer, from, to, amount)
};

// Changes the state, then throws: the store must rebuild its state from disk.
struct HalfDone {
  static constexpr std::string_view name = "half_done";
  std::string account;
  std::int64_t amount = 0;
  void apply(Books& b, const Context& ctx) const {
    b.balances[account] -= amount;
    b.applied.push_back(ctx.sequence());
    throw std::runtime_error("injected failure half-way through apply");
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(HalfDone, account, amount)
};

using ModelStore = Store<Books, Deposit, Transfer, HalfDone>;

// The acknowledged commands, by the sequence number execute() returned.
struct acknowledged {
  std::mutex mutex;
  std::map<std::uint64_t, std::variant<Deposit, Transfer>> by_sequence;
  std::vector<std::string> duplicates;
  void add(std::uint64_t seq, std::variant<Deposit, Transfer> c) {
    std::lock_guard g(mutex);
    if (!by_sequence.emplace(seq, std::move(c)).second)
      duplicates.push_back("sequence number " + std::to_string(seq) + " returned twice");
  }
};

// What a query found wrong with the state it saw, or "" when all invariants hold.
std::string broken_invariant(const Books& b) {
  std::int64_t total = 0;
  for (auto& [account, balance] : b.balances) {
    if (balance < 0) return account + " has a negative balance";
    total += balance;
  }
  if (total != b.deposited)
    return "balances total " + std::to_string(total) + ", deposits " + std::to_string(b.deposited);
  for (std::size_t i = 0; i < b.applied.size(); ++i)
    if (b.applied[i] != i + 1)
      return "applied[" + std::to_string(i) + "] is " + std::to_string(b.applied[i]);
  return "";
}

std::uint64_t env_or(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoull(v, nullptr, 10) : fallback;
}

std::uint64_t base_seed() {
  static const std::uint64_t seed = env_or(
      "PREVALENT_MODEL_SEED",
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) %
          1000000007);
  return seed;
}

struct round_stats {
  int commands = 0, rejected = 0, half_done = 0, queries = 0, snapshots = 0;
};

// One round: a fresh store with options drawn from `seed`, `threads` threads of random
// operations, then the checks described at the top.
void run_round(std::uint64_t seed, unsigned jitter_percent, round_stats& stats) {
  std::mt19937_64 rng(seed);
  store_options options;
  options.segment_bytes = 256 + rng() % 1793;
  options.keep_snapshots = 1 + static_cast<unsigned>(rng() % 2);
  options.snapshots.every_commands = rng() % 4 == 0 ? 0 : 3 + rng() % 30;
  options.snapshots.on_close = rng() % 2 == 0;
  std::vector<std::string> logged;
  std::mutex log_mutex;
  options.log = [&](const std::string& m) {
    std::lock_guard g(log_mutex);
    logged.push_back(m);
  };
  INFO("segment_bytes ", options.segment_bytes, ", keep_snapshots ", options.keep_snapshots,
       ", snapshots every ", options.snapshots.every_commands, " commands, jitter ", jitter_percent,
       "%");

  constexpr int threads = 4, accounts = 6;
  const int ops = static_cast<int>(env_or("PREVALENT_MODEL_OPS", 150));
  auto memory = make_memory_directory();
  auto dir = std::make_shared<test::jittery_directory>(memory, seed, jitter_percent);
  acknowledged acked;
  std::mutex problems_mutex;
  std::vector<std::string> problems;
  auto problem = [&](std::string what) {
    std::lock_guard g(problems_mutex);
    problems.push_back(std::move(what));
  };
  std::atomic<int> commands{0}, rejected{0}, half_done{0}, queries{0}, snapshots{0};

  std::string live;
  std::uint64_t live_seq = 0;
  {
    ModelStore store(dir, options);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t)
      workers.emplace_back([&, t] {
        std::mt19937_64 r(seed * 31 + static_cast<std::uint64_t>(t) + 1);
        auto account = [&] { return "acct" + std::to_string(r() % accounts); };
        for (int i = 0; i < ops; ++i) {
          const auto dice = r() % 100;
          try {
            if (dice < 35) {
              Deposit d{account(), static_cast<std::int64_t>(r() % 100) + 1};
              acked.add(store.execute(d), d);
              ++commands;
            } else if (dice < 65) {
              Transfer x{account(), account(), static_cast<std::int64_t>(r() % 300) + 1};
              try {
                acked.add(store.execute(x), x);
                ++commands;
              } catch (const std::invalid_argument&) {
                ++rejected;
              }
            } else if (dice < 75) {
              try {
                store.execute(HalfDone{account(), 1000000});
                problem("HalfDone did not throw");
              } catch (const std::runtime_error& e) {
                if (std::string(e.what()) != "injected failure half-way through apply") throw;
                ++half_done;
              }
            } else if (dice < 96) {
              auto [broken, newest] = store.query([](const Books& b) {
                return std::pair(broken_invariant(b), b.applied.empty() ? 0 : b.applied.back());
              });
              if (!broken.empty()) problem("query saw: " + broken);
              const auto durable = store.durable_sequence();
              if (newest > durable)
                problem("query returned sequence " + std::to_string(newest) + " while only " +
                        std::to_string(durable) + " was durable");
              ++queries;
            } else {
              store.snapshot();
              ++snapshots;
            }
          } catch (const std::exception& e) {
            problem(std::string("unexpected exception: ") + e.what());
          }
        }
      });
    for (auto& w : workers) w.join();

    {
      std::lock_guard g(problems_mutex);  // the first few: the rest usually follow from them
      for (std::size_t i = 0; i < std::min<std::size_t>(problems.size(), 5); ++i)
        FAIL_CHECK(problems[i]);
    }
    REQUIRE(!store.failed());
    live = test::dump_state(store);
    live_seq = store.last_sequence();

    // (1) A fresh store on a copy of the directory, taken between two file operations (an
    // automatic snapshot may still be being published).
    store_options plain = options;
    plain.snapshots = {};
    plain.log = nullptr;
    ModelStore copy(dir->copy_to_memory(), plain);
    CHECK(copy.last_sequence() == live_seq);
    CHECK(test::dump_state(copy) == live);
  }
  stats.commands += commands;
  stats.rejected += rejected;
  stats.half_done += half_done;
  stats.queries += queries;
  stats.snapshots += snapshots;

  CHECK(problems.empty());
  for (auto& p : acked.duplicates) FAIL_CHECK(p);
  {
    std::lock_guard g(log_mutex);
    for (auto& m : logged) FAIL_CHECK("logged: " << m);
  }

  // (2) The model: the acknowledged commands are exactly 1..N, replayed in order.
  CHECK(acked.by_sequence.size() == static_cast<std::size_t>(commands.load()));
  CHECK(live_seq == acked.by_sequence.size());
  Books model;
  std::uint64_t expected = 1;
  for (auto& [seq, command] : acked.by_sequence) {
    if (seq != expected) {
      FAIL_CHECK("acknowledged sequence numbers have a gap: " << seq << " where " << expected
                                                              << " was expected");
      break;
    }
    std::visit([&](auto& c) { c.apply(model, Context(seq, 0)); }, command);
    ++expected;
  }
  CHECK(broken_invariant(model).empty());
  CHECK(nlohmann::json(model).dump() == live);

  // (3) The store reopened on its own directory once closed.
  store_options plain = options;
  plain.snapshots = {};
  plain.log = nullptr;
  ModelStore reopened(memory, plain);
  CHECK(reopened.last_sequence() == live_seq);
  CHECK(test::dump_state(reopened) == live);
}

void run_rounds(unsigned jitter_percent, std::uint64_t salt) {
  const auto seed = base_seed();
  const auto rounds = env_or("PREVALENT_MODEL_ROUNDS", 12);
  INFO("seed ", seed, " (rerun with PREVALENT_MODEL_SEED=", seed, ")");
  round_stats stats;
  for (std::uint64_t round = 0; round < rounds; ++round) {
    INFO("round ", round);
    run_round(seed * 7919 + salt * 104729 + round, jitter_percent, stats);
  }
  MESSAGE("seed ", seed, ", ", rounds, " rounds, jitter ", jitter_percent, "%: ", stats.commands,
          " commands, ", stats.rejected, " rejected, ", stats.half_done, " rebuilds, ",
          stats.queries, " queries, ", stats.snapshots, " explicit snapshots");
  CHECK(stats.commands > 0);
  CHECK(stats.half_done > 0);
  CHECK(stats.rejected > 0);
}

}  // namespace

TEST_CASE("concurrent random operations keep the live state equal to disk and to the model") {
  run_rounds(0, 1);
}

TEST_CASE("the same with random yields and sleeps before file operations") { run_rounds(25, 2); }

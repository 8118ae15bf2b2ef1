// Simulated power loss at every kind of moment. A seeded workload of deposits and transfers
// (money is conserved by transfers), with snapshots and segment rolls, runs on the simulated
// disk; the power is cut after a random number of disk operations; the disk image that
// survives (synced bytes and synced directory entries only, plus a torn piece of unsynced
// writes) is opened by a fresh store and checked against the oracle: every acknowledged
// command is present, the state equals the model applied to a prefix of the accepted
// commands, and the conserved total holds. Every failing trial prints its seed.
// PREVALENT_POWER_TRIALS sets the number of trials (default 200; the long mode runs 10,000).
#include <doctest/doctest.h>

#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <variant>

#include <prevalent/testing/fault_injecting_directory.hpp>

#include "support.hpp"

using namespace prevalent;
using prevalent::testing::FaultInjectingDirectory;
using test::Deposit;
using test::Transfer;

namespace {

using Command = std::variant<Deposit, Transfer>;

struct workload {
  std::vector<Command> commands;
  std::vector<int> snapshot_after;  // take a snapshot after this many commands
};

workload make_workload(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  workload w;
  const int n = 20 + static_cast<int>(rng() % 60);
  for (int i = 0; i < n; ++i) {
    const std::string a = "acct" + std::to_string(rng() % 4),
                      b = "acct" + std::to_string(rng() % 4);
    if (i < 4 || rng() % 4 == 0)
      w.commands.push_back(Deposit{a, static_cast<std::int64_t>(rng() % 100)});
    else
      w.commands.push_back(Transfer{a, b, static_cast<std::int64_t>(rng() % 150) + 1});
    if (rng() % 10 == 0) w.snapshot_after.push_back(i + 1);
  }
  return w;
}

store_options options_for(std::uint64_t seed) {
  store_options o;
  o.segment_bytes = 256 + (seed % 4) * 256;  // rolls every few records
  o.keep_snapshots = 1 + seed % 2;
  o.verify_encoding = false;
  // Every third trial on an encrypted store: sealed records are longer and the segment header
  // is 56 bytes, so power cuts fall on other bytes, and recovery must still cut only torn
  // tails (a sealed record whose CRC matches always authenticates, since nobody tampers here).
  if (test::encrypted_trial(seed)) o.encryption_key = test::test_key();
  // Every other trial on a replicated store's epoch: version 3 segment headers (48 bytes, 72
  // encrypted), and encrypted records sealed with the version 3 associated data (issue 11).
  if (seed % 2 == 1) o.epoch = 7;
  return o;
}

struct run_result {
  std::vector<Command> accepted;  // passed validate, in order: acknowledged, then maybe one more
  std::size_t acknowledged = 0;
  std::int64_t deposited = 0;  // sum of acknowledged deposits
};

// Runs the workload until the first I/O error (the power cut).
run_result run(test::LedgerStore& store, const workload& w) {
  run_result r;
  int done = 0;
  for (const auto& c : w.commands) {
    try {
      std::visit([&](const auto& cmd) { store.execute(cmd); }, c);
      r.accepted.push_back(c);
      ++r.acknowledged;
    } catch (const std::invalid_argument&) {
      // rejected by validate: not accepted, nothing written
    } catch (const error&) {
      r.accepted.push_back(c);  // it may or may not have reached the disk
      return r;
    }
    ++done;
    if (std::find(w.snapshot_after.begin(), w.snapshot_after.end(), done) !=
        w.snapshot_after.end()) {
      try {
        store.snapshot();
      } catch (const error&) {
        return r;
      }
    }
  }
  return r;
}

test::Ledger model(const std::vector<Command>& commands, std::size_t n) {
  test::Ledger l;
  for (std::size_t i = 0; i < n; ++i) {
    const Context ctx(i + 1, 0);
    std::visit([&](const auto& cmd) { cmd.apply(l, ctx); }, commands[i]);
  }
  return l;
}

// Disk operations the workload `run(disk)` takes from start to end: a dry run that sizes the
// crash point.
template <class Run>
std::uint64_t disk_operations_of(Run run) {
  auto disk = std::make_shared<FaultInjectingDirectory>();
  run(disk);
  return disk->operations();
}

// Whether this trial runs: all of them, or the one PREVALENT_POWER_SEED names.
bool selected(std::uint64_t seed) {
  const char* only = std::getenv("PREVALENT_POWER_SEED");
  return !only || std::stoull(only) == seed;
}

int trials() {
  const char* env = std::getenv("PREVALENT_POWER_TRIALS");
  return env ? std::max(1, std::atoi(env)) : 200;
}

}  // namespace

TEST_CASE("every acknowledged command survives a power cut at a random disk operation") {
  const int n = trials();
  int cut_mid_run = 0, torn_tails = 0, cut_in_recovery = 0, encrypted = 0, encrypted_torn = 0;
  for (int trial = 0; trial < n; ++trial) {
    const std::uint64_t seed = 0x5eed0000u + static_cast<std::uint64_t>(trial);
    INFO("seed ", seed, " (rerun one trial with PREVALENT_POWER_SEED=", seed, ")");
    if (!selected(seed)) continue;
    const workload w = make_workload(seed);
    const std::uint64_t total_ops = disk_operations_of([&](auto disk) {
      test::LedgerStore store(disk, options_for(seed));
      run(store, w);
    });
    std::mt19937_64 rng(seed);
    const std::uint64_t cut = 1 + rng() % total_ops;

    auto disk = std::make_shared<FaultInjectingDirectory>();
    run_result r;
    try {
      test::LedgerStore store(disk, options_for(seed));
      disk->crash_after(cut - disk->operations());
      r = run(store, w);
      if (store.failed()) ++cut_mid_run;
    } catch (const error&) {
      continue;  // the power went out while the store was being created: nothing to check
    }

    auto image = disk->power_loss(seed);
    encrypted += test::encrypted_trial(seed);

    // Checks a disk image after the power cut against the oracle.
    auto verify = [&](std::shared_ptr<Directory> dir, bool first_cut) {
      test::LedgerStore recovered(std::move(dir), options_for(seed));
      if (first_cut && recovered.recovery().torn_bytes > 0) {
        ++torn_tails;
        encrypted_torn += test::encrypted_trial(seed);
      }
      const std::uint64_t last = recovered.last_sequence();
      // Every acknowledged command is present ...
      REQUIRE_MESSAGE(last >= r.acknowledged, "acknowledged ", r.acknowledged, ", recovered ",
                      last);
      // ... nothing beyond what was accepted appeared ...
      REQUIRE(last <= r.accepted.size());
      // ... and the state is the model applied to that prefix, with money conserved.
      const test::Ledger expected = model(r.accepted, last);
      auto state = recovered.query([](const test::Ledger& l) { return l; });
      CHECK(nlohmann::json(state).dump() == nlohmann::json(expected).dump());
      CHECK(state.total() == expected.total());
      // The recovered store goes on.
      CHECK(recovered.execute(Deposit{"after", 1}) == 1);
    };

    // A compound failure first: the power goes out again while the store recovers (cutting a
    // torn tail, removing an unfinished segment, starting a segment) or just after.
    std::uint64_t recovery_ops;
    {
      auto dry = FaultInjectingDirectory::holding(*image);
      test::LedgerStore store(dry, options_for(seed));
      recovery_ops = dry->operations();
    }
    if (recovery_ops > 0) {
      INFO("second power cut at disk operation ", recovery_ops, " of the recovery");
      auto again = FaultInjectingDirectory::holding(*image);
      again->crash_after(1 + rng() % recovery_ops);
      try {
        test::LedgerStore store(again, options_for(seed));
      } catch (const error&) {
        ++cut_in_recovery;
      }
      verify(again->power_loss(seed + 1), false);
    }
    verify(image, true);
  }
  MESSAGE(n, " power cuts, ", cut_mid_run, " in the middle of the workload, ", torn_tails,
          " torn tails cut on recovery, ", cut_in_recovery, " second power cuts during recovery; ",
          encrypted, " trials encrypted, ", encrypted_torn, " of them with a torn tail cut");
}

// ---- the concurrent workload ----
// Three writer threads send seeded deposits and transfers at once while automatic snapshots run
// on the store's own thread and segments roll; the power is cut after a random disk operation.
// Thread interleaving is up to the scheduler, so the oracle does not predict the order: each
// command records, when applied live, which sequence number it got (apply runs once per
// sequence number under the store's lock), and the check replays that record.

namespace {

struct live_record {
  std::mutex mutex;
  std::map<std::uint64_t, Command> by_sequence;
  void add(std::uint64_t sequence, Command c) {
    std::lock_guard g(mutex);
    by_sequence.insert_or_assign(sequence, std::move(c));
  }
};
live_record* recording = nullptr;  // set only while a live workload runs

// The ledger's commands, returning the sequence number they were given and recording it.
struct RecordedDeposit {
  static constexpr std::string_view name = "deposit";
  std::string account;
  std::int64_t amount = 0;
  std::uint64_t apply(test::Ledger& l, const Context& ctx) const {
    Deposit{account, amount}.apply(l, ctx);
    if (recording) recording->add(ctx.sequence(), Deposit{account, amount});
    return ctx.sequence();
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(RecordedDeposit, account, amount)
};

struct RecordedTransfer {
  static constexpr std::string_view name = "transfer";
  static constexpr int version = 2;
  std::string from, to;
  std::int64_t amount = 0;
  void validate(const test::Ledger& l, const Context& ctx) const {
    Transfer{from, to, amount}.validate(l, ctx);
  }
  std::uint64_t apply(test::Ledger& l, const Context& ctx) const {
    Transfer{from, to, amount}.apply(l, ctx);
    if (recording) recording->add(ctx.sequence(), Transfer{from, to, amount});
    return ctx.sequence();
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(RecordedTransfer, from, to, amount)
};

using RecordedStore = Store<test::Ledger, RecordedDeposit, RecordedTransfer>;

store_options concurrent_options_for(std::uint64_t seed) {
  store_options o = options_for(seed);
  o.snapshots.every_commands = 4 + seed % 12;  // automatic snapshots on the store's thread
  return o;
}

// Each of `writer_threads` threads sends its share until the first I/O error; returns the
// highest acknowledged sequence number of all threads. Account names get `pad` extra bytes,
// to make records span sectors.
std::uint64_t run_concurrently(RecordedStore& store, std::uint64_t seed, int writer_threads,
                               std::size_t pad = 0) {
  const std::string padding(pad, '.');
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> highest(static_cast<std::size_t>(writer_threads), 0);
  for (int t = 0; t < writer_threads; ++t)
    threads.emplace_back([&, t] {
      const workload w = make_workload(seed * writer_threads + static_cast<std::uint64_t>(t));
      for (const auto& c : w.commands) {
        try {
          const std::uint64_t sequence = std::visit(
              [&](const auto& cmd) {
                if constexpr (std::is_same_v<std::decay_t<decltype(cmd)>, Deposit>)
                  return store.execute(RecordedDeposit{cmd.account + padding, cmd.amount});
                else
                  return store.execute(
                      RecordedTransfer{cmd.from + padding, cmd.to + padding, cmd.amount});
              },
              c);
          highest[static_cast<std::size_t>(t)] =
              std::max(highest[static_cast<std::size_t>(t)], sequence);
        } catch (const std::invalid_argument&) {
          // rejected by validate: nothing written
        } catch (const error&) {
          return;  // the power is out
        }
      }
    });
  for (auto& th : threads) th.join();
  return *std::max_element(highest.begin(), highest.end());
}

struct concurrent_trial_result {
  bool ran = false;  // false: the power went out while the store was being created
  bool cut_mid_run = false;
  bool from_snapshot = false;
  std::string torn_reason;  // what recovery cut, if anything
};

// One trial: `writers` threads run the seeded workload on the simulated disk until the power
// is cut after a random disk operation; the surviving image is opened and checked against the
// live order of commands.
concurrent_trial_result concurrent_trial(std::uint64_t seed, int writers,
                                         const store_options& options, std::size_t pad = 0) {
  concurrent_trial_result out;
  const std::uint64_t total_ops = disk_operations_of([&](auto disk) {
    RecordedStore store(disk, options);
    run_concurrently(store, seed, writers, pad);
  });
  std::mt19937_64 rng(seed);
  const std::uint64_t cut = 1 + rng() % total_ops;

  auto disk = std::make_shared<FaultInjectingDirectory>();
  live_record live;
  std::uint64_t acknowledged = 0;
  try {
    RecordedStore store(disk, options);
    disk->crash_after(cut - std::min(cut - 1, disk->operations()));
    recording = &live;
    acknowledged = run_concurrently(store, seed, writers, pad);
    recording = nullptr;
    out.cut_mid_run = store.failed();
    // Under `interval` an acknowledged command is only written to the OS: a power loss keeps
    // what was synced (the durable mark stopped moving at the cut).
    if (options.sync.mode() == sync_policy::kind::interval)
      acknowledged = std::min(acknowledged, store.durable_sequence());
  } catch (const error&) {
    recording = nullptr;
    return out;
  }
  out.ran = true;

  auto image = disk->power_loss(seed);
  RecordedStore recovered(image, options);
  const std::uint64_t last = recovered.last_sequence();
  out.from_snapshot = recovered.recovery().replayed < last;
  out.torn_reason = recovered.recovery().torn_reason;
  // Every acknowledged command is present, and nothing that was never applied appeared.
  REQUIRE_MESSAGE(last >= acknowledged, "acknowledged up to ", acknowledged, ", recovered ", last);
  REQUIRE(last <= (live.by_sequence.empty() ? 0 : live.by_sequence.rbegin()->first));
  // The state is the live order of commands replayed up to the recovered prefix.
  std::vector<Command> in_order;
  for (std::uint64_t s = 1; s <= last; ++s) {
    auto it = live.by_sequence.find(s);
    REQUIRE_MESSAGE(it != live.by_sequence.end(), "sequence ", s, " was never applied live");
    in_order.push_back(it->second);
  }
  const test::Ledger expected = model(in_order, last);
  auto state = recovered.query([](const test::Ledger& l) { return l; });
  CHECK(nlohmann::json(state).dump() == nlohmann::json(expected).dump());
  CHECK(state.total() == expected.total());
  CHECK(recovered.execute(RecordedDeposit{"after", 1}) == last + 1);
  return out;
}

}  // namespace

TEST_CASE("concurrent writers with automatic snapshots: a power cut loses nothing acknowledged") {
  const int n = trials();
  constexpr int writers = 3;
  int cut_mid_run = 0, snapshots_recovered = 0;
  for (int trial = 0; trial < n; ++trial) {
    const std::uint64_t seed = 0xc0c0000u + static_cast<std::uint64_t>(trial);
    INFO("seed ", seed, " (rerun one trial with PREVALENT_POWER_SEED=", seed, ")");
    if (!selected(seed)) continue;
    auto r = concurrent_trial(seed, writers, concurrent_options_for(seed));
    cut_mid_run += r.cut_mid_run;
    snapshots_recovered += r.from_snapshot;
  }
  MESSAGE(n, " power cuts under ", writers, " writers, ", cut_mid_run,
          " in the middle of the workload, ", snapshots_recovered, " recovered from a snapshot");
}

TEST_CASE("a power cut during a group write whose sectors persist in any combination") {
  // Issue 7, defect 4: eight writers make group writes of several records that span several
  // 512-byte sectors (under `interval`, several writes before one sync); the simulated disk
  // keeps any subset of the unsynced writes' sectors. A hole
  // followed by verifying records of the same unsynced write must be cut (nothing in it was
  // acknowledged), never refused as corruption; acknowledged commands all survive. Before the
  // run index, recovery refused such a store ("zero-filled bytes before later records").
  const int n = trials();
  constexpr int writers = 8;
  int holes_cut = 0, torn = 0, encrypted_torn = 0;
  for (int trial = 0; trial < n; ++trial) {
    const std::uint64_t seed = 0x6a0e0000u + static_cast<std::uint64_t>(trial);
    INFO("seed ", seed, " (rerun one trial with PREVALENT_POWER_SEED=", seed, ")");
    if (!selected(seed)) continue;
    store_options o = options_for(seed);
    o.segment_bytes = 64 << 10;  // groups, not rolls, decide where writes end
    o.snapshots.every_commands = 100;
    // Odd trials: `interval`, where several group writes make up one unsynced run (the
    // simulated disk syncs at once, so under `always` groups stay small).
    if (trial % 2 == 1) o.sync = sync_policy::interval(std::chrono::milliseconds(2));
    auto r = concurrent_trial(seed, writers, o, 200);  // records of 250-450 bytes
    torn += !r.torn_reason.empty();
    encrypted_torn += !r.torn_reason.empty() && test::encrypted_trial(seed);
    holes_cut += r.torn_reason.find("same unsynced write") != std::string::npos;
  }
  MESSAGE(n, " power cuts under ", writers, " writers: ", torn, " torn tails cut, ", holes_cut,
          " of them with verified records of the same unsynced write after a hole; ",
          encrypted_torn, " torn tails cut on encrypted stores (every third trial)");
  // The point of the test: the case really happened, and recovery took it.
  if (n >= 100) CHECK(holes_cut > 0);
  // The encrypted variant ran into torn tails too, and cut them (unless PREVALENT_ENCRYPT=none).
  if (n >= 100 && test::encrypted_trial(0)) CHECK(encrypted_torn > 0);
}

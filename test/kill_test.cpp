// SIGKILL at random moments: a child process executes commands from two threads (with
// snapshots and segment rolls going on) and reports every acknowledged sequence number on a
// pipe; the parent kills it, reopens the store and checks that every acknowledged command is
// there, that the commands form a gap-free prefix, and that the state is what replaying that
// prefix gives. Trials accumulate on one directory, so later ones recover earlier recoveries.
// A second case runs a quarter as many trials on an encrypted store (PREVALENT_ENCRYPT=all: as
// many; =none: skipped).
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <random>
#include <thread>

#include "support.hpp"

using namespace prevalent;

namespace {

// Returns its own sequence number, so the child can report exactly what was acknowledged.
struct Stamp {
  static constexpr std::string_view name = "stamp";
  std::int64_t weight = 1;
  std::uint64_t apply(test::Ledger& l, const Context& ctx) const {
    l.applied.push_back(ctx.sequence());
    l.balances["weight"] += weight;
    return ctx.sequence();
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Stamp, weight)
};
using StampStore = Store<test::Ledger, Stamp>;

// Even trials run under sync policy `always`, odd ones under `interval`: both promise that a
// process crash loses no acknowledged command. Odd trials also use automatic snapshots.
store_options kill_options(bool encrypted, int trial = 0) {
  store_options o;
  if (encrypted) o.encryption_key = test::test_key();
  if (trial % 2 == 1) {
    o.sync = sync_policy::interval(std::chrono::milliseconds(20));
    o.snapshots.every_commands = 300;
  }
  o.segment_bytes = 16 << 10;  // rolls every ~100 records
  return o;
}

[[noreturn]] void child(const std::filesystem::path& dir, int out, bool encrypted, int trial) {
  try {
    StampStore store(dir, kill_options(encrypted, trial));
    auto writer = [&] {
      for (;;) {
        const std::uint64_t seq = store.execute(Stamp{1});  // acknowledged
        if (::write(out, &seq, sizeof seq) != sizeof seq) ::_exit(3);
      }
    };
    std::thread a(writer), b(writer);
    std::thread snapshots([&] {
      for (;;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(7));
        if (trial % 2 == 0) store.snapshot();  // odd trials snapshot automatically
      }
    });
    a.join();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child failed: %s\n", e.what());
  }
  ::_exit(2);
}

int trials() {
  const char* env = std::getenv("PREVALENT_KILL_TRIALS");
  return env ? std::max(1, std::atoi(env)) : 200;
}

// Trials share a directory, so later ones recover what earlier recoveries left; the long
// mode starts a fresh one every 1,000 trials to keep each trial's state small.
void kill_trials(const int n, const bool encrypted) {
  std::optional<test::temp_dir> dir;
  std::mt19937 rng(std::random_device{}());
  std::uint64_t total_acked = 0;
  int torn_tails = 0;
  for (int trial = 0; trial < n; ++trial) {
    if (trial % 1000 == 0) dir.emplace();
    const test::temp_dir& tmp = *dir;
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      ::close(fds[0]);
      child(tmp.path(), fds[1], encrypted, trial);
    }
    ::close(fds[1]);
    const auto delay = std::chrono::milliseconds(5 + rng() % 120);
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO("trial ", trial, ", killed after ", delay.count(), " ms");
    REQUIRE_MESSAGE(WIFSIGNALED(status), "child exited by itself with status ",
                    WEXITSTATUS(status));

    std::vector<std::uint64_t> acked;
    std::uint64_t seq;
    while (::read(fds[0], &seq, sizeof seq) == sizeof seq) acked.push_back(seq);
    ::close(fds[0]);
    total_acked += acked.size();

    StampStore store(tmp.path(), kill_options(encrypted));
    if (store.recovery().torn_bytes > 0) ++torn_tails;
    const std::uint64_t last = store.last_sequence();
    auto [applied, weight] = store.query([](const test::Ledger& l) {
      auto it = l.balances.find("weight");
      return std::pair(l.applied, it == l.balances.end() ? 0 : it->second);
    });
    // Every acknowledged command is present ...
    const std::uint64_t highest_acked =
        acked.empty() ? 0 : *std::max_element(acked.begin(), acked.end());
    REQUIRE_MESSAGE(highest_acked <= last, "acknowledged ", highest_acked, " lost; recovered to ",
                    last);
    // ... and the state is exactly the replay of the gap-free prefix 1..last.
    REQUIRE(applied.size() == last);
    std::uint64_t first_wrong = 0;  // 1-based position of the first out-of-order command
    for (std::uint64_t i = 0; i < last && first_wrong == 0; ++i)
      if (applied[i] != i + 1) first_wrong = i + 1;
    REQUIRE_MESSAGE(first_wrong == 0, "command ", first_wrong, " of the state has sequence number ",
                    applied[first_wrong - 1]);
    CHECK(weight == static_cast<std::int64_t>(last));
  }
  const std::string kills = encrypted ? " kills of an encrypted store, " : " kills, ";
  MESSAGE(n, kills, total_acked, " acknowledged commands checked, ", torn_tails,
          " torn tails recovered");
  CHECK(total_acked > 0);
}

}  // namespace

TEST_CASE("every acknowledged command survives SIGKILL at a random moment") {
  kill_trials(trials(), false);
}

TEST_CASE("every acknowledged command of an encrypted store survives SIGKILL") {
  const char* env = std::getenv("PREVALENT_ENCRYPT");
  const std::string mode = env ? env : "";
  if (mode == "none") return;
  kill_trials(mode == "all" ? trials() : std::max(1, trials() / 4), true);
}

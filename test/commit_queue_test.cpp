// The commit queue alone, with a fake committer and no files: the waiter protocol (futex words
// by batch parity, the seqlock of batches taken, backpressure) must never lose a wake-up and
// never release a waiter early; on_safe() hooks run exactly once, in order, with failures.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <prevalent/error.hpp>

#include "../lib/commit_queue.hpp"

using namespace prevalent;
using detail::commit_queue;
using detail::pending_record;
using kind = sync_policy::kind;
using namespace std::chrono_literals;

namespace {

std::string payload(std::size_t n) { return std::string(n, 'x'); }

// Takes batches and completes them at random moments, publishing its own marks *before* it
// tells the queue, so that a waiter can check the queue did not release it early.
class fake_committer {
 public:
  fake_committer(commit_queue& q, kind mode) : q_(q), mode_(mode), thread_([this] { run(); }) {}
  ~fake_committer() {
    q_.stop();
    thread_.join();
  }
  std::atomic<std::uint64_t> written{0};
  std::atomic<std::uint64_t> durable{0};
  std::atomic<std::uint64_t> batches{0};

 private:
  void pause(std::mt19937& rng) {
    const unsigned r = rng() % 8;
    if (r < 3) return;  // at once
    if (r < 6) return std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::microseconds(rng() % 300));
  }
  void run() {
    std::mt19937 rng(12345);
    std::vector<pending_record> batch;
    for (;;) {
      std::optional<commit_queue::clock::time_point> until;
      if (mode_ == kind::interval && q_.written() > q_.durable())
        until = commit_queue::clock::now() + 1ms;
      const auto b = q_.take(batch, until);
      pause(rng);
      if (!batch.empty()) {
        ++batches;
        written = batch.back().seq;
        q_.written_through(batch.back().seq, b.bytes);
      }
      const bool sync =
          mode_ == kind::always || b.sync_wanted > q_.durable() || b.stop || rng() % 4 == 0;
      if (sync && q_.written() > q_.durable()) {
        pause(rng);
        const std::uint64_t target = q_.written();
        durable = target;
        q_.durable_through(target, mode_ == kind::always ? b.number : 0);
      }
      batch.clear();
      if (b.stop && q_.last_appended() <= q_.written()) return;
    }
  }
  commit_queue& q_;
  kind mode_;
  std::thread thread_;
};

// What each waiter thread is doing, for the watchdog's report.
struct slot {
  std::atomic<std::uint64_t> seq{0};  // 0: not waiting
  std::atomic<std::int64_t> since_ns{0};
  std::atomic<int> how{0};
};

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             commit_queue::clock::now().time_since_epoch())
      .count();
}

struct stress_result {
  std::uint64_t waits = 0;
  std::uint64_t early = 0;  // waiters released before their seq was covered
  std::uint64_t hooks_wrong = 0;
  std::uint64_t batches = 0;
  double seconds = 0;
};

// `waves` waves of `threads` threads; each appends and waits `rounds` times, alternating the
// three kinds of wait, and registers an on_safe hook for every record.
stress_result stress(kind mode, int waves, int threads, int rounds) {
  const auto started = commit_queue::clock::now();
  // Small enough that push() blocks on backpressure now and then.
  commit_queue q(mode, 2048, "stress queue");
  stress_result out;
  std::atomic<std::uint64_t> waits{0}, early{0}, hooks_wrong{0};
  const std::size_t total = std::size_t(waves) * threads * rounds;
  std::vector<std::atomic<int>> hook_calls(total + 1);
  std::vector<slot> slots(threads);
  std::atomic<bool> done{false};
  {
    fake_committer committer(q, mode);
    std::thread watchdog([&] {
      while (!done.load()) {
        std::this_thread::sleep_for(50ms);
        for (int i = 0; i < threads; ++i) {
          const std::uint64_t seq = slots[i].seq.load();
          if (seq == 0 || now_ns() - slots[i].since_ns.load() < 10'000'000'000) continue;
          std::fprintf(stderr,
                       "STUCK: thread %d in wait kind %d for seq %llu for 10 s; queue: "
                       "appended %llu written %llu durable %llu; committer: written %llu "
                       "durable %llu batches %llu\n",
                       i, slots[i].how.load(), (unsigned long long)seq,
                       (unsigned long long)q.last_appended(), (unsigned long long)q.written(),
                       (unsigned long long)q.durable(),
                       (unsigned long long)committer.written.load(),
                       (unsigned long long)committer.durable.load(),
                       (unsigned long long)committer.batches.load());
          std::abort();  // the stuck threads cannot be joined: fail the whole test binary
        }
      }
    });
    for (int wave = 0; wave < waves; ++wave) {
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t, wave] {
          std::mt19937 rng(wave * 7919 + t);
          for (int r = 0; r < rounds; ++r) {
            const std::uint64_t seq = q.push(0, payload(1 + rng() % 64));
            q.on_safe(seq, [&, seq](std::exception_ptr e) {
              const auto& mark = mode == kind::always ? committer.durable : committer.written;
              if (e || mark.load() < seq || seq >= hook_calls.size()) ++hooks_wrong;
              if (seq < hook_calls.size()) ++hook_calls[seq];
            });
            const int how = (t + r) % 3;
            slots[t].how = how;
            slots[t].since_ns = now_ns();
            slots[t].seq = seq;
            if (how == 0) q.wait_safe(seq);
            if (how == 1) q.wait_written(seq);
            if (how == 2) q.wait_durable(seq);
            slots[t].seq = 0;
            const std::uint64_t covered = how == 1 || (how == 0 && mode == kind::interval)
                                              ? committer.written.load()
                                              : committer.durable.load();
            if (covered < seq) ++early;
            ++waits;
          }
        });
      for (auto& th : pool) th.join();
    }
    done = true;
    watchdog.join();
    out.batches = committer.batches.load();
  }  // the committer stops here: every hook has run
  for (std::size_t seq = 1; seq <= total; ++seq)
    if (hook_calls[seq].load() != 1) ++hooks_wrong;
  out.waits = waits;
  out.early = early;
  out.hooks_wrong = hooks_wrong;
  out.seconds = std::chrono::duration<double>(commit_queue::clock::now() - started).count();
  return out;
}

void report(const char* name, const stress_result& r, int threads_total) {
  MESSAGE(std::string(name) << ": " << threads_total << " threads, " << r.waits << " waits in "
                            << r.batches << " batches, " << r.seconds << " s");
}

}  // namespace

TEST_CASE("stress: no lost wake-up and no early release under policy always") {
  const int waves = 16, threads = 250, rounds = 20;
  const auto r = stress(kind::always, waves, threads, rounds);
  report("always", r, waves * threads);
  CHECK(r.waits == std::uint64_t(waves) * threads * rounds);
  CHECK(r.early == 0);
  CHECK(r.hooks_wrong == 0);
  CHECK(r.batches > 1);
}

TEST_CASE("stress: no lost wake-up and no early release under policy interval") {
  const int waves = 8, threads = 250, rounds = 20;
  const auto r = stress(kind::interval, waves, threads, rounds);
  report("interval", r, waves * threads);
  CHECK(r.waits == std::uint64_t(waves) * threads * rounds);
  CHECK(r.early == 0);
  CHECK(r.hooks_wrong == 0);
}

namespace {

// Drives the queue by hand from the test thread, as the committer would.
struct manual {
  commit_queue q;
  std::vector<pending_record> batch;
  explicit manual(kind mode) : q(mode, 1 << 20, "manual queue") {}
  commit_queue::batch take() {
    batch.clear();
    return q.take(batch, commit_queue::clock::now());
  }
};

std::exception_ptr failure() {
  return std::make_exception_ptr(
      std::system_error(std::make_error_code(std::errc::io_error), "disk on fire"));
}

}  // namespace

TEST_CASE("on_safe: called once per hook, in seq then registration order, when durable") {
  manual m(kind::always);
  for (int i = 0; i < 3; ++i) m.q.push(0, payload(8));
  std::vector<std::string> calls;
  auto hook = [&](std::string name) {
    return [&calls, name](std::exception_ptr e) { calls.push_back(e ? name + "!" : name); };
  };
  m.q.on_safe(3, hook("3"));
  m.q.on_safe(1, hook("1a"));
  m.q.on_safe(2, hook("2"));
  m.q.on_safe(1, hook("1b"));
  const auto b = m.take();
  REQUIRE(m.batch.size() == 3);
  m.q.written_through(3, b.bytes);
  CHECK(calls.empty());  // written is not safe under `always`
  m.q.durable_through(2, b.number);
  CHECK(calls == std::vector<std::string>{"1a", "1b", "2"});
  m.q.durable_through(3, b.number);
  CHECK(calls == std::vector<std::string>{"1a", "1b", "2", "3"});
  m.q.durable_through(3, 0);  // nothing runs twice
  CHECK(calls.size() == 4);
}

TEST_CASE("on_safe: a seq already safe is called back at once, on the calling thread") {
  manual m(kind::always);
  m.q.reset(10);  // records through 10 are durable
  bool called = false;
  m.q.on_safe(10, [&](std::exception_ptr e) { called = !e; });
  CHECK(called);

  manual none(kind::none);  // nothing to wait for under `none`
  const auto seq = none.q.push(0, payload(4));
  called = false;
  none.q.on_safe(seq, [&](std::exception_ptr e) { called = !e; });
  CHECK(called);
}

TEST_CASE("on_safe: under policy interval a write is enough") {
  manual m(kind::interval);
  const auto seq = m.q.push(0, payload(4));
  int called = 0;
  m.q.on_safe(seq, [&](std::exception_ptr e) { called += e ? 100 : 1; });
  const auto b = m.take();
  CHECK(called == 0);
  m.q.written_through(seq, b.bytes);
  CHECK(called == 1);
}

TEST_CASE("on_safe: failure reaches every pending hook once, and later registrations") {
  manual m(kind::always);
  for (int i = 0; i < 4; ++i) m.q.push(0, payload(4));
  const auto b = m.take();
  m.q.written_through(4, b.bytes);
  m.q.durable_through(2, 0);
  std::vector<std::string> results;
  auto hook = [&](std::exception_ptr e) {
    if (!e) return results.push_back("ok");
    try {
      std::rethrow_exception(e);
    } catch (const std::system_error& err) {
      results.push_back(err.what());
    }
  };
  m.q.on_safe(3, hook);
  m.q.on_safe(4, hook);
  m.q.fail(failure());
  REQUIRE(results.size() == 2);
  CHECK(results[0].find("disk on fire") != std::string::npos);
  CHECK(results[1].find("disk on fire") != std::string::npos);
  m.q.on_safe(2, hook);  // was durable before the failure
  CHECK(results.back() == "ok");
  m.q.on_safe(4, hook);  // never will be
  CHECK(results.back().find("disk on fire") != std::string::npos);
  m.q.close_hooks();  // nothing left to call
  CHECK(results.size() == 4);
  CHECK_THROWS_AS(m.q.push(0, payload(4)), error);
}

TEST_CASE("on_safe: hooks left at close get errc::closed") {
  manual m(kind::always);
  std::exception_ptr got;
  m.q.on_safe(5, [&](std::exception_ptr e) { got = e; });
  m.q.stop();
  m.q.close_hooks();
  REQUIRE(got);
  try {
    std::rethrow_exception(got);
  } catch (const error& e) {
    CHECK(e.code() == make_error_code(errc::closed));
  }
}

TEST_CASE("waiters of a failed queue throw the failure instead of sleeping") {
  manual m(kind::always);
  const auto seq = m.q.push(0, payload(4));
  std::thread waiter([&] { CHECK_THROWS_AS(m.q.wait_safe(seq), std::system_error); });
  std::this_thread::sleep_for(5ms);
  m.q.fail(failure());
  waiter.join();
  CHECK(m.q.failed());
}

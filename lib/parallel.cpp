#include "prevalent/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

namespace prevalent::detail {

namespace {

// Snapshot encoding is background work: on a machine with few cores its threads would
// otherwise take the cores that writers need and raise their tail latency (bench/scale: writer
// p99 during a snapshot). Linux applies nice values per thread; best effort, so a failure (a
// sandbox forbidding it) changes nothing else.
void lower_this_threads_priority() {
  const auto tid = static_cast<id_t>(::gettid());
  errno = 0;
  const int now = ::getpriority(PRIO_PROCESS, tid);
  if (errno == 0 && now < background_nice) (void)::setpriority(PRIO_PROCESS, tid, background_nice);
}

}  // namespace

unsigned pool_size(std::size_t tasks) {
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  return static_cast<unsigned>(std::clamp<std::size_t>(tasks, 1, hw));
}

void parallel_for(std::size_t n, const std::function<void(std::size_t)>& f) {
  if (n == 0) return;
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex m;
  std::exception_ptr first;
  auto run = [&] {
    for (std::size_t i; !stop && (i = next++) < n;) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard g(m);
        if (!first) first = std::current_exception();
        stop = true;
      }
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 1; t < pool_size(n); ++t) threads.emplace_back(run);
  run();
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

void ordered_pipeline(std::size_t n, std::size_t window,
                      const std::function<std::string(std::size_t)>& produce,
                      const std::function<void(std::size_t, std::string&)>& consume) {
  if (n == 0) return;
  window = std::max<std::size_t>(window, 1);
  std::mutex m;
  std::condition_variable changed;
  std::vector<std::optional<std::string>> slots(window);  // result i lives in slot i % window
  std::size_t next = 0, consumed = 0;
  bool stop = false;
  std::exception_ptr first;
  auto work = [&] {
    lower_this_threads_priority();
    std::unique_lock lock(m);
    for (;;) {
      changed.wait(lock, [&] { return stop || next >= n || next < consumed + window; });
      if (stop || next >= n) return;
      const std::size_t i = next++;
      lock.unlock();
      std::string out;
      std::exception_ptr failed;
      try {
        out = produce(i);
      } catch (...) {
        failed = std::current_exception();
      }
      lock.lock();
      if (failed) {
        if (!first) first = failed;
        stop = true;
      } else {
        slots[i % window] = std::move(out);
      }
      changed.notify_all();
    }
  };
  std::vector<std::thread> workers;
  for (unsigned t = 0; t < pool_size(n); ++t) workers.emplace_back(work);
  try {
    for (std::size_t i = 0; i < n; ++i) {
      std::string result;
      {
        std::unique_lock lock(m);
        changed.wait(lock, [&] { return stop || slots[i % window].has_value(); });
        if (stop) break;
        result = std::move(*slots[i % window]);
        slots[i % window].reset();
      }
      consume(i, result);
      {
        std::lock_guard lock(m);
        ++consumed;
      }
      changed.notify_all();
    }
  } catch (...) {
    std::lock_guard lock(m);
    if (!first) first = std::current_exception();
    stop = true;
  }
  {
    std::lock_guard lock(m);
    if (first) stop = true;
  }
  changed.notify_all();
  for (auto& t : workers) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace prevalent::detail

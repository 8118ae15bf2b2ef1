// What a process crash loses under sync policy `none`: a child process runs 4 writer threads
// that record, in memory shared with the parent, when each sequence number was acknowledged;
// the parent SIGKILLs it after a while, reopens the store and counts the acknowledged commands
// that are not there, and how long before the kill the first of them was acknowledged.
#pragma once

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>
#include <vector>

#include "measure.hpp"

namespace bench {

struct crash_loss {
  double lost_commands = 0;  // acknowledged, then missing after the reopen
  double lost_ms = 0;        // from the first lost acknowledgement to the kill
};

// `open_store(dir, options)` returns a store whose `execute(make(i))` returns the command's
// sequence number. Runs `runs` kills and returns the medians.
template <class Store, class Make>
crash_loss none_crash_window(const std::filesystem::path& dir, prevalent::store_options options,
                             Make make, int runs, std::chrono::milliseconds run_for) {
  constexpr std::size_t slots = 1u << 23;  // acknowledgement times by sequence number
  std::vector<double> lost, lost_ms;
  for (int r = 0; r < runs; ++r) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    void* mem = ::mmap(nullptr, slots * sizeof(std::int64_t), PROT_READ | PROT_WRITE,
                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return {};
    auto* acked_at = static_cast<std::atomic<std::int64_t>*>(mem);  // ns since epoch, 0: not
    const pid_t pid = ::fork();
    if (pid == 0) {
      Store store(dir, options);
      std::vector<std::thread> writers;
      for (int t = 0; t < 4; ++t)
        writers.emplace_back([&, t] {
          for (std::uint64_t i = 0;; ++i) {
            const std::uint64_t seq = store.execute(make(i * 4 + static_cast<std::uint64_t>(t)));
            if (seq < slots)
              acked_at[seq].store(std::chrono::steady_clock::now().time_since_epoch().count());
          }
        });
      for (auto& w : writers) w.join();
      ::_exit(0);
    }
    std::this_thread::sleep_for(run_for);
    ::kill(pid, SIGKILL);
    const std::int64_t killed_at = std::chrono::steady_clock::now().time_since_epoch().count();
    ::waitpid(pid, nullptr, 0);
    std::uint64_t recovered;
    {
      Store store(dir, options);
      recovered = store.last_sequence();
    }
    std::uint64_t missing = 0;
    std::int64_t first_lost = killed_at;
    for (std::uint64_t s = recovered + 1; s < slots; ++s) {
      const std::int64_t t = acked_at[s].load();
      if (t == 0) continue;
      ++missing;
      first_lost = std::min(first_lost, t);
    }
    lost.push_back(static_cast<double>(missing));
    lost_ms.push_back(static_cast<double>(killed_at - first_lost) / 1e6);
    ::munmap(mem, slots * sizeof(std::int64_t));
  }
  return {median(lost), median(lost_ms)};
}

}  // namespace bench

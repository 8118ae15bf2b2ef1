// Decides when a store takes an automatic snapshot and takes it on its own thread, so that
// writers never wait for serialization or disk. Triggers (any of them): commands since the
// last snapshot, journal bytes since the last snapshot, time since the last snapshot (only if
// something changed). The store reports each command with note_command() and each finished
// snapshot with snapshot_taken().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "prevalent/options.hpp"

namespace prevalent {

class SnapshotScheduler {
 public:
  struct counters {
    std::uint64_t commands = 0;
    std::uint64_t journal_bytes = 0;
  };

  // Starts the thread if `policy` has a trigger. `take` runs a snapshot; its exceptions are
  // passed to `log` and the next trigger tries again.
  SnapshotScheduler(snapshot_policy policy, std::function<void()> take, log_function log);
  // Stops the thread, waiting for a snapshot in progress to finish.
  ~SnapshotScheduler();
  SnapshotScheduler(const SnapshotScheduler&) = delete;
  SnapshotScheduler& operator=(const SnapshotScheduler&) = delete;

  // Counts one command of `journal_bytes` framed bytes. Cheap: called on the write path.
  void note_command(std::uint64_t journal_bytes);
  // Totals so far, read when a snapshot captures the state.
  counters totals() const { return {commands_.load(), bytes_.load()}; }
  // A snapshot covering the totals `at_capture` is durable.
  void snapshot_taken(counters at_capture);
  void stop();

 private:
  bool due() const;
  void run();

  const snapshot_policy policy_;
  const std::function<void()> take_;
  const log_function log_;
  std::atomic<std::uint64_t> commands_{0}, bytes_{0};
  std::atomic<std::uint64_t> base_commands_{0}, base_bytes_{0};
  std::atomic<bool> wake_sent_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_snapshot_;
  std::thread thread_;
};

}  // namespace prevalent

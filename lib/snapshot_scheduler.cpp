#include "prevalent/snapshot_scheduler.hpp"

namespace prevalent {

SnapshotScheduler::SnapshotScheduler(snapshot_policy policy, std::function<void()> take,
                                     log_function log)
    : policy_(policy),
      take_(std::move(take)),
      log_(std::move(log)),
      last_snapshot_(std::chrono::steady_clock::now()) {
  if (policy_.every_commands || policy_.every_journal_bytes || policy_.every.count() > 0)
    thread_ = std::thread([this] { run(); });
}

SnapshotScheduler::~SnapshotScheduler() { stop(); }

void SnapshotScheduler::stop() {
  {
    std::lock_guard g(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SnapshotScheduler::note_command(std::uint64_t journal_bytes) {
  commands_.fetch_add(1, std::memory_order_relaxed);
  bytes_.fetch_add(journal_bytes, std::memory_order_relaxed);
  if (!thread_.joinable() || wake_sent_.load(std::memory_order_relaxed) || !due()) return;
  if (!wake_sent_.exchange(true)) {
    std::lock_guard g(mutex_);  // so the wake-up cannot slip between its check and its wait
    cv_.notify_one();
  }
}

void SnapshotScheduler::snapshot_taken(counters at_capture) {
  std::lock_guard g(mutex_);
  if (at_capture.commands < base_commands_) return;  // an older snapshot finished late
  base_commands_ = at_capture.commands;
  base_bytes_ = at_capture.journal_bytes;
  last_snapshot_ = std::chrono::steady_clock::now();
}

bool SnapshotScheduler::due() const {
  const std::uint64_t commands = commands_.load() - base_commands_.load();
  const std::uint64_t bytes = bytes_.load() - base_bytes_.load();
  if (policy_.every_commands && commands >= policy_.every_commands) return true;
  if (policy_.every_journal_bytes && bytes >= policy_.every_journal_bytes) return true;
  return false;
}

void SnapshotScheduler::run() {
  std::unique_lock l(mutex_);
  while (!stopping_) {
    // Re-arm the wake-up before every wait, not after waking: a command that found the next
    // snapshot due while this one was being taken set wake_sent_ with no one waiting, and
    // would otherwise keep every later command from waking the thread again.
    wake_sent_ = false;
    auto ready = [&] {
      if (stopping_ || due()) return true;
      return policy_.every.count() > 0 && commands_.load() > base_commands_.load() &&
             std::chrono::steady_clock::now() >= last_snapshot_ + policy_.every;
    };
    if (policy_.every.count() > 0)
      cv_.wait_until(l, last_snapshot_ + policy_.every, ready);
    else
      cv_.wait(l, ready);
    if (stopping_) break;
    if (!ready()) {
      // The period passed with nothing to snapshot: start the next period now.
      if (policy_.every.count() > 0 &&
          std::chrono::steady_clock::now() >= last_snapshot_ + policy_.every)
        last_snapshot_ = std::chrono::steady_clock::now();
      continue;
    }
    l.unlock();
    try {
      take_();
    } catch (const std::exception& e) {
      if (log_) log_(std::string("automatic snapshot failed: ") + e.what());
      l.lock();
      last_snapshot_ = std::chrono::steady_clock::now();  // retry at the next trigger, not at once
      base_commands_ = commands_.load();
      base_bytes_ = bytes_.load();
      continue;
    }
    l.lock();
  }
}

}  // namespace prevalent

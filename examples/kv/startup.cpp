#include "startup.hpp"

#include <unistd.h>

#include <chrono>
#include <iomanip>
#include <iostream>
#include <sstream>

namespace kv {

void describe_store_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::cerr << "prevalent-kv: " << dir.string() << " does not exist: a new, empty store"
              << std::endl;
    return;
  }
  std::uintmax_t journal_bytes = 0, snapshot_bytes = 0;
  std::size_t segments = 0, snapshots = 0;
  std::string newest_snapshot;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    const auto size = entry.is_regular_file(ec) ? entry.file_size(ec) : 0;
    if (name.rfind("journal-", 0) == 0) {
      ++segments;
      journal_bytes += size;
    } else if (name.rfind("snapshot-", 0) == 0 && name.find(".tmp") == std::string::npos) {
      ++snapshots;
      snapshot_bytes += size;
      if (name > newest_snapshot) newest_snapshot = name;
    }
  }
  std::cerr << "prevalent-kv: " << dir.string() << " holds " << snapshots << " snapshot(s) ("
            << snapshot_bytes << " bytes" << (newest_snapshot.empty() ? "" : ", newest ")
            << newest_snapshot << ") and " << segments << " journal segment(s) (" << journal_bytes
            << " bytes, preallocated space included)" << std::endl;
}

void print_progress(const prevalent::recovery_progress& p) {
  using clock = std::chrono::steady_clock;
  static const clock::time_point started = clock::now();  // the first call: the open starts
  static clock::time_point last_line{};
  static bool printed = false;
  static const bool tty = ::isatty(STDERR_FILENO) != 0;
  const auto now = clock::now();
  const bool done = p.phase == prevalent::recovery_phase::done;
  if (now - started < std::chrono::milliseconds(500) && !printed) return;
  if (!tty && !done && now - last_line < std::chrono::seconds(1)) return;
  last_line = now;
  auto mib = [](std::uint64_t b) { return static_cast<double>(b) / (1 << 20); };
  std::ostringstream line;
  line << std::fixed << std::setprecision(1) << "prevalent-kv: "
       << (done                                            ? "loaded"
           : p.phase == prevalent::recovery_phase::journal ? "replaying the journal"
                                                           : "loading the snapshot")
       << ": snapshot " << mib(p.snapshot_bytes_loaded) << " of " << mib(p.snapshot_bytes_total)
       << " MiB, journal " << mib(p.journal_bytes_read) << " of " << mib(p.journal_bytes_total)
       << " MiB, " << p.records_replayed << " records replayed";
  if (tty)
    std::cerr << "\r\033[K" << line.str() << (done ? "\n" : "") << std::flush;
  else
    std::cerr << line.str() << std::endl;
  printed = true;
}

OpenProgress::OpenProgress() {
  ticker_ = std::thread([this] {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, std::chrono::seconds(2), [this] { return done_; })) {
      const auto s =
          std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start)
              .count();
      std::cerr << "prevalent-kv: still loading the snapshot and replaying the journal (" << s
                << " s)" << std::endl;
    }
  });
}

OpenProgress::~OpenProgress() {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
  }
  cv_.notify_all();
  ticker_.join();
}

}  // namespace kv

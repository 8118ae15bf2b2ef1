#include "startup.hpp"

#include <chrono>
#include <iostream>

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

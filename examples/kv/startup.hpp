// Startup progress of prevalent-kv on stderr: what the store directory holds before the open
// (snapshots, journal segments and their sizes), and a line every 2 seconds while the open
// (snapshot load and journal replay) runs, so a long restart is visibly alive.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <prevalent/recovery_progress.hpp>
#include <thread>

namespace kv {

void describe_store_dir(const std::filesystem::path& dir);

// store_options::on_recovery_progress for prevalent-kv: on a terminal, one line on stderr
// rewritten in place; otherwise a line a second. Silent for an open that takes under 0.5 s.
void print_progress(const prevalent::recovery_progress& p);

class OpenProgress {
 public:
  OpenProgress();
  ~OpenProgress();  // stops the ticker
  OpenProgress(const OpenProgress&) = delete;
  OpenProgress& operator=(const OpenProgress&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread ticker_;
};

}  // namespace kv

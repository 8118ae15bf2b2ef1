// A one-line progress bar for long operations, on stderr. Debian packages no C++ progress-bar
// library, so this is a small one: on a terminal the line is redrawn with \r at most ten
// times a second and erased at the end; when stderr is not a terminal (a pipe, a log file, a
// test) it prints nothing at all.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace prevalent::tool {

class Progress {
 public:
  // `label` says what is being done; `total` is the amount at 100% (bytes, records).
  // `enabled` false (--quiet) silences it even on a terminal.
  Progress(std::string label, std::uint64_t total, bool enabled = true);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Cheap when nothing is drawn: a clock read at most every 4096 calls.
  void update(std::uint64_t done);
  // Erases the line (once).
  void done();

 private:
  void draw(std::uint64_t done);

  std::string label_;
  std::uint64_t total_;
  bool active_;
  bool drawn_ = false;
  std::uint32_t calls_ = 0;
  std::chrono::steady_clock::time_point next_;
};

}  // namespace prevalent::tool

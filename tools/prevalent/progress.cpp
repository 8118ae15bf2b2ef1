#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace prevalent::tool {
namespace {
constexpr auto redraw_every = std::chrono::milliseconds(100);  // at most 10 redraws a second
constexpr int bar_width = 30;
}  // namespace

Progress::Progress(std::string label, std::uint64_t total, bool enabled)
    : label_(std::move(label)),
      total_(total),
      active_(enabled && total > 0 && ::isatty(STDERR_FILENO) == 1),
      next_(std::chrono::steady_clock::now() + redraw_every) {}

Progress::~Progress() { done(); }

void Progress::update(std::uint64_t done) {
  if (!active_ || (++calls_ & 4095u) != 0) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) return;
  next_ = now + redraw_every;
  draw(done);
}

void Progress::draw(std::uint64_t done) {
  const double part = std::min(1.0, static_cast<double>(done) / static_cast<double>(total_));
  const int filled = static_cast<int>(part * bar_width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.resize(bar_width, '.');
  (void)std::fprintf(stderr, "\r%s [%s] %3d%%", label_.c_str(), bar.c_str(),
                     static_cast<int>(part * 100));
  (void)std::fflush(stderr);
  drawn_ = true;
}

void Progress::done() {
  if (!active_) return;
  if (drawn_) (void)std::fprintf(stderr, "\r\033[K");
  (void)std::fflush(stderr);
  active_ = false;
}

}  // namespace prevalent::tool

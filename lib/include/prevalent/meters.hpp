// The counters behind store_metrics (metrics.hpp): histograms with fixed log-scale buckets
// and counters, all relaxed atomics, so that recording costs an increment or two on the
// thread that measured and reading never takes a lock. A reader may see one observation's
// bucket but not yet its sum: each value is exact, the set is not a consistent cut.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>

#include "prevalent/metrics.hpp"

namespace prevalent::detail {

// Buckets with upper bounds unit * 2^i, i = 0 .. Buckets-1, and one more for larger values
// (+Inf). Values are integers in `unit`'s scale (nanoseconds, bytes, records).
template <std::size_t Buckets>
class log2_histogram {
 public:
  explicit constexpr log2_histogram(std::uint64_t unit) : unit_(unit) {}
  log2_histogram(const log2_histogram&) = delete;
  log2_histogram& operator=(const log2_histogram&) = delete;

  void record(std::uint64_t value) noexcept {
    const std::uint64_t units = value / unit_ + (value % unit_ != 0 ? 1 : 0);  // rounded up
    std::size_t i = units <= 1 ? 0 : static_cast<std::size_t>(std::bit_width(units - 1));
    if (i > Buckets) i = Buckets;
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }

  // As a histogram value whose bounds and sum are the recorded values divided by `per_unit`
  // (1e9 for nanoseconds in seconds; a division, so that 1000 ns gives exactly the double
  // nearest 1e-6, printed "1e-06").
  histogram read(double per_unit) const {
    histogram h;
    h.upper_bounds.reserve(Buckets);
    h.counts.reserve(Buckets);
    std::uint64_t running = 0;
    for (std::size_t i = 0; i < Buckets; ++i) {
      running += counts_[i].load(std::memory_order_relaxed);
      h.upper_bounds.push_back(static_cast<double>(unit_ << i) / per_unit);
      h.counts.push_back(running);
    }
    h.count = running + counts_[Buckets].load(std::memory_order_relaxed);
    h.sum = static_cast<double>(sum_.load(std::memory_order_relaxed)) / per_unit;
    return h;
  }

 private:
  const std::uint64_t unit_;
  std::array<std::atomic<std::uint64_t>, Buckets + 1> counts_{};
  std::atomic<std::uint64_t> sum_{0};
};

// Durations in nanoseconds from 1 us to 2^24 us (16.8 s), or from 1 ms to 2^17 ms (131 s).
using latency_histogram = log2_histogram<25>;
inline constexpr std::uint64_t microsecond_ns = 1000;
using long_duration_histogram = log2_histogram<18>;
inline constexpr std::uint64_t millisecond_ns = 1000000;

// What the journal's committer measures (journal.hpp).
struct journal_meters {
  std::atomic<std::uint64_t> syncs{0};
  log2_histogram<17> records_per_sync{1};  // 1 .. 65536
  latency_histogram sync_ns{microsecond_ns};
};

}  // namespace prevalent::detail

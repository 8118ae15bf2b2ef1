// Small measuring helpers for the benchmarks: wall-clock timing, latency percentiles, medians
// of repeated runs, and a results table printed as text and CSV.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

namespace bench {

using clock = std::chrono::steady_clock;

inline double seconds_since(clock::time_point t0) {
  return std::chrono::duration<double>(clock::now() - t0).count();
}

inline double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

inline double median(std::vector<double> v) { return percentile(std::move(v), 0.5); }

struct row {
  std::string group, name;
  double value = 0;                 // the figure (per second unless unit says otherwise)
  std::string unit;                 // "ops/s", "records/s", "ms", ...
  double p50_us = -1, p99_us = -1;  // latency, when measured
  std::string ratio;                // against the baseline named in the text
};

class results {
 public:
  void add(row r) {
    std::printf("  %-34s %14.0f %-10s", r.name.c_str(), r.value, r.unit.c_str());
    if (r.p50_us >= 0) std::printf(" p50 %8.0f us  p99 %8.0f us", r.p50_us, r.p99_us);
    if (!r.ratio.empty()) std::printf("  %s", r.ratio.c_str());
    std::printf("\n");
    std::fflush(stdout);
    rows_.push_back(std::move(r));
  }
  void write_csv(const std::string& path) const {
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) return;
    std::fprintf(f, "group,name,value,unit,p50_us,p99_us,ratio\n");
    for (auto& r : rows_)
      std::fprintf(f, "%s,\"%s\",%.1f,%s,%.1f,%.1f,\"%s\"\n", r.group.c_str(), r.name.c_str(),
                   r.value, r.unit.c_str(), r.p50_us, r.p99_us, r.ratio.c_str());
    std::fclose(f);
  }

 private:
  std::vector<row> rows_;
};

inline std::string times(double a, double b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2fx", b > 0 ? a / b : 0.0);
  return buf;
}

}  // namespace bench

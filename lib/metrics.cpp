// store_metrics helpers (metrics.hpp).
#include "prevalent/metrics.hpp"

namespace prevalent {

double quantile_bound(const histogram& h, double q) {
  if (h.count == 0 || h.upper_bounds.empty()) return 0;
  const double rank = q * static_cast<double>(h.count);
  for (std::size_t i = 0; i < h.counts.size(); ++i)
    if (static_cast<double>(h.counts[i]) >= rank) return h.upper_bounds[i];
  return h.upper_bounds.back();
}

}  // namespace prevalent

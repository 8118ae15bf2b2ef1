// A store's metrics (metrics.hpp) in the Prometheus text exposition format (version 0.0.4),
// for an HTTP endpoint that Prometheus scrapes (GET /metrics, Content-Type
// prometheus_content_type). The format is written here directly rather than through
// prometheus-cpp: it is small and stable, store_metrics is already a consistent value to
// print, and prometheus-cpp's registry would add a dependency with a registry and locking of
// its own around counters the store keeps anyway.
//
//   std::string body = prevalent::prometheus_text(store.metrics(), {{"store", "sessions"}});
//
// Names follow Prometheus' conventions: prevalent_commands_total{outcome="applied"},
// *_seconds and *_bytes histograms with _bucket{le=...}, _sum and _count, *_total counters.
// docs/METRICS.md lists them all.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "prevalent/metrics.hpp"

namespace prevalent {

// Labels added to every sample, e.g. {{"store", "sessions"}} (names must match
// [a-zA-Z_][a-zA-Z0-9_]* and not start with "__"; values are escaped). std::invalid_argument
// names a bad label name.
using prometheus_labels = std::vector<std::pair<std::string, std::string>>;

inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4";

// The metrics of one store as a complete exposition (every family with # HELP and # TYPE).
std::string prometheus_text(const store_metrics& m, const prometheus_labels& labels = {});

}  // namespace prevalent

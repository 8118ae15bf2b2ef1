// The small thread pools of the streaming snapshot writer and loader: a parallel loop, and an
// ordered pipeline whose results are consumed in order on the calling thread with a bound on
// how many wait. Threads are started per call and joined before it returns; none of them
// inherits the caller's thread-locals (snapshot_writing / snapshot_reading are unset there).
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace prevalent::detail {

// Threads to use for `tasks` independent tasks: at most hardware_concurrency, at least 1.
unsigned pool_size(std::size_t tasks);

// Runs f(0) .. f(n-1) on up to pool_size(n) threads (the caller's included) and returns when
// all are done. Rethrows the first exception; tasks not started by then are skipped.
void parallel_for(std::size_t n, const std::function<void(std::size_t)>& f);

// The nice value of ordered_pipeline's workers (background work; see lib/parallel.cpp).
inline constexpr int background_nice = 10;

// Runs produce(i) for i in 0..n-1 on worker threads (at nice background_nice), at most `window`
// results ahead of the consumer, and calls consume(i, result) on the calling thread in order of i.
// Rethrows the first exception of either side after stopping the workers.
void ordered_pipeline(std::size_t n, std::size_t window,
                      const std::function<std::string(std::size_t)>& produce,
                      const std::function<void(std::size_t, std::string&)>& consume);

}  // namespace prevalent::detail

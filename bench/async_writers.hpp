// The async benchmark section (bench --only async): durable commands/s through AsyncStore
// (prevalent/asio.hpp) with a fixed number of commands in flight on a small io_context,
// against the synchronous API with one blocked thread per command. Only built where
// Boost.Asio is there (PREVALENT_BENCH_ASIO).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <prevalent/asio.hpp>

#include "measure.hpp"

namespace bench {

struct async_throughput {
  double ops_per_s = 0, p50_us = 0, p99_us = 0;
  std::uint64_t errors = 0;
};

// Keeps `in_flight` async_execute operations going on an io_context run by `io_threads`
// threads for `duration`: each completion starts the next command of its lane. Throughput
// counts every completion up to the moment the last one in flight finished.
template <class AsyncStoreT, class MakeCommand>
async_throughput async_writers(const std::filesystem::path& dir,
                               const prevalent::store_options& options, int in_flight,
                               int io_threads, std::chrono::milliseconds duration,
                               MakeCommand make_command) {
  boost::asio::io_context io;
  AsyncStoreT store(io.get_executor(), dir, options);
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> next{0}, errors{0};
  // One latency list per lane: a lane's commands run one after the other.
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(in_flight));
  std::function<void(int)> start = [&](int lane) {
    if (stop.load(std::memory_order_relaxed)) return;
    const std::uint64_t n = next.fetch_add(1, std::memory_order_relaxed);
    const auto t0 = clock::now();
    store.async_execute(make_command(n), [&, lane, t0](std::error_code ec, auto&&...) {
      if (ec) errors.fetch_add(1, std::memory_order_relaxed);
      latencies[static_cast<std::size_t>(lane)].push_back(
          std::chrono::duration<double, std::micro>(clock::now() - t0).count());
      start(lane);
    });
  };
  for (int lane = 0; lane < in_flight; ++lane)
    boost::asio::post(io, [&start, lane] { start(lane); });
  const auto t0 = clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < io_threads; ++t) threads.emplace_back([&io] { io.run(); });
  std::this_thread::sleep_for(duration);
  stop = true;
  for (auto& t : threads) t.join();  // run() returns once every lane's last command completed
  const double secs = seconds_since(t0);
  store.close();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  return {static_cast<double>(all.size()) / secs, percentile(all, 0.5), percentile(all, 0.99),
          errors.load()};
}

}  // namespace bench

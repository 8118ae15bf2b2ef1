// The prevalent side of the scale benchmark (issue 9): one phase per invocation, so that each
// open runs in a fresh process and its resident memory is that of the open alone. Each phase
// prints one JSON object on stdout (the driver, bench/scale/run.py, reads it).
//
//   scale build    --dir D --first F --count N [--codec json|cbor]
//       executes N CreateSession commands (sessions F..F+N-1, policy none) on the store in D;
//       prints the time, commands/s and the resident memory of the state built by commands
//   scale open     --dir D [--codec json|cbor] [--expect N]
//       opens the store (snapshot + journal replay) and prints "ready" as soon as it is open,
//       then the open time, the resident memory after it (and after malloc_trim) and the
//       number of sessions
//   scale snapshot --dir D [--codec json|cbor] [--runs R] [--baseline-ms T] [--trace FILE]
//       one writer touches random sessions (~7,000 commands/s, policy none) for T ms without a
//       snapshot, then while each of R snapshots is captured and written; resident memory is
//       sampled every millisecond; prints the snapshot times, the writer's longest execute and
//       p99 with and without a snapshot, peak and steady resident memory; a last snapshot with
//       the writer stopped leaves a store whose newest snapshot covers everything; --trace
//       writes the RSS samples of the first snapshot as CSV (seconds,rss_mb; bench/scale/rss.gp)
//   scale resp     --first F --count N
//       writes the same sessions as Redis SET commands (RESP) on stdout, for redis-cli --pipe:
//       key = the token hash, value = the session's JSON exactly as the snapshot holds it
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "scale_model.hpp"

namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

namespace {

double seconds_since(steady::time_point t0) {
  return std::chrono::duration<double>(steady::now() - t0).count();
}

// Resident set size of this process in MB, from /proc/self/statm (cheap enough to sample every
// millisecond).
double rss_mb() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1e6;
}

// Bytes of heap in use (allocated and not freed), over all arenas: what RSS would be without
// fragmentation and allocator caches.
double heap_in_use_mb() {
  const struct mallinfo2 m = ::mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd) / 1e6;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

struct args {
  std::string phase;
  fs::path dir;
  std::uint64_t first = 0, count = 0, expect = 0;
  prevalent::codec codec = prevalent::codec::json;
  int runs = 3;
  int baseline_ms = 2000;
  fs::path trace;  // snapshot: RSS every ms during the first snapshot, as CSV
};

// Bad command-line input: main prints it with the usage and exits 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void usage(const std::string& why) { throw usage_error(why); }

std::uint64_t number(const std::string& option, const std::string& text) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || text.empty() || text[0] == '-')
    usage(option + " needs a non-negative number, got '" + text + "'");
  return v;
}

args parse(int argc, char** argv) {
  if (argc < 2) usage("no phase given");
  args a;
  a.phase = argv[1];
  if (a.phase != "build" && a.phase != "open" && a.phase != "snapshot" && a.phase != "resp")
    usage("unknown phase '" + a.phase + "'");
  for (int i = 2; i < argc; ++i) {
    const std::string o = argv[i];
    if (i + 1 >= argc) usage(o + " needs a value");
    const std::string v = argv[++i];
    if (o == "--dir")
      a.dir = v;
    else if (o == "--first")
      a.first = number(o, v);
    else if (o == "--count")
      a.count = number(o, v);
    else if (o == "--expect")
      a.expect = number(o, v);
    else if (o == "--runs")
      a.runs = static_cast<int>(std::max<std::uint64_t>(1, number(o, v)));
    else if (o == "--trace")
      a.trace = v;
    else if (o == "--baseline-ms")
      a.baseline_ms = static_cast<int>(number(o, v));
    else if (o == "--codec") {
      if (v == "json")
        a.codec = prevalent::codec::json;
      else if (v == "cbor")
        a.codec = prevalent::codec::cbor;
      else
        usage("--codec must be json or cbor, got '" + v + "'");
    } else
      usage("unknown option '" + o + "'");
  }
  if (a.phase != "resp" && a.dir.empty()) usage(a.phase + " needs --dir");
  return a;
}

prevalent::store_options options(const args& a) {
  prevalent::store_options o;
  o.sync = prevalent::sync_policy::none();
  o.codec = a.codec;
  o.snapshot_codec = a.codec;
  o.verify_encoding = false;
  return o;
}

std::size_t sessions_in(const scale::Store& store) {
  return store.query([](const scale::State& s) { return s.by_hash.size(); });
}

int build(const args& a) {
  scale::Store store(a.dir, options(a));
  const double rss_before = rss_mb();
  const auto t0 = steady::now();
  for (std::uint64_t i = a.first; i < a.first + a.count; ++i)
    store.execute(scale::create_command(i));
  const double secs = seconds_since(t0);
  const std::size_t n = sessions_in(store);
  std::printf(
      "{\"phase\":\"build\",\"map\":\"%s\",\"seconds\":%.3f,\"commands_per_s\":%.0f,"
      "\"sessions\":%zu,\"rss_mb\":%.1f,\"rss_before_mb\":%.1f,\"heap_mb\":%.1f}\n",
      std::string(scale::session_map_name).c_str(), secs, static_cast<double>(a.count) / secs, n,
      rss_mb(), rss_before, heap_in_use_mb());
  return 0;
}

int open(const args& a) {
  const auto t0 = steady::now();
  scale::Store store(a.dir, options(a));
  const double secs = seconds_since(t0);
  std::printf("ready\n");
  (void)std::fflush(stdout);
  const double rss = rss_mb();
  const std::size_t n = sessions_in(store);
  // A diagnosis, after the figure: how much of the RSS is heap that decoding freed but the
  // allocator kept (glibc's malloc_trim returns free pages to the OS).
  ::malloc_trim(0);
  std::printf(
      "{\"phase\":\"open\",\"map\":\"%s\",\"seconds\":%.3f,\"sessions\":%zu,\"rss_mb\":%.1f,"
      "\"rss_after_trim_mb\":%.1f,\"heap_mb\":%.1f}\n",
      std::string(scale::session_map_name).c_str(), secs, n, rss, rss_mb(), heap_in_use_mb());
  if (a.expect != 0 && n != a.expect) {
    (void)std::fprintf(stderr, "scale open: %zu sessions after the open, expected %llu\n", n,
                       static_cast<unsigned long long>(a.expect));
    return 1;
  }
  return 0;
}

// Size of the newest snapshot: the one with the highest sequence number (zero-padded in the
// name, so the greatest name).
std::uintmax_t newest_snapshot_bytes(const fs::path& dir) {
  fs::path newest;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".snap" && e.path().filename() > newest.filename())
      newest = e.path();
  return newest.empty() ? 0 : fs::file_size(newest);
}

int snapshot(const args& a) {
  scale::Store store(a.dir, options(a));
  const std::size_t n = sessions_in(store);
  if (n == 0) usage("snapshot needs a store with sessions in --dir (run build first)");

  // The writer records (phase, latency, start): phase 0 without a snapshot, r + 1 during
  // snapshot r, -1 between them (not counted).
  struct sample {
    int phase;
    double us;
    steady::time_point start;
  };
  std::atomic<int> phase{-1};
  std::atomic<bool> stop{false};
  std::vector<sample> latencies;
  latencies.reserve(1 << 20);
  std::thread writer([&] {
    std::mt19937_64 rng(42);
    while (!stop.load()) {
      const std::string hash = scale::token_hash(rng() % n);
      const int p = phase.load();
      const auto s = steady::now();
      store.execute(scale::TouchSession{hash});
      latencies.push_back(
          {p, std::chrono::duration<double, std::micro>(steady::now() - s).count(), s});
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // warm up
  const double steady_rss = rss_mb();
  phase = 0;
  std::this_thread::sleep_for(std::chrono::milliseconds(a.baseline_ms));

  std::vector<double> write_s, steady_mb, peak_mb;
  std::vector<steady::time_point> started;       // when each snapshot() was called
  std::vector<std::pair<double, double>> trace;  // (seconds, RSS MB) during the first snapshot
  for (int r = 0; r < a.runs; ++r) {
    phase = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    steady_mb.push_back(rss_mb());
    std::atomic<bool> sampling{true};
    std::atomic<double> peak{steady_mb.back()};
    const auto t0 = steady::now();
    started.push_back(t0);
    std::thread sampler([&] {
      while (sampling.load()) {
        const double m = rss_mb();
        if (m > peak.load()) peak = m;
        if (r == 0 && !a.trace.empty()) trace.emplace_back(seconds_since(t0), m);
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
    phase = r + 1;
    store.snapshot();
    write_s.push_back(seconds_since(t0));
    phase = -1;
    sampling = false;
    sampler.join();
    peak_mb.push_back(peak.load());
  }
  stop = true;
  writer.join();
  if (!a.trace.empty()) {
    std::ofstream f(a.trace);
    f << "seconds,rss_mb\n";
    for (const auto& [t, m] : trace) f << t << ',' << m << '\n';
    if (!f) throw std::runtime_error("cannot write the trace " + a.trace.string());
  }
  const auto t0 = steady::now();
  store.snapshot();  // quiet: the newest snapshot covers every command
  const double quiet_s = seconds_since(t0);

  std::vector<double> base, during;
  double base_max = 0, during_max = 0;
  // Per snapshot: the longest execute and when it started, in seconds after snapshot() was
  // called (near 0: the capture; later: the encoding competing for the cores or the heap).
  std::vector<double> run_max(static_cast<std::size_t>(a.runs), 0.0);
  std::vector<double> run_max_at(static_cast<std::size_t>(a.runs), 0.0);
  for (const auto& [p, us, start] : latencies) {
    if (p == 0) {
      base.push_back(us);
      base_max = std::max(base_max, us);
    } else if (p > 0) {
      during.push_back(us);
      during_max = std::max(during_max, us);
      const auto r = static_cast<std::size_t>(p - 1);
      if (us > run_max[r]) {
        run_max[r] = us;
        run_max_at[r] = std::chrono::duration<double>(start - started[r]).count();
      }
    }
  }
  auto list = [](const std::vector<double>& v, double scale_by) {
    std::string s = "[";
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i) s.push_back(',');
      s.append(std::to_string(v[i] * scale_by));
    }
    s.push_back(']');
    return s;
  };
  std::printf(
      "{\"phase\":\"snapshot\",\"map\":\"%s\",\"sessions\":%zu,\"write_s\":%s,\"quiet_write_s\":"
      "%.3f,\"snapshot_bytes\":%ju,\"steady_rss_mb\":%.1f,\"run_steady_rss_mb\":%s,"
      "\"peak_rss_mb\":%s,\"stall_ms\":%s,\"stall_at_s\":%s,\"base_commands\":%zu,\"base_p99_us\":%"
      ".1f,"
      "\"base_max_us\":%.1f,\"during_commands\":%zu,\"during_p99_us\":%.1f,"
      "\"during_max_us\":%.1f}\n",
      std::string(scale::session_map_name).c_str(), n, list(write_s, 1).c_str(), quiet_s,
      newest_snapshot_bytes(a.dir), steady_rss, list(steady_mb, 1).c_str(),
      list(peak_mb, 1).c_str(), list(run_max, 1e-3).c_str(), list(run_max_at, 1).c_str(),
      base.size(), percentile(base, 0.99), base_max, during.size(), percentile(during, 0.99),
      during_max);
  return 0;
}

// RESP for redis-cli --pipe: SET <token hash> <the session's JSON>, with the timestamps the
// sessions get when created now.
int resp(const args& a) {
  std::string out;
  out.reserve(1 << 20);
  const std::int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  for (std::uint64_t i = a.first; i < a.first + a.count; ++i) {
    const scale::CreateSession c = scale::create_command(i);
    const std::string value =
        nlohmann::json(
            scale::Session{c.user, now, now + c.ttl_seconds * 1'000'000'000, c.ttl_seconds})
            .dump();
    out += "*3\r\n$3\r\nSET\r\n$" + std::to_string(c.token_hash.size()) + "\r\n" + c.token_hash +
           "\r\n$" + std::to_string(value.size()) + "\r\n" + value + "\r\n";
    if (out.size() > (1 << 20) - 512) {
      if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size())
        throw std::runtime_error("writing to stdout failed");
      out.clear();
    }
  }
  if (std::fwrite(out.data(), 1, out.size(), stdout) != out.size() || std::fflush(stdout) != 0)
    throw std::runtime_error("writing to stdout failed");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  args a;
  try {
    a = parse(argc, argv);
  } catch (const usage_error& e) {
    std::cerr << "scale: " << e.what()
              << "\nusage: scale build|open|snapshot|resp [--dir D] [--first F] [--count N] "
                 "[--codec json|cbor] [--expect N] [--runs R] [--baseline-ms T] [--trace FILE]\n";
    return 2;
  }
  try {
    if (a.phase == "build") return build(a);
    if (a.phase == "open") return open(a);
    if (a.phase == "snapshot") return snapshot(a);
    return resp(a);
  } catch (const std::exception& e) {
    (void)std::fprintf(stderr, "scale %s: %s\n", a.phase.c_str(), e.what());
    return 1;
  }
}

// prevalent benchmarks. Every figure is printed beside a baseline measured in the same run:
// the physical limit (a raw ~100-byte write + fdatasync loop on the same directory) and the
// database people would use instead (SQLite, WAL, synchronous=FULL, one upsert per
// transaction; and RocksDB with sync writes where built with it). Medians of several runs;
// --quick for a short smoke run.
//
//   bench [--quick] [--dir DIR] [--csv FILE] [--runs N] [--only SECTION] [--threads 1,64]
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include <sodium.h>

#include <boost/crc.hpp>
#include <prevalent/checksum.hpp>
#include <prevalent/cipher.hpp>
#include <prevalent/journal.hpp>
#include <prevalent/state_digest.hpp>

#include "../examples/sessions/sessions_model.hpp"
#include "crash_window.hpp"
#include "measure.hpp"
#include "snapshot_stream.hpp"
#include "sqlite_peer.hpp"
#ifdef PREVALENT_BENCH_ROCKSDB
#include "rocksdb_peer.hpp"
#endif
#ifdef PREVALENT_BENCH_ASIO
#include "async_writers.hpp"
#endif

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

struct config {
  bool quick = false;
  fs::path dir = "bench-data";
  std::string csv = "bench-results.csv";
  int runs = 3;
  std::string only;  // one section: limit, writers, async, none, window, queries, replay, rebuild,
                     // checksum, encryption, snapshot, digest
  std::vector<int> threads{1, 4, 16, 64, 256};  // writer thread counts
  std::chrono::milliseconds duration{2000};
  std::size_t sessions = 1'000'000;
};

// ---- a key-value model with ~100-byte commands ----
struct KV {
  std::unordered_map<std::string, std::string> map;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(KV, map)
};
struct Put {
  static constexpr std::string_view name = "put";
  std::string key, value;
  std::uint64_t apply(KV& s, const prevalent::Context& ctx) const {
    s.map[key] = value;
    return ctx.sequence();  // for the crash window: which command was acknowledged
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Put, key, value)
};
using KVStore = prevalent::Store<KV, Put>;

// Every write changes something: SQLite skips the commit (and its fsync) of an update that
// leaves a row identical, which would flatter it.
std::string key_for(std::uint64_t i) { return "key" + std::to_string(i % 100000); }
std::string value_for(std::uint64_t i) {
  std::string v = std::to_string(i);
  return v + std::string(50 - v.size(), 'v');
}

fs::path fresh(const config& c, const std::string& name) {
  fs::path p = c.dir / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

prevalent::store_options kv_options(prevalent::sync_policy sync,
                                    prevalent::codec codec = prevalent::codec::json) {
  prevalent::store_options o;
  o.sync = sync;
  o.codec = codec;
  o.verify_encoding = false;
  return o;
}

// The same options with encryption at rest (a fixed key: the bench measures cost, not secrecy).
prevalent::store_options encrypted(prevalent::store_options o) {
  o.encryption_key =
      prevalent::encryption_key(prevalent::bytes(prevalent::encryption_key::size, 0x42));
  o.accept_unencrypted = true;  // the sessions store is built in clear, then snapshotted sealed
  return o;
}

// ---- the limit: raw write + fdatasync ----
double raw_loop(const config& c, bool preallocated, int n) {
  fs::path p = fresh(c, "raw") / "raw.log";
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  char rec[100];
  std::memset(rec, 'r', sizeof rec);
  if (preallocated) {
    std::vector<char> zeros(static_cast<std::size_t>(n) * sizeof rec, 0);
    if (::write(fd, zeros.data(), zeros.size()) < 0) std::perror("write");
    ::fdatasync(fd);
  }
  auto t0 = bench::clock::now();
  for (int i = 0; i < n; ++i) {
    if (::pwrite(fd, rec, sizeof rec, static_cast<off_t>(i) * 100) != sizeof rec)
      std::perror("pwrite");
    ::fdatasync(fd);
  }
  double s = bench::seconds_since(t0);
  ::close(fd);
  return n / s;
}

struct throughput {
  double ops_per_s = 0, p50_us = 0, p99_us = 0;
};

// Runs `op(thread, i)` on `threads` threads for the configured duration.
template <class Op>
throughput run_threads(const config& c, int threads, Op op) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> lat(threads);
  std::vector<std::thread> pool;
  auto t0 = bench::clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      for (std::uint64_t i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        auto s = bench::clock::now();
        op(t, i);
        lat[t].push_back(
            std::chrono::duration<double, std::micro>(bench::clock::now() - s).count());
      }
    });
  std::this_thread::sleep_for(c.duration);
  stop = true;
  for (auto& th : pool) th.join();
  double secs = bench::seconds_since(t0);
  std::vector<double> all;
  for (auto& v : lat) all.insert(all.end(), v.begin(), v.end());
  return {static_cast<double>(all.size()) / secs, bench::percentile(all, 0.5),
          bench::percentile(all, 0.99)};
}

throughput prevalent_writers(const config& c, int threads, bool encrypt = false) {
  const auto o = kv_options(prevalent::sync_policy::always());
  KVStore store(fresh(c, "writers"), encrypt ? encrypted(o) : o);
  return run_threads(c, threads, [&](int t, std::uint64_t i) {
    const std::uint64_t n = i * 256 + static_cast<std::uint64_t>(t);
    store.execute(Put{key_for(n), value_for(n)});
  });
}

throughput sqlite_writers(const config& c, int threads) {
  bench::sqlite_peer db(fresh(c, "sqlite") / "kv.db", threads);
  return run_threads(c, threads, [&](int t, std::uint64_t i) {
    const std::uint64_t n = i * 256 + static_cast<std::uint64_t>(t);
    db.upsert(t, key_for(n), value_for(n));
  });
}

#ifdef PREVALENT_BENCH_ROCKSDB
throughput rocksdb_writers(const config& c, int threads) {
  bench::rocksdb_peer db(fresh(c, "rocksdb"));
  return run_threads(c, threads, [&](int t, std::uint64_t i) {
    const std::uint64_t n = i * 256 + static_cast<std::uint64_t>(t);
    db.put(key_for(n), value_for(n));
  });
}
#endif

template <class F>
throughput median_of(const config& c, F f) {
  std::vector<double> ops, p50, p99;
  for (int r = 0; r < c.runs; ++r) {
    auto t = f();
    ops.push_back(t.ops_per_s);
    p50.push_back(t.p50_us);
    p99.push_back(t.p99_us);
  }
  return {bench::median(ops), bench::median(p50), bench::median(p99)};
}

double none_policy(const config& c, const prevalent::store_options& options, std::size_t n) {
  KVStore store(fresh(c, "none"), options);
  auto t0 = bench::clock::now();
  for (std::size_t i = 0; i < n; ++i) store.execute(Put{key_for(i), value_for(i)});
  return static_cast<double>(n) / bench::seconds_since(t0);
}

throughput queries_while_writing(const config& c, int readers, prevalent::sync_policy sync) {
  KVStore store(fresh(c, "queries"), kv_options(sync));
  for (std::uint64_t i = 0; i < 1000; ++i) store.execute(Put{key_for(i), value_for(i)});
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (std::uint64_t i = 0; !stop; ++i) store.execute(Put{key_for(i), value_for(i)});
  });
  auto t = run_threads(c, readers, [&](int, std::uint64_t i) {
    store.query([&](const KV& s) { return s.map.count(key_for(i % 1000)); });
  });
  stop = true;
  writer.join();
  return t;
}

// ---- replay and snapshots of the sessions model ----
struct build_result {
  fs::path dir;
  std::uintmax_t journal_bytes = 0;
};

build_result build_sessions(const config& c, prevalent::codec codec) {
  build_result b{fresh(c, std::string("sessions-") + prevalent::codec_name(codec))};
  {
    prevalent::store_options o = kv_options(prevalent::sync_policy::none(), codec);
    sessions::Store store(b.dir, o);
    for (std::size_t i = 0; i < c.sessions; ++i) {
      // Distinct stand-ins for token hashes (64 hex digits), without hashing in the loop.
      char token_hash[65];
      std::snprintf(token_hash, sizeof token_hash, "%064zx", i * 2654435761u);
      store.execute(sessions::CreateSession{"user" + std::to_string(i % 50000), 3600, token_hash});
    }
  }
  for (auto& e : fs::directory_iterator(b.dir))
    if (e.path().extension() == ".log") b.journal_bytes += e.file_size();
  return b;
}

double open_seconds(const fs::path& dir, prevalent::codec codec);

std::string cores_used(double cores) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f cores", cores);
  return buf;
}

// User and system CPU time of the whole process so far (all threads).
double cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return s(u.ru_utime) + s(u.ru_stime);
}

// Replay without the store's pipeline, for baselines in the same run: the journal in `dir`
// opened directly, each record handed to `visit` on the reading thread.
double journal_replay_seconds(const fs::path& dir, prevalent::codec codec,
                              const prevalent::Journal::visitor& visit) {
  auto t0 = bench::clock::now();
  auto j =
      prevalent::Journal::open(prevalent::open_posix_directory(dir),
                               kv_options(prevalent::sync_policy::always(), codec), 1, 1, visit);
  const double s = bench::seconds_since(t0);
  j->close();
  return s;
}

// The four ways of replaying the sessions journal in `dir`, records/s: reading and verifying
// only (no decoding: the reader's limit), the sequential generic path (a tree of every
// envelope: replay before issue 9), sequential with fast envelopes, and the store's pipeline.
struct replay_figures {
  double verify = 0, generic = 0, fast = 0, decode_only = 0, pipeline = 0;
  // CPU time of every thread of the process per second of replay: the cores each path used.
  double fast_cores = 0, pipeline_cores = 0;
};
replay_figures replay_rates(const fs::path& dir, prevalent::codec codec, std::size_t records) {
  using decoded = prevalent::decoded_command<sessions::CreateSession, sessions::TouchSession,
                                             sessions::RevokeSession, sessions::ExpireSessions>;
  replay_figures f;
  const auto n = static_cast<double>(records);
  std::uint64_t seen = 0;
  f.verify = n / journal_replay_seconds(dir, codec, [&](const prevalent::record_view& r) {
               seen += r.payload.size();
             });
  {
    sessions::State state;
    f.generic = n / journal_replay_seconds(dir, codec, [&](const prevalent::record_view& r) {
                  decoded cmd;
                  prevalent::decode_command_generic(r, cmd);
                  prevalent::apply_decoded(state, cmd, r);
                });
  }
  {
    sessions::State state;
    const double cpu0 = cpu_seconds();
    f.fast = n / journal_replay_seconds(dir, codec, [&](const prevalent::record_view& r) {
               prevalent::replay_command<sessions::State, sessions::CreateSession,
                                         sessions::TouchSession, sessions::RevokeSession,
                                         sessions::ExpireSessions>(state, r);
             });
    f.fast_cores = (cpu_seconds() - cpu0) * f.fast / n;
  }
  {
    decoded cmd;  // the apply step's share: fast decoding alone, into one reused slot
    f.decode_only = n / journal_replay_seconds(dir, codec, [&](const prevalent::record_view& r) {
                      prevalent::decode_command(r, cmd);
                    });
  }
  const double cpu0 = cpu_seconds();
  f.pipeline = n / open_seconds(dir, codec);
  f.pipeline_cores = (cpu_seconds() - cpu0) * f.pipeline / n;
  return f;
}

double open_seconds(const fs::path& dir, prevalent::codec codec) {
  auto t0 = bench::clock::now();
  sessions::Store store(dir, kv_options(prevalent::sync_policy::always(), codec));
  return bench::seconds_since(t0);
}

struct snapshot_figures {
  double write_s = 0, load_s = 0, longest_stall_ms = 0;
  std::uintmax_t bytes = 0;
};

// Takes a snapshot while a writer runs commands; the writer's longest execute is the stall.
snapshot_figures snapshot_under_load(const fs::path& dir, prevalent::codec codec) {
  snapshot_figures f;
  {
    sessions::Store store(dir, kv_options(prevalent::sync_policy::none(), codec));
    std::atomic<bool> stop{false};
    std::atomic<double> longest{0};
    std::thread writer([&] {
      for (std::uint64_t i = 0; !stop; ++i) {
        auto s = bench::clock::now();
        store.execute(sessions::RevokeSession{"no-such-token-" + std::to_string(i)});
        double ms = std::chrono::duration<double, std::milli>(bench::clock::now() - s).count();
        if (ms > longest) longest = ms;
        // A steady ~10k commands/s: enough to see any stall, few enough that reopening
        // afterwards measures the snapshot load rather than a long journal tail.
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    });
    std::this_thread::sleep_for(200ms);
    longest = 0;
    auto t0 = bench::clock::now();
    store.snapshot();
    f.write_s = bench::seconds_since(t0);
    stop = true;
    writer.join();
    f.longest_stall_ms = longest;
  }
  for (auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".snap") f.bytes = std::max(f.bytes, e.file_size());
  f.load_s = open_seconds(dir, codec);
  return f;
}

// Time of one snapshot() of the sessions store in `dir` (the open is not counted).
double snapshot_seconds(const fs::path& dir, const prevalent::store_options& o) {
  sessions::Store store(dir, o);
  auto t0 = bench::clock::now();
  store.snapshot();
  return bench::seconds_since(t0);
}

double open_seconds(const fs::path& dir, const prevalent::store_options& o) {
  auto t0 = bench::clock::now();
  sessions::Store store(dir, o);
  return bench::seconds_since(t0);
}

// A command whose apply() throws: the store rebuilds its state from disk under the exclusive
// lock, and every writer waits that long (issue 7, part 5).
struct FailingApply {
  static constexpr std::string_view name = "bench_failing_apply";
  void apply(sessions::State&, const prevalent::Context&) const {
    throw std::runtime_error("apply failed on purpose");
  }
};
using RebuildStore =
    prevalent::Store<sessions::State, sessions::CreateSession, sessions::TouchSession,
                     sessions::RevokeSession, sessions::ExpireSessions, FailingApply>;

// The stall of one throwing command on the store in `dir` (the open is not counted).
double rebuild_stall_ms(const fs::path& dir, prevalent::codec codec) {
  RebuildStore store(dir, kv_options(prevalent::sync_policy::always(), codec));
  auto t0 = bench::clock::now();
  try {
    store.execute(FailingApply{});
  } catch (const std::runtime_error&) {
  }
  return bench::seconds_since(t0) * 1000;
}

// Checksums of 100-byte records per second: prevalent's crc32c (ISA-L when built with it) or,
// as the baseline, Boost.CRC's table-driven CRC-32C called directly.
double checksums_per_s(bool library) {
  std::vector<std::uint8_t> record(100, 0x5a);
  const int n = 2'000'000;
  std::uint32_t sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    record[0] = static_cast<std::uint8_t>(i);
    if (library) {
      sink ^= prevalent::crc32c(record);
    } else {
      boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
      crc.process_bytes(record.data(), record.size());
      sink ^= crc.checksum();
    }
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink == 0x12345678) std::printf(" ");  // keep the loop
  return n / secs;
}

// Issue 10: bytes per second through `hash` over a 64 MiB snapshot-like payload, for the state
// digest of snapshot headers beside the alternatives.
double hashed_bytes_per_s(const std::function<std::uint8_t(prevalent::byte_view)>& hash) {
  static const prevalent::bytes payload = [] {
    prevalent::bytes p(64u << 20);
    std::uint64_t x = 88172645463325252ull;  // xorshift: not compressible, not all alike
    for (auto& b : p) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      b = static_cast<std::uint8_t>(x);
    }
    return p;
  }();
  std::uint8_t sink = 0;
  int reps = 0;
  const auto t0 = std::chrono::steady_clock::now();
  double secs = 0;
  do {
    sink ^= hash(payload);
    ++reps;
    secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (secs < 0.5);
  if (sink == 0x5a && reps < 0) std::printf(" ");  // keep the loop
  return static_cast<double>(payload.size()) * reps / secs;
}

// Records per second sealed (or sealed and opened) by the journal's cipher, 100 bytes each:
// the CPU cost of encryption alone, without the disk or the rest of a command. Nonces are drawn
// from the OS 1,000 at a time, as the journal draws them for a batch.
double sealed_per_s(bool and_open) {
  const prevalent::detail::payload_cipher cipher(
      prevalent::encryption_key(prevalent::bytes(prevalent::encryption_key::size, 0x42)));
  const std::vector<std::uint8_t> record(100, 0x5a);
  std::array<std::uint8_t, prevalent::format::record_ad_size> ad{};
  prevalent::bytes sealed, plain;
  std::vector<std::uint8_t> nonces(1000 * prevalent::format::nonce_size);
  const int n = 500'000;
  std::size_t sink = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    ad[20] = static_cast<std::uint8_t>(i);
    if (i % 1000 == 0) prevalent::detail::random_bytes(nonces.data(), nonces.size());
    sealed.clear();
    cipher.seal(prevalent::detail::payload_cipher::purpose::record, record, ad, sealed,
                &nonces[static_cast<std::size_t>(i % 1000) * prevalent::format::nonce_size]);
    if (and_open)
      sink += cipher.open(prevalent::detail::payload_cipher::purpose::record, sealed, ad, plain);
    sink += sealed.size();
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (sink == 1) std::printf(" ");  // keep the loop
  return n / secs;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--snapshot-child")
    return snapbench::child_main(argc, argv);
  config c;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      c.quick = true;
    else if (a == "--dir" && i + 1 < argc)
      c.dir = argv[++i];
    else if (a == "--csv" && i + 1 < argc)
      c.csv = argv[++i];
    else if (a == "--runs" && i + 1 < argc)
      c.runs = std::max(1, std::atoi(argv[++i]));
    else if (a == "--only" && i + 1 < argc)
      c.only = argv[++i];
    else if (a == "--threads" && i + 1 < argc) {
      c.threads.clear();  // comma-separated writer counts, e.g. 1,64 (1 is the ratio base)
      for (std::string list = argv[++i]; !list.empty();) {
        const auto comma = list.find(',');
        c.threads.push_back(std::max(1, std::atoi(list.substr(0, comma).c_str())));
        list = comma == std::string::npos ? "" : list.substr(comma + 1);
      }
    } else {
      std::cerr << "usage: bench [--quick] [--dir DIR] [--csv FILE] [--runs N] [--only SECTION] "
                   "[--threads N,N,...]\n";
      return 2;
    }
  }
  if (c.quick) {
    c.runs = 1;
    c.duration = 500ms;
    c.sessions = 100'000;
  }
  fs::create_directories(c.dir);
  bench::results out;
  const int raw_n = c.quick ? 300 : 2000;

  auto section = [&](const char* name) { return c.only.empty() || c.only == name; };
  std::printf("== the limit: ~100-byte write + fdatasync loop in %s\n", c.dir.c_str());
  std::vector<double> grow, pre;
  for (int r = 0; r < c.runs; ++r) {
    grow.push_back(raw_loop(c, false, raw_n));
    pre.push_back(raw_loop(c, true, raw_n));
  }
  const double raw = bench::median(grow);
  out.add({"limit", "raw write+fdatasync, growing file", raw, "ops/s", -1, -1, ""});
  out.add({"limit", "raw write+fdatasync, preallocated", bench::median(pre), "ops/s", -1, -1,
           bench::times(bench::median(pre), raw) + " growing"});

  double one_writer = 0;
  if (section("writers"))
    std::printf(
        "== durable execute (policy always) vs SQLite (WAL, synchronous=FULL) and RocksDB "
        "(sync writes, where built)\n");
  for (int threads : c.threads) {
    if (!section("writers")) break;
    double base = raw;
    throughput p;
    if (threads == 1) {
      // The 1-writer figure is compared with raw loops run right beside it: the disk's
      // speed drifts by 2x over minutes on these shared machines.
      std::vector<double> near_raw, ops, p50, p99;
      for (int r = 0; r < c.runs; ++r) {
        near_raw.push_back(raw_loop(c, false, raw_n));
        auto t = prevalent_writers(c, 1);
        ops.push_back(t.ops_per_s);
        p50.push_back(t.p50_us);
        p99.push_back(t.p99_us);
      }
      base = bench::median(near_raw);
      p = {bench::median(ops), bench::median(p50), bench::median(p99)};
      out.add({"limit", "raw write+fdatasync, beside 1 writer", base, "ops/s", -1, -1, ""});
    } else {
      p = median_of(c, [&] { return prevalent_writers(c, threads); });
    }
    auto s = median_of(c, [&] { return sqlite_writers(c, threads); });
    if (threads == 1) one_writer = p.ops_per_s;
    std::string vs_rocksdb;
#ifdef PREVALENT_BENCH_ROCKSDB
    auto k = median_of(c, [&] { return rocksdb_writers(c, threads); });
    vs_rocksdb = ", " + bench::times(p.ops_per_s, k.ops_per_s) + " rocksdb";
#endif
    out.add({"writers", "prevalent always, " + std::to_string(threads) + " threads", p.ops_per_s,
             "ops/s", p.p50_us, p.p99_us,
             bench::times(p.ops_per_s, base) + " raw, " + bench::times(p.ops_per_s, s.ops_per_s) +
                 " sqlite, " + bench::times(p.ops_per_s, one_writer) + " 1-thread" + vs_rocksdb});
    out.add({"sqlite", "sqlite full, " + std::to_string(threads) + " threads", s.ops_per_s, "ops/s",
             s.p50_us, s.p99_us, bench::times(s.ops_per_s, base) + " raw"});
#ifdef PREVALENT_BENCH_ROCKSDB
    out.add({"rocksdb", "rocksdb sync, " + std::to_string(threads) + " threads", k.ops_per_s,
             "ops/s", k.p50_us, k.p99_us, bench::times(k.ops_per_s, base) + " raw"});
    out.add({"ratio", "prevalent / rocksdb, " + std::to_string(threads) + " threads",
             p.ops_per_s / k.ops_per_s, "x", -1, -1, bench::times(p.ops_per_s, k.ops_per_s)});
#endif
  }

#ifdef PREVALENT_BENCH_ASIO
  if (section("async")) {
    // Issue 8: AsyncStore with 1,000 commands in flight on 2 io threads, against the
    // synchronous API with 64 threads, alternated run by run (the disk's speed drifts).
    std::printf("== async durable commands (AsyncStore, policy always) vs 64 sync threads\n");
    constexpr int in_flight = 1000, io_threads = 2, sync_threads = 64;
    std::vector<double> sync_ops, sync_p50, sync_p99, async_ops, async_p50, async_p99;
    std::uint64_t errors = 0;
    for (int r = 0; r < c.runs; ++r) {
      auto s = prevalent_writers(c, sync_threads);
      sync_ops.push_back(s.ops_per_s);
      sync_p50.push_back(s.p50_us);
      sync_p99.push_back(s.p99_us);
      auto a = bench::async_writers<prevalent::AsyncStore<KV, Put>>(
          fresh(c, "async"), kv_options(prevalent::sync_policy::always()), in_flight, io_threads,
          c.duration, [](std::uint64_t n) {
            return Put{key_for(n), value_for(n)};
          });
      errors += a.errors;
      async_ops.push_back(a.ops_per_s);
      async_p50.push_back(a.p50_us);
      async_p99.push_back(a.p99_us);
    }
    const double base = bench::median(sync_ops);
    out.add({"async", "sync execute, 64 threads", base, "ops/s", bench::median(sync_p50),
             bench::median(sync_p99), ""});
    out.add({"async", "async_execute, 1000 in flight, 2 io", bench::median(async_ops), "ops/s",
             bench::median(async_p50), bench::median(async_p99),
             bench::times(bench::median(async_ops), base) + " sync 64 threads" +
                 (errors ? ", " + std::to_string(errors) + " ERRORS" : "")});
  }
#endif

  if (section("none")) std::printf("== policy none, one thread\n");
  const std::size_t none_n = c.quick ? 200'000 : 1'000'000;
  for (auto codec : {prevalent::codec::json, prevalent::codec::cbor}) {
    if (!section("none")) break;
    std::vector<double> v;
    for (int r = 0; r < c.runs; ++r)
      v.push_back(none_policy(c, kv_options(prevalent::sync_policy::none(), codec), none_n));
    out.add({"none", std::string("none, 1 thread, ") + prevalent::codec_name(codec),
             bench::median(v), "ops/s", -1, -1, ""});
  }

  if (section("window")) {
    // Issue 7: under `none`, a SIGKILL lost 40-50% of what 4 writers had acknowledged while
    // the queue to the writer thread could hold 64 MiB. max_queued_bytes bounds it.
    std::printf("== policy none: acknowledged commands a SIGKILL loses (4 writers, 250 ms)\n");
    // Small segments make the writer thread slow (a roll is three fsyncs): the case where a
    // queue of 64 MiB held 100 ms of acknowledged commands.
    for (std::uint64_t segment : {std::uint64_t{64} << 20, std::uint64_t{16} << 10})
      for (std::size_t queue :
           {std::size_t{64} << 20, std::size_t{256} << 10, std::size_t{64} << 10}) {
        auto o = kv_options(prevalent::sync_policy::none());
        o.max_queued_bytes = queue;
        o.segment_bytes = segment;
        const auto loss = bench::none_crash_window<KVStore>(
            c.dir / "window", o,
            [](std::uint64_t i) {
              return Put{key_for(i), value_for(i)};
            },
            std::max(c.runs, 5), 250ms);
        const std::string label = "segments " + std::to_string(segment >> 10) + " KiB, queue " +
                                  std::to_string(queue >> 10) + " KiB";
        out.add({"window", label + ", lost commands", loss.lost_commands, "commands", -1, -1, ""});
        out.add({"window", label + ", lost time", loss.lost_ms, "ms", -1, -1, ""});
        std::vector<double> v;
        for (int r = 0; r < c.runs; ++r) v.push_back(none_policy(c, o, none_n));
        out.add({"window", label + ", 1-thread throughput", bench::median(v), "ops/s", -1, -1, ""});
      }
  }

  if (section("queries")) std::printf("== queries while one writer runs\n");
  for (auto [policy, label] : {std::pair{prevalent::sync_policy::always(), "always"},
                               std::pair{prevalent::sync_policy::none(), "none"}})
    for (int readers : {1, 2}) {
      if (!section("queries")) break;
      const prevalent::sync_policy sync = policy;  // clang 14 cannot capture a binding
      auto q = median_of(c, [&] { return queries_while_writing(c, readers, sync); });
      out.add(
          {"queries",
           std::string("queries, writer ") + label + ", " + std::to_string(readers) + " readers",
           q.ops_per_s, "queries/s", q.p50_us, q.p99_us, ""});
    }

  if (section("checksum")) {
    std::printf("== CRC-32C of 100-byte records\n");
    std::vector<double> lib, boost_crc;
    for (int r = 0; r < c.runs; ++r) {  // alternated: the machine's speed drifts
      lib.push_back(checksums_per_s(true));
      boost_crc.push_back(checksums_per_s(false));
    }
    const double b = bench::median(boost_crc);
    out.add({"checksum", "Boost.CRC table (baseline)", b, "records/s", -1, -1, ""});
    out.add({"checksum", "prevalent::crc32c", bench::median(lib), "records/s", -1, -1,
             bench::times(bench::median(lib), b) + " Boost.CRC"});
  }

  if (section("digest")) {
    // Issue 10: the state digest of snapshot headers (XXH3-128), beside BLAKE2b-128 (libsodium's
    // crypto_generichash, the hash the store already links) and the CRC-32C every snapshot
    // payload already pays, over the same 64 MiB in one run, alternated.
    std::printf("== state digest of a 64 MiB payload\n");
    if (sodium_init() < 0) throw std::runtime_error("libsodium failed to initialize");
    std::vector<double> xxh, blake, crc;
    for (int r = 0; r < c.runs; ++r) {
      xxh.push_back(
          hashed_bytes_per_s([](prevalent::byte_view b) { return prevalent::state_digest(b)[0]; }));
      blake.push_back(hashed_bytes_per_s([](prevalent::byte_view b) {
        std::uint8_t out[16];
        crypto_generichash(out, sizeof out, b.data(), b.size(), nullptr, 0);
        return out[0];
      }));
      crc.push_back(hashed_bytes_per_s(
          [](prevalent::byte_view b) { return static_cast<std::uint8_t>(prevalent::crc32c(b)); }));
    }
    const double base = bench::median(blake);
    out.add({"digest", "BLAKE2b-128 (baseline)", base / 1e6, "MB/s", -1, -1, ""});
    out.add({"digest", "XXH3-128 (state_digest)", bench::median(xxh) / 1e6, "MB/s", -1, -1,
             bench::times(bench::median(xxh), base) + " BLAKE2b"});
    out.add({"digest", "CRC-32C (payload_crc)", bench::median(crc) / 1e6, "MB/s", -1, -1,
             bench::times(bench::median(crc), base) + " BLAKE2b"});
  }

  if (section("replay")) std::printf("== replay and snapshots, %zu sessions\n", c.sessions);
  for (auto codec : {prevalent::codec::cbor, prevalent::codec::json}) {
    if (!section("replay")) break;
    const std::string name = prevalent::codec_name(codec);
    auto built = build_sessions(c, codec);
    std::vector<double> verify, generic, fast, decode_only, pipeline, fast_cores, cores;
    for (int r = 0; r < c.runs; ++r) {  // alternated: the machine's speed drifts
      auto f = replay_rates(built.dir, codec, c.sessions);
      verify.push_back(f.verify);
      generic.push_back(f.generic);
      fast.push_back(f.fast);
      decode_only.push_back(f.decode_only);
      fast_cores.push_back(f.fast_cores);
      cores.push_back(f.pipeline_cores);
      pipeline.push_back(f.pipeline);
    }
    const double base = bench::median(generic), rate = bench::median(pipeline);
    out.add({"replay", "read+verify only " + name + " (limit)", bench::median(verify), "records/s",
             -1, -1, ""});
    out.add(
        {"replay", "sequential, generic " + name + " (baseline)", base, "records/s", -1, -1, ""});
    out.add({"replay", "sequential, fast envelope " + name, bench::median(fast), "records/s", -1,
             -1,
             bench::times(bench::median(fast), base) + " baseline, " +
                 cores_used(bench::median(fast_cores))});
    out.add({"replay", "sequential, fast decode only " + name + " (no apply)",
             bench::median(decode_only), "records/s", -1, -1, ""});
    out.add({"replay", "replay " + name + ", records/s", rate, "records/s", -1, -1,
             bench::times(rate, base) + " baseline, " + cores_used(bench::median(cores))});
    out.add(
        {"replay", "replay " + name + ", MB/s",
         static_cast<double>(built.journal_bytes) / 1e6 * rate / static_cast<double>(c.sessions),
         "MB/s", -1, -1, ""});
    if (codec != prevalent::codec::cbor) continue;  // snapshots are JSON either way
    auto snap = snapshot_under_load(built.dir, codec);
    out.add({"snapshot", "snapshot write (json)", snap.write_s * 1000, "ms", -1, -1,
             std::to_string(snap.bytes / 1000000) + " MB"});
    out.add({"snapshot", "open: snapshot load + tail", snap.load_s * 1000, "ms", -1, -1, ""});
    out.add({"snapshot", "longest execute stall", snap.longest_stall_ms, "ms", -1, -1,
             bench::times(snap.longest_stall_ms, snap.write_s * 1000) + " of snapshot time"});
  }

  if (section("rebuild")) {
    std::printf("== a throwing apply() rebuilds the state under the lock, %zu sessions\n",
                c.sessions);
    auto built = build_sessions(c, prevalent::codec::cbor);
    std::vector<double> journal_only, from_snapshot;
    for (int r = 0; r < c.runs; ++r)
      journal_only.push_back(rebuild_stall_ms(built.dir, prevalent::codec::cbor));
    {
      RebuildStore store(built.dir,
                         kv_options(prevalent::sync_policy::always(), prevalent::codec::cbor));
      store.snapshot();
    }
    for (int r = 0; r < c.runs; ++r)
      from_snapshot.push_back(rebuild_stall_ms(built.dir, prevalent::codec::cbor));
    out.add({"rebuild", "stall, state from the whole journal", bench::median(journal_only), "ms",
             -1, -1, ""});
    out.add({"rebuild", "stall, state from a snapshot", bench::median(from_snapshot), "ms", -1, -1,
             ""});
  }

  if (section("encryption")) {
    // Issue 12: what XChaCha20-Poly1305 of every record and snapshot costs. Each figure beside
    // the same workload in clear, runs alternated (the disk's speed drifts on shared machines).
    std::printf("== encryption at rest: sealed records and snapshots vs the same in clear\n");
    {
      std::vector<double> seal, both, crc;
      for (int r = 0; r < c.runs; ++r) {
        seal.push_back(sealed_per_s(false));
        both.push_back(sealed_per_s(true));
        crc.push_back(checksums_per_s(true));
      }
      const double base = bench::median(crc);
      out.add({"encryption", "crc32c of a 100-byte record", base, "records/s", -1, -1, ""});
      out.add({"encryption", "seal a 100-byte record", bench::median(seal), "records/s", -1, -1,
               bench::times(bench::median(seal), base) + " crc32c"});
      out.add({"encryption", "seal and open a 100-byte record", bench::median(both), "records/s",
               -1, -1, bench::times(bench::median(both), base) + " crc32c"});
    }
    for (int threads : {1, 16}) {
      std::vector<throughput> plain, sealed;
      for (int r = 0; r < c.runs; ++r) {
        plain.push_back(prevalent_writers(c, threads, false));
        sealed.push_back(prevalent_writers(c, threads, true));
      }
      auto med = [](const std::vector<throughput>& v) {
        std::vector<double> ops, p50, p99;
        for (auto& t : v) {
          ops.push_back(t.ops_per_s);
          p50.push_back(t.p50_us);
          p99.push_back(t.p99_us);
        }
        return throughput{bench::median(ops), bench::median(p50), bench::median(p99)};
      };
      const auto p = med(plain), s = med(sealed);
      const std::string label = "always, " + std::to_string(threads) + " thread(s)";
      out.add({"encryption", label + ", clear", p.ops_per_s, "ops/s", p.p50_us, p.p99_us, ""});
      out.add({"encryption", label + ", encrypted", s.ops_per_s, "ops/s", s.p50_us, s.p99_us,
               bench::times(s.ops_per_s, p.ops_per_s) + " clear"});
    }
    {
      std::vector<double> plain, sealed;
      const auto o = kv_options(prevalent::sync_policy::none());
      for (int r = 0; r < c.runs; ++r) {
        plain.push_back(none_policy(c, o, none_n));
        sealed.push_back(none_policy(c, encrypted(o), none_n));
      }
      out.add({"encryption", "none, 1 thread, clear", bench::median(plain), "ops/s", -1, -1, ""});
      out.add({"encryption", "none, 1 thread, encrypted", bench::median(sealed), "ops/s", -1, -1,
               bench::times(bench::median(sealed), bench::median(plain)) + " clear"});
    }
    {
      // One sessions store built in clear, copied; the copy's first snapshot seals it.
      auto built = build_sessions(c, prevalent::codec::json);
      const fs::path clear_dir = c.dir / "snap-clear", sealed_dir = c.dir / "snap-sealed";
      for (const auto& d : {clear_dir, sealed_dir}) {
        fs::remove_all(d);
        fs::copy(built.dir, d, fs::copy_options::recursive);
        fs::remove(d / "LOCK");
      }
      const auto o = kv_options(prevalent::sync_policy::always(), prevalent::codec::json);
      std::vector<double> plain, sealed, plain_open, sealed_open;
      for (int r = 0; r < c.runs; ++r) {
        plain.push_back(snapshot_seconds(clear_dir, o) * 1000);
        sealed.push_back(snapshot_seconds(sealed_dir, encrypted(o)) * 1000);
        plain_open.push_back(open_seconds(clear_dir, o) * 1000);
        sealed_open.push_back(open_seconds(sealed_dir, encrypted(o)) * 1000);
      }
      std::uintmax_t snap_bytes = 0;
      for (auto& e : fs::directory_iterator(sealed_dir))
        if (e.path().extension() == ".snap") snap_bytes = std::max(snap_bytes, e.file_size());
      const std::string n = std::to_string(c.sessions / 1000) + "k sessions";
      out.add({"encryption", "snapshot write, " + n + ", clear", bench::median(plain), "ms", -1, -1,
               std::to_string(snap_bytes / 1000000) + " MB"});
      out.add({"encryption", "snapshot write, " + n + ", encrypted", bench::median(sealed), "ms",
               -1, -1, bench::times(bench::median(sealed), bench::median(plain)) + " clear"});
      out.add({"encryption", "open from snapshot, " + n + ", clear", bench::median(plain_open),
               "ms", -1, -1, ""});
      out.add({"encryption", "open from snapshot, " + n + ", encrypted", bench::median(sealed_open),
               "ms", -1, -1,
               bench::times(bench::median(sealed_open), bench::median(plain_open)) + " clear"});
    }
  }

  if (section("snapshot")) snapbench::run(c.dir, c.sessions, c.runs, out);

  out.write_csv(c.csv);
  std::printf("CSV written to %s\n", c.csv.c_str());
  fs::remove_all(c.dir);
  return 0;
}

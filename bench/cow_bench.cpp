// cow_bench: prevalent::cow_map against std::map with the same entries (a session store's
// shape: 64-hex-digit keys, ~100-byte values), in one run, as ratios: insert, find, iterate,
// copy (a snapshot's capture), writes while a copy is alive, heap bytes per entry; and the
// same for several leaf sizes (MaxLeaf), which is how the default was chosen.
//   cow_bench [--entries N] [--runs R] [--csv FILE]
// Medians of R runs (default 3). The numbers and what they mean: README, "Large states: cow_map".
#include <malloc.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <prevalent/cow_map.hpp>

#include "measure.hpp"

namespace {

struct value {
  std::string user;
  std::int64_t created = 0, expires = 0, ttl = 0;
};

std::string hex_key(std::mt19937_64& rng) {
  static const char digits[] = "0123456789abcdef";
  std::string k(64, '0');
  for (std::size_t i = 0; i < 64; i += 16) {
    std::uint64_t r = rng();
    for (std::size_t j = 0; j < 16; ++j, r >>= 4) k[i + j] = digits[r & 15];
  }
  return k;
}

std::size_t heap_in_use() { return mallinfo2().uordblks; }

struct figures {
  double insert_ns = 0, find_ns = 0, iterate_ns = 0, copy_ms = 0, shared_write_ns = 0,
         unshared_write_ns = 0, first_shared_write_ns = 0, bytes_per_entry = 0;
  std::size_t clones = 0;
};

// One run on a map type; `keys` in random order.
template <class Map>
figures run(const std::vector<std::string>& keys, const std::vector<std::size_t>& probes) {
  figures f;
  const std::size_t heap0 = heap_in_use();
  auto* m = new Map;
  auto t0 = bench::clock::now();
  for (std::size_t i = 0; i < keys.size(); ++i)
    (*m)[keys[i]] = value{"user-" + std::to_string(i % 1000) + "-with-a-longer-name", 1, 2, 3};
  f.insert_ns = bench::seconds_since(t0) * 1e9 / static_cast<double>(keys.size());
  f.bytes_per_entry = static_cast<double>(heap_in_use() - heap0) / static_cast<double>(keys.size());

  std::int64_t sum = 0;
  t0 = bench::clock::now();
  for (std::size_t p : probes) sum += m->find(keys[p])->second.ttl;
  f.find_ns = bench::seconds_since(t0) * 1e9 / static_cast<double>(probes.size());

  t0 = bench::clock::now();
  for (const auto& [k, v] : *m) sum += v.created + static_cast<std::int64_t>(k.size());
  f.iterate_ns = bench::seconds_since(t0) * 1e9 / static_cast<double>(keys.size());

  // Writes with no copy alive, then while a copy (a snapshot's capture) is alive.
  const std::size_t writes = probes.size() / 2;
  t0 = bench::clock::now();
  for (std::size_t i = 0; i < writes; ++i) (*m)[keys[probes[i]]].expires = static_cast<int>(i);
  f.unshared_write_ns = bench::seconds_since(t0) * 1e9 / static_cast<double>(writes);
  t0 = bench::clock::now();
  auto* copy = new Map(*m);
  f.copy_ms = bench::seconds_since(t0) * 1e3;
  // The first writes after the copy: nearly each one clones a leaf (a snapshot's worst case).
  const std::size_t first = 1000;
  t0 = bench::clock::now();
  for (std::size_t i = writes; i < writes + first; ++i)
    (*m)[keys[probes[i]]].expires = static_cast<int>(i);
  f.first_shared_write_ns = bench::seconds_since(t0) * 1e9 / static_cast<double>(first);
  if constexpr (requires { m->leaf_clones(); }) f.clones = m->leaf_clones();
  t0 = bench::clock::now();
  for (std::size_t i = writes + first; i < 2 * writes; ++i)
    (*m)[keys[probes[i]]].expires = static_cast<int>(i);
  f.shared_write_ns = bench::seconds_since(t0) * 1e9 / static_cast<double>(writes - first);
  sum += static_cast<std::int64_t>(copy->size());
  delete copy;
  delete m;
  if (sum == 42) std::printf("%lld\n", static_cast<long long>(sum));  // keep the reads
  return f;
}

template <class Map>
figures median_of(int runs, const std::vector<std::string>& keys,
                  const std::vector<std::size_t>& probes) {
  std::vector<figures> all;
  for (int r = 0; r < runs; ++r) all.push_back(run<Map>(keys, probes));
  auto med = [&](double figures::*field) {
    std::vector<double> v;
    for (const auto& f : all) v.push_back(f.*field);
    return bench::median(v);
  };
  figures out;
  out.insert_ns = med(&figures::insert_ns);
  out.find_ns = med(&figures::find_ns);
  out.iterate_ns = med(&figures::iterate_ns);
  out.copy_ms = med(&figures::copy_ms);
  out.shared_write_ns = med(&figures::shared_write_ns);
  out.unshared_write_ns = med(&figures::unshared_write_ns);
  out.first_shared_write_ns = med(&figures::first_shared_write_ns);
  out.bytes_per_entry = med(&figures::bytes_per_entry);
  out.clones = all.back().clones;
  return out;
}

std::string ratio(double a, double b) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f x std::map", a / b);
  return buf;
}

template <std::size_t B>
using cow = prevalent::cow_map<std::string, value, std::less<std::string>, B>;

}  // namespace

int main(int argc, char** argv) {
  std::size_t entries = 1'000'000;
  int runs = 3;
  std::string csv;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--entries" && i + 1 < argc) {
      entries = std::strtoull(argv[++i], nullptr, 10);
    } else if (a == "--runs" && i + 1 < argc) {
      runs = std::atoi(argv[++i]);
    } else if (a == "--csv" && i + 1 < argc) {
      csv = argv[++i];
    } else {
      std::fprintf(stderr, "usage: cow_bench [--entries N] [--runs R] [--csv FILE]\n");
      return 2;
    }
  }
  if (entries < 1000 || runs < 1) {
    std::fprintf(stderr, "cow_bench: --entries must be at least 1000 and --runs at least 1\n");
    return 2;
  }
  std::mt19937_64 rng(42);
  std::vector<std::string> keys(entries);
  for (auto& k : keys) k = hex_key(rng);
  std::vector<std::size_t> probes(200'000);
  for (auto& p : probes) p = rng() % entries;

  std::printf(
      "== cow_map vs std::map, %zu entries (64-char keys, ~100-byte values), median of %d\n",
      entries, runs);
  const figures base = median_of<std::map<std::string, value>>(runs, keys, probes);
  bench::results out;
  auto report = [&](const std::string& name, const figures& f) {
    out.add({"cow", name + " insert", f.insert_ns, "ns/op", -1, -1,
             ratio(f.insert_ns, base.insert_ns)});
    out.add({"cow", name + " find", f.find_ns, "ns/op", -1, -1, ratio(f.find_ns, base.find_ns)});
    out.add({"cow", name + " iterate", f.iterate_ns, "ns/entry", -1, -1,
             ratio(f.iterate_ns, base.iterate_ns)});
    out.add(
        {"cow", name + " copy", f.copy_ms * 1000, "us", -1, -1, ratio(f.copy_ms, base.copy_ms)});
    out.add({"cow", name + " write, no copy alive", f.unshared_write_ns, "ns/op", -1, -1,
             ratio(f.unshared_write_ns, base.unshared_write_ns)});
    out.add({"cow", name + " first 1000 writes, copy alive", f.first_shared_write_ns, "ns/op", -1,
             -1,
             ratio(f.first_shared_write_ns, base.first_shared_write_ns) + ", " +
                 std::to_string(f.clones) + " leaves cloned"});
    out.add({"cow", name + " next writes, copy alive", f.shared_write_ns, "ns/op", -1, -1,
             ratio(f.shared_write_ns, base.shared_write_ns)});
    out.add({"cow", name + " heap", f.bytes_per_entry, "B/entry", -1, -1,
             ratio(f.bytes_per_entry, base.bytes_per_entry)});
  };
  report("std::map", base);
  report("cow_map B=32", median_of<cow<32>>(runs, keys, probes));
  report("cow_map B=64 (default)", median_of<cow<64>>(runs, keys, probes));
  report("cow_map B=128", median_of<cow<128>>(runs, keys, probes));
  report("cow_map B=256", median_of<cow<256>>(runs, keys, probes));
  if (!csv.empty()) out.write_csv(csv);
  return 0;
}

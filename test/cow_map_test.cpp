// prevalent::cow_map: every operation against std::map under random sequences (small leaves,
// so that splits and merges happen all the time), sharing between copies, a copy read on one
// thread while the original is written on another, and a Store whose state holds a cow_map.
// Serialization and the snapshot-part hooks are in cow_map_json_test.cpp.
#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <prevalent/cow_map.hpp>
#include <prevalent/prevalent.hpp>

#include "support.hpp"

using prevalent::cow_map;

namespace {

template <class Cow, class Std>
void check_equal(const Cow& c, const Std& s) {
  REQUIRE(c.size() == s.size());
  REQUIRE(c.empty() == s.empty());
  auto ci = c.begin();
  for (const auto& [k, v] : s) {
    REQUIRE(ci != c.end());
    REQUIRE(ci->first == k);
    REQUIRE(ci->second == v);
    ++ci;
  }
  REQUIRE(ci == c.end());
  // Backwards too.
  auto sr = s.rbegin();
  for (auto it = c.end(); it != c.begin();) {
    --it;
    REQUIRE(sr != s.rend());
    REQUIRE(it->first == sr->first);
    ++sr;
  }
  REQUIRE(sr == s.rend());
}

template <class Cow, class Std>
void check_lookups(const Cow& c, const Std& s, int key) {
  auto cf = c.find(key);
  auto sf = s.find(key);
  REQUIRE((cf == c.end()) == (sf == s.end()));
  if (sf != s.end()) REQUIRE(cf->second == sf->second);
  REQUIRE(c.contains(key) == (s.count(key) == 1));
  REQUIRE(c.count(key) == s.count(key));
  if (sf != s.end()) {
    REQUIRE(c.at(key) == s.at(key));
  } else {
    REQUIRE_THROWS_AS((void)c.at(key), std::out_of_range);
  }
  auto cl = c.lower_bound(key);
  auto sl = s.lower_bound(key);
  REQUIRE((cl == c.end()) == (sl == s.end()));
  if (sl != s.end()) REQUIRE(cl->first == sl->first);
  auto cu = c.upper_bound(key);
  auto su = s.upper_bound(key);
  REQUIRE((cu == c.end()) == (su == s.end()));
  if (su != s.end()) REQUIRE(cu->first == su->first);
}

template <std::size_t B>
void run_model(std::uint32_t seed, int steps, int key_range) {
  using Cow = cow_map<int, std::string, std::less<int>, B>;
  std::mt19937 rng(seed);
  auto key = [&] { return static_cast<int>(rng() % static_cast<std::uint32_t>(key_range)); };
  Cow c;
  std::map<int, std::string> s;
  // Older copies, each with the std::map it must still equal.
  std::vector<std::pair<Cow, std::map<int, std::string>>> copies;
  for (int step = 0; step < steps; ++step) {
    const int k = key();
    const std::string v = std::to_string(rng() % 1000);
    const unsigned op = rng() % 18;
    INFO("seed " << seed << " step " << step << " op " << op << " key " << k);
    switch (op) {
      case 0: {
        auto [it, added] = c.insert({k, v});
        auto [sit, sadded] = s.insert({k, v});
        REQUIRE(added == sadded);
        REQUIRE(it->first == k);
        REQUIRE(it->second == sit->second);
        break;
      }
      case 1: {
        auto [it, added] = c.emplace(k, v);
        REQUIRE(added == s.emplace(k, v).second);
        REQUIRE(it->second == s.at(k));
        break;
      }
      case 2: {
        auto [it, added] = c.try_emplace(k, v);
        REQUIRE(added == s.try_emplace(k, v).second);
        REQUIRE(it->first == k);
        break;
      }
      case 3: {
        auto [it, added] = c.insert_or_assign(k, v);
        REQUIRE(added == s.insert_or_assign(k, v).second);
        REQUIRE(it->second == v);
        break;
      }
      case 4:
      case 5:
        c[k] += v;
        s[k] += v;
        break;
      case 6:
      case 7: REQUIRE(c.erase(k) == s.erase(k)); break;
      case 8: {  // erase(iterator) at a lower bound, checking the iterator returned
        auto it = c.lower_bound(k);
        auto sit = s.lower_bound(k);
        if (sit == s.end()) break;
        it = c.erase(it);
        sit = s.erase(sit);
        REQUIRE((it == c.end()) == (sit == s.end()));
        if (sit != s.end()) REQUIRE(it->first == sit->first);
        break;
      }
      case 9: {
        std::string* p = c.find_mutable(k);
        auto sit = s.find(k);
        REQUIRE((p == nullptr) == (sit == s.end()));
        if (p) {
          *p = v;
          sit->second = v;
        }
        break;
      }
      case 10:
        REQUIRE(c.modify(k, [&](std::string& x) { x = v + "m"; }) == (s.count(k) > 0));
        if (s.count(k)) s[k] = v + "m";
        break;
      case 11:
      case 12: {
        const int mod = 2 + static_cast<int>(rng() % 5);
        const int width = static_cast<int>(rng() % 100);
        // Scattered removals, or nearly all of a range (leaving tiny leaves that merge).
        auto pred = [&](const auto& e) {
          if (op % 2 == 0) return e.first >= k && e.first < k + width && e.first % 7 != 0;
          return e.first % mod == 0 && e.second.size() % 2 == 0;
        };
        REQUIRE(erase_if(c, pred) == std::erase_if(s, pred));
        break;
      }
      case 13:
        if (rng() % 8 == 0) copies.emplace_back(c, s);
        if (copies.size() > 4) copies.erase(copies.begin());
        break;
      case 16:
        if (rng() % 64 == 0) {
          c.clear();
          s.clear();
        }
        break;
      case 14:
        if (!s.empty()) {  // mutate() through an iterator
          auto it = c.lower_bound(k);
          if (it == c.end()) it = c.begin();
          const int at = it->first;
          c.mutate(it) = v;
          s[at] = v;
        }
        break;
      default: check_lookups(c, s, k); break;
    }
    REQUIRE(c.size() == s.size());
    if (step % 97 == 0) {
      check_equal(c, s);
      for (const auto& [copy, model] : copies) check_equal(copy, model);
      REQUIRE(c == Cow(c));
    }
  }
  check_equal(c, s);
  for (const auto& [copy, model] : copies) check_equal(copy, model);
  for (int k = -1; k <= key_range; ++k) check_lookups(c, s, k);
}

}  // namespace

TEST_CASE("cow_map behaves as std::map under random operations, copies included") {
  for (std::uint32_t seed = 1; seed <= 6; ++seed) {
    run_model<8>(seed, 6000, 300);
    run_model<16>(seed + 100, 4000, 2000);
    run_model<128>(seed + 200, 4000, 5000);
  }
}

TEST_CASE("cow_map with string keys: the prefix search index follows every operation") {
  // String keys are searched through the first 8 bytes of each leaf's first key. Keys here
  // share long prefixes (only the 9th byte on differs), are shorter than 8 bytes, or are
  // prefixes of each other, so the index's ties and its zero padding are exercised; leaves of
  // 8 make splits and merges constant. After every step the index must match the leaves.
  using Cow = cow_map<std::string, int, std::less<>, 8>;
  for (std::uint32_t seed = 1; seed <= 4; ++seed) {
    std::mt19937 rng(seed);
    auto key = [&] {
      const int n = static_cast<int>(rng() % 400);
      switch (rng() % 4) {
        case 0: return "sessions" + std::to_string(n);  // 8 shared bytes, then the number
        case 1: return std::to_string(n);               // short
        case 2: return std::string("ab", rng() % 3);    // "", "a", "ab"
        default: return std::string(8, 'z') + std::string(n % 3, '\0');
      }
    };
    Cow c;
    std::map<std::string, int, std::less<>> s;
    std::vector<std::pair<Cow, std::map<std::string, int, std::less<>>>> copies;
    for (int step = 0; step < 5000; ++step) {
      const std::string k = key();
      switch (rng() % 8) {
        case 0:
        case 1:
        case 2: REQUIRE(c.try_emplace(k, step).second == s.try_emplace(k, step).second); break;
        case 3: REQUIRE(c.erase(k) == s.erase(k)); break;
        case 4: {
          const char first = k.empty() ? 'a' : k[0];
          auto pred = [&](const auto& e) { return !e.first.empty() && e.first[0] == first; };
          REQUIRE(erase_if(c, pred) == std::erase_if(s, pred));
          break;
        }
        case 5:
          if (rng() % 16 == 0) copies.emplace_back(c, s);
          if (copies.size() > 3) copies.erase(copies.begin());
          break;
        case 6:
          if (rng() % 100 == 0) {
            c.clear();
            s.clear();
          }
          break;
        default: break;
      }
      REQUIRE(c.index_consistent());
      const std::string probe = key();
      REQUIRE(c.contains(probe) == (s.count(probe) == 1));
      REQUIRE(c.contains(std::string_view(probe)) == (s.count(probe) == 1));
      auto cl = c.lower_bound(probe);
      auto sl = s.lower_bound(probe);
      REQUIRE((cl == c.end()) == (sl == s.end()));
      if (sl != s.end()) REQUIRE(cl->first == sl->first);
    }
    check_equal(c, s);
    for (const auto& [copy, model] : copies) {
      REQUIRE(copy.index_consistent());
      check_equal(copy, model);
    }
    std::vector<std::pair<std::string, int>> sorted(s.begin(), s.end());
    const Cow bulk = Cow::from_sorted(sorted);
    CHECK(bulk.index_consistent());
    for (const auto& [k, v] : s) REQUIRE(bulk.at(k) == v);
  }
}

TEST_CASE("cow_map: operator== compares entries; an empty map iterates nothing") {
  cow_map<int, int> a, b;
  CHECK(a == b);
  CHECK(a.begin() == a.end());
  a[1] = 2;
  CHECK_FALSE(a == b);
  b[1] = 3;
  CHECK_FALSE(a == b);
  b[1] = 2;
  CHECK(a == b);
  cow_map<int, int> c{{1, 2}, {0, 5}};
  CHECK(c.begin()->first == 0);
  CHECK(c.size() == 2);
}

TEST_CASE("cow_map::from_sorted builds leaves in bulk and refuses keys out of order") {
  std::vector<std::pair<int, int>> items;
  for (int i = 0; i < 1000; ++i) items.emplace_back(i * 2, i);
  auto m = cow_map<int, int>::from_sorted(items);
  CHECK(m.size() == 1000);
  CHECK(m.at(1998) == 999);
  constexpr std::size_t fill = cow_map<int, int>::max_leaf - cow_map<int, int>::max_leaf / 8;
  CHECK(m.leaf_count() == (1000 + fill - 1) / fill);
  items[500].first = items[499].first;  // a duplicate
  using int_map = cow_map<int, int>;
  CHECK_THROWS_WITH_AS(int_map::from_sorted(items),
                       "cow_map::from_sorted: the key at position 500 is not greater than the "
                       "one before",
                       std::invalid_argument);
}

TEST_CASE("cow_map: heterogeneous lookup with a transparent comparator") {
  cow_map<std::string, int, std::less<>> m;
  m["alpha"] = 1;
  m["beta"] = 2;
  const std::string_view probe = "beta";
  CHECK(m.find(probe)->second == 2);
  CHECK(m.contains(std::string_view("alpha")));
  CHECK(m.count(std::string_view("gamma")) == 0);
  CHECK(m.lower_bound(std::string_view("b"))->first == "beta");
  CHECK(m.upper_bound(std::string_view("alpha"))->first == "beta");
  *m.find_mutable(probe) = 5;
  CHECK(m.at("beta") == 5);
}

TEST_CASE("cow_map: a copy shares every leaf, and k writes clone at most k leaves") {
  cow_map<int, int> m;
  for (int i = 0; i < 100000; ++i) m[i * 3] = i;
  const std::size_t leaves = m.leaf_count();
  constexpr std::size_t max_leaf = cow_map<int, int>::max_leaf;
  REQUIRE(leaves >= 100000 / max_leaf);
  REQUIRE(m.shared_leaf_count() == 0);
  const cow_map<int, int> copy = m;
  CHECK(m.shared_leaf_count() == leaves);
  CHECK(copy.shared_leaf_count() == leaves);
  CHECK(m.leaf_clones() == 0);

  std::mt19937 rng(7);
  const std::size_t k = 200;
  for (std::size_t w = 0; w < k; ++w) {
    const int key = static_cast<int>(rng() % 300000);
    switch (w % 4) {
      case 0: m[key] = -1; break;                      // insert or assign
      case 1: m.insert_or_assign(key + 1, -2); break;  // most likely an insert
      case 2: m.modify(key - key % 3, [](int& v) { v = -3; }); break;
      default: m.try_emplace(key, -4); break;
    }
  }
  CHECK(m.leaf_clones() <= k);
  CHECK(m.leaf_clones() > 0);
  CHECK(m.shared_leaf_count() + k >= leaves);
  // Reading writes nothing.
  const std::size_t clones = m.leaf_clones();
  long sum = 0;
  for (int i = 0; i < 1000; ++i) sum += m.count(i) + (m.find(i) != m.end() ? 1 : 0);
  for (const auto& [key, v] : m) sum += v;
  CHECK(sum != 0);
  CHECK(m.leaf_clones() == clones);
  // Erasures: an erase may also take in a shared neighbour, so at most two leaves each.
  const std::size_t before = m.leaf_clones();
  for (std::size_t w = 0; w < k; ++w) m.erase(static_cast<int>(rng() % 100000) * 3);
  CHECK(m.leaf_clones() - before <= 2 * k);
  // The copy is what the map was.
  CHECK(copy.size() == 100000);
  for (int i = 0; i < 100000; ++i) REQUIRE(copy.at(i * 3) == i);
}

TEST_CASE(
    "cow_map: a copy read on one thread stays equal to the map at copy time while another "
    "thread writes the original") {
  // The capture of a snapshot: the live map is written (insert, assign, erase, erase_if) while
  // a reader walks the copy and drops it; then the same again with a fresh copy. Run under
  // TSan (tools/sanitize tsan) this also checks that dropping a copy on one thread and
  // writing the leaves in place on the other are ordered: with the acquire load of
  // detail::cow_leaf_ref::unique() made relaxed (shared_ptr::use_count()'s order), TSan
  // reports a data race here.
  cow_map<int, std::string, std::less<int>, 32> live;
  std::mt19937 rng(11);
  for (int i = 0; i < 20000; ++i) live[static_cast<int>(rng() % 60000)] = std::to_string(i);
  for (int round = 0; round < 6; ++round) {
    INFO("round " << round);
    auto copy = std::make_unique<decltype(live)>(live);
    const std::map<int, std::string> expected(live.begin(), live.end());
    std::atomic<bool> reader_done{false};
    std::atomic<int> mismatches{0};
    std::thread reader([&] {
      for (int pass = 0; pass < 3; ++pass) {
        auto it = expected.begin();
        for (const auto& [k, v] : *copy) {
          if (it == expected.end() || it->first != k || it->second != v) ++mismatches;
          if (it != expected.end()) ++it;
        }
        if (it != expected.end()) ++mismatches;
      }
      copy.reset();  // drops its leaves while the writer may be writing
      reader_done = true;
    });
    std::mt19937 wrng(100 + round);
    int writes = 0;
    while (!reader_done || writes < 20000) {
      const int k = static_cast<int>(wrng() % 60000);
      switch (wrng() % 5) {
        case 0: live[k] = "w" + std::to_string(writes); break;
        case 1: live.erase(k); break;
        case 2: live.insert_or_assign(k, std::string("x")); break;
        case 3: live.modify(k, [](std::string& s) { s += "+"; }); break;
        default:
          if (writes % 2000 == 0)
            erase_if(live, [&](const auto& e) { return e.first % 97 == k % 97; });
      }
      ++writes;
    }
    reader.join();
    CHECK(mismatches == 0);
    CHECK(live.shared_leaf_count() == 0);
  }
}

namespace {

struct Catalog {
  cow_map<std::string, int> prices;
  cow_map<int, std::string> names;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Catalog, prices, names)
};

struct SetPrice {
  static constexpr std::string_view name = "set_price";
  std::string item;
  int price = 0;
  int id = 0;
  void apply(Catalog& c, const prevalent::Context&) const {
    if (price < 0) {
      c.prices.erase(item);
      c.names.erase(id);
      return;
    }
    c.prices[item] = price;
    c.names.insert_or_assign(id, item);
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(SetPrice, item, price, id)
};

using CatalogStore = prevalent::Store<Catalog, SetPrice>;

}  // namespace

TEST_CASE("cow_map in a Store's state: snapshot and reopen give the same state") {
  test::temp_dir tmp;
  std::map<std::string, int> expected;
  {
    CatalogStore store(tmp.path());
    for (int i = 0; i < 3000; ++i) {
      const std::string item = "item-" + std::to_string(i * 7 % 2000);
      const int price = i % 11 == 0 ? -1 : i;
      store.execute(SetPrice{item, price, i * 7 % 2000});
      if (price < 0)
        expected.erase(item);
      else
        expected[item] = price;
      if (i == 1500) store.snapshot();
    }
    store.snapshot();
    for (int i = 0; i < 50; ++i) store.execute(SetPrice{"tail-" + std::to_string(i), i, 5000 + i});
    for (int i = 0; i < 50; ++i) expected["tail-" + std::to_string(i)] = i;
  }
  CatalogStore reopened(tmp.path());
  reopened.query([&](const Catalog& c) {
    REQUIRE(c.prices.size() == expected.size());
    CHECK(std::equal(
        c.prices.begin(), c.prices.end(), expected.begin(), expected.end(),
        [](const auto& a, const auto& b) { return a.first == b.first && a.second == b.second; }));
    CHECK(c.prices.index_consistent());  // the loader's assembly rebuilt the search index
    for (const auto& [id, item] : c.names) REQUIRE(c.prices.contains(item));
    CHECK(c.names.size() == c.prices.size());
    return 0;
  });
}

TEST_CASE("cow_map: erase_if checks entries a small leaf has just taken in from its neighbour") {
  // Leaves of at most 8: [0..6] [7..13]; the second shrunk to {7, 12, 13}. erase_if then empties
  // the first but for 0, which merges with the second; 12 must still be checked.
  using small = cow_map<int, int, std::less<int>, 8>;
  std::vector<std::pair<int, int>> items;
  for (int i = 0; i < 14; ++i) items.emplace_back(i, i);
  small m = small::from_sorted(items);
  REQUIRE(m.leaf_count() == 2);
  for (int k = 8; k <= 11; ++k) REQUIRE(m.erase(k) == 1);
  REQUIRE(m.leaf_count() == 2);
  CHECK(erase_if(
            m, [](const auto& e) { return (e.first >= 1 && e.first <= 6) || e.first == 12; }) == 7);
  std::vector<int> left;
  for (const auto& [k, v] : m) left.push_back(k);
  CHECK(left == std::vector<int>{0, 7, 13});
  CHECK(m.size() == 3);
}

namespace {

struct Counters {
  cow_map<int, long> by_key;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Counters, by_key)
};
constexpr int counter_keys = 20000;

struct Fill {
  static constexpr std::string_view name = "fill";
  void apply(Counters& c, const prevalent::Context&) const {
    for (int k = 0; k < counter_keys; ++k) c.by_key[k] = -k;
  }
};
// The command with sequence number i (the writer executes them in order after Fill).
struct Bump {
  static constexpr std::string_view name = "bump";
  long i = 0;
  void apply(Counters& c, const prevalent::Context&) const {
    if (i % 10 == 0)
      c.by_key.erase(static_cast<int>(i * 31 % counter_keys));
    else
      c.by_key[static_cast<int>(i * 7919 % counter_keys)] = i;
  }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Bump, i)
};
using CounterStore = prevalent::Store<Counters, Fill, Bump>;

}  // namespace

TEST_CASE("cow_map in a Store: a snapshot holds the state at its capture while a writer goes on") {
  // A writer thread executes commands while the main thread writes snapshots. The newest
  // snapshot, opened alone (journal removed), must be exactly the state after the sequence it
  // covers, computed here by applying the same commands to a std::map. With copy on write
  // disabled (writable() never cloning), this fails: the snapshot has later writes in it.
  test::temp_dir tmp;
  prevalent::store_options o;
  o.sync = prevalent::sync_policy::none();
  std::atomic<long> done{0};
  std::atomic<bool> stop{false};
  {
    CounterStore store(tmp.path(), o);
    store.execute(Fill{});  // sequence 1
    std::thread writer([&] {
      for (long i = 2; !stop; ++i) {
        store.execute(Bump{i});  // sequence i
        done = i;
      }
    });
    while (done < 200) std::this_thread::yield();
    long during = 0;
    for (int s = 0; s < 3; ++s) {
      const long before = done;
      store.snapshot();
      during += done - before;
    }
    const long after_snapshots = done;
    while (done < after_snapshots + 100) std::this_thread::yield();
    stop = true;
    writer.join();
    MESSAGE("commands executed while the 3 snapshots were written: " << during);
  }
  test::temp_dir alone;
  for (const auto& entry : std::filesystem::directory_iterator(tmp.path())) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("snapshot-", 0) == 0)
      std::filesystem::copy_file(entry.path(), alone.path() / name);
  }
  CounterStore reopened(alone.path(), o);
  CHECK(reopened.recovery().segments_missing);
  const auto covered = static_cast<long>(reopened.last_sequence());
  REQUIRE(covered > 200);
  REQUIRE(covered < done);  // the writer went on after the last snapshot
  std::map<int, long> expected;
  for (int k = 0; k < counter_keys; ++k) expected[k] = -k;
  for (long i = 2; i <= covered; ++i) {
    if (i % 10 == 0)
      expected.erase(static_cast<int>(i * 31 % counter_keys));
    else
      expected[static_cast<int>(i * 7919 % counter_keys)] = i;
  }
  reopened.query([&](const Counters& c) {
    REQUIRE(c.by_key.size() == expected.size());
    CHECK(std::equal(
        c.by_key.begin(), c.by_key.end(), expected.begin(), expected.end(),
        [](const auto& a, const auto& b) { return a.first == b.first && a.second == b.second; }));
    return 0;
  });
}

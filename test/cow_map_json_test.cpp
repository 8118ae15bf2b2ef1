// cow_map's serialization: byte for byte what nlohmann writes for the same std::map in JSON,
// CBOR and MessagePack, round trips, the same errors for bad input; and the snapshot-part
// hooks (detail/snapshot_parts.hpp) driven by a fake writer and a fake loader, as the store's
// snapshot code drives them.
#include <doctest/doctest.h>

#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <prevalent/codec.hpp>
#include <prevalent/cow_map.hpp>
#include <prevalent/snapshot_parts_scope.hpp>

using nlohmann::json;
using prevalent::cow_map;
using prevalent::detail::entry_visitor;
using prevalent::detail::part_reader;
using prevalent::detail::part_writer;

namespace {

constexpr prevalent::codec all_codecs[] = {prevalent::codec::json, prevalent::codec::cbor,
                                           prevalent::codec::msgpack};

template <class Cow, class Std>
void check_same_bytes(const Cow& c, const Std& s) {
  for (auto codec : all_codecs) {
    INFO("codec " << prevalent::codec_name(codec));
    const std::string expected = prevalent::encode(json(s), codec);
    REQUIRE(prevalent::encode(json(c), codec) == expected);
    // And back: std::map's bytes decode into the same cow_map.
    auto decoded = prevalent::decode(prevalent::as_bytes(expected), codec);
    REQUIRE(decoded);
    REQUIRE(decoded->template get<Cow>() == c);
  }
}

struct Point {
  int x = 0, y = 0;
  bool operator==(const Point&) const = default;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Point, x, y)
};

}  // namespace

TEST_CASE("cow_map serializes byte for byte as std::map in JSON, CBOR and MessagePack") {
  std::mt19937 rng(3);
  SUBCASE("string keys: an object") {
    std::map<std::string, Point> s;
    cow_map<std::string, Point> c;
    check_same_bytes(c, s);
    for (int i = 0; i < 5000; ++i) {
      const std::string k = "k" + std::to_string(rng() % 100000) + "\xc3\xa9";
      s[k] = Point{i, -i};
      c[k] = Point{i, -i};
    }
    check_same_bytes(c, s);
  }
  SUBCASE("integer keys: an array of [key, value] pairs") {
    std::map<long, std::string> s;
    cow_map<long, std::string> c;
    check_same_bytes(c, s);
    for (int i = 0; i < 5000; ++i) {
      const long k = static_cast<long>(rng()) - (1L << 31);
      s[k] = std::to_string(i);
      c[k] = std::to_string(i);
    }
    check_same_bytes(c, s);
  }
  SUBCASE("string keys under another order: nlohmann's object order, not the map's") {
    std::map<std::string, int, std::greater<>> s;
    cow_map<std::string, int, std::greater<>> c;
    for (int i = 0; i < 3000; ++i) {
      const std::string k = std::to_string(rng() % 10000);
      s[k] = i;
      c[k] = i;
    }
    check_same_bytes(c, s);
  }
  SUBCASE("pair keys and nested maps") {
    std::map<std::pair<int, int>, std::map<std::string, int>> s;
    cow_map<std::pair<int, int>, cow_map<std::string, int>> c;
    for (int i = 0; i < 500; ++i) {
      const std::pair<int, int> k{static_cast<int>(rng() % 50), static_cast<int>(rng() % 50)};
      const std::string inner = "f" + std::to_string(i % 7);
      s[k][inner] = i;
      c[k][inner] = i;
    }
    check_same_bytes(c, s);
  }
}

TEST_CASE("cow_map from_json: std::map's errors for bad input; duplicates keep the first") {
  cow_map<std::string, int> by_name;
  CHECK_THROWS_WITH_AS(json::array().get_to(by_name),
                       "[json.exception.type_error.302] type must be object, but is array",
                       json::type_error);
  CHECK_THROWS_AS(json::parse(R"({"a": "x"})").get_to(by_name), json::type_error);
  cow_map<int, int> by_id;
  CHECK_THROWS_WITH_AS(json::object().get_to(by_id),
                       "[json.exception.type_error.302] type must be array, but is object",
                       json::type_error);
  CHECK_THROWS_WITH_AS(json::parse("[[1, 2], 3]").get_to(by_id),
                       "[json.exception.type_error.302] type must be array, but is number",
                       json::type_error);
  CHECK_THROWS_AS(json::parse("[[1]]").get_to(by_id), json::out_of_range);
  // Out of order and repeated keys (another writer's order): inserted one by one, first wins,
  // as std::map's from_json does.
  json::parse("[[3, 30], [1, 10], [3, 31], [2, 20]]").get_to(by_id);
  std::map<int, int> expected;
  json::parse("[[3, 30], [1, 10], [3, 31], [2, 20]]").get_to(expected);
  CHECK(json(by_id) == json(expected));
  CHECK(by_id.at(3) == 30);
  // from_json replaces what was there.
  json::parse("[[5, 50]]").get_to(by_id);
  CHECK(by_id.size() == 1);
}

namespace {

// The writer's side of the contract: to_json hands over parts, this keeps them and splices
// their entries into JSON text where each placeholder is, as a streaming writer does.
class FakeWriting final : public prevalent::detail::snapshot_writing {
 public:
  json placeholder(part_writer part) override {
    parts_.push_back(std::move(part));
    return json{{"$fake_part", parts_.size() - 1}};
  }
  // Encodes the chunks on several threads (each chunk once), releasing each, and returns the
  // part's JSON text.
  std::string encode_part(std::size_t index) {
    part_writer& p = parts_.at(index);
    std::vector<std::string> texts(p.chunks);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 3; ++t) {
      threads.emplace_back([&, t] {
        for (std::size_t i = t; i < p.chunks; i += 3) {
          p.visit_chunk(i, [&](const json* key, json& value) {
            if (!texts[i].empty()) texts[i] += ',';
            if (key) texts[i] += key->dump() + ':';
            texts[i] += value.dump();
          });
          if (p.release_chunk) p.release_chunk(i);
        }
      });
    }
    for (auto& t : threads) t.join();
    std::string out(1, p.object ? '{' : '[');
    bool first = true;
    for (const auto& t : texts) {
      if (t.empty()) continue;
      if (!first) out += ',';
      out += t;
      first = false;
    }
    out += p.object ? '}' : ']';
    return out;
  }
  // The whole tree's text with every placeholder replaced by its part's text.
  std::string splice(const json& tree) {
    std::string text = tree.dump();
    for (std::size_t i = 0; i < parts_.size(); ++i) {
      const std::string mark = json{{"$fake_part", i}}.dump();
      const auto at = text.find(mark);
      REQUIRE(at != std::string::npos);
      text.replace(at, mark.size(), encode_part(i));
    }
    return text;
  }
  std::vector<part_writer>& parts() { return parts_; }

 private:
  std::vector<part_writer> parts_;
};

// The loader's side: the snapshot's large containers arrive as placeholders; a claim hands
// over the container's entries in chunks of the sizes given, decoded on several threads.
class FakeReading final : public prevalent::detail::snapshot_reading {
 public:
  // `parts` are the containers' whole-tree encodings, in the order of the placeholders.
  FakeReading(std::vector<json> parts, std::vector<std::size_t> chunk_sizes)
      : parts_(std::move(parts)), chunk_sizes_(std::move(chunk_sizes)) {}
  static json placeholder(std::size_t i) { return json{{"$fake_load", i}}; }

  std::optional<part_reader> claim(const json& j) override {
    if (!j.is_object() || !j.contains("$fake_load")) return std::nullopt;
    const auto index = j.at("$fake_load").get<std::size_t>();
    if (claimed_.count(index)) return std::nullopt;
    claimed_.insert(index);
    const json& whole = parts_.at(index);
    auto entries = std::make_shared<std::vector<std::pair<json, json>>>();
    if (whole.is_object()) {
      for (const auto& [k, v] : whole.items()) entries->emplace_back(json(k), v);
    } else {
      for (const auto& v : whole) entries->emplace_back(json(), v);
    }
    auto bounds = std::make_shared<std::vector<std::size_t>>(1, 0);
    std::size_t at = 0;
    for (std::size_t n : chunk_sizes_) {
      at = std::min(at + n, entries->size());
      bounds->push_back(at);
    }
    if (bounds->back() != entries->size()) bounds->push_back(entries->size());
    part_reader r;
    r.object = whole.is_object();
    r.size = entries->size();
    r.chunks = bounds->size() - 1;
    const bool object = r.object;
    r.visit_chunk = [entries, bounds, object](std::size_t i, const entry_visitor& visit) {
      for (std::size_t e = bounds->at(i); e < bounds->at(i + 1); ++e) {
        json value = (*entries)[e].second;
        visit(object ? &(*entries)[e].first : nullptr, value);
      }
    };
    r.parallel_for = [this](std::size_t n, const std::function<void(std::size_t)>& f) {
      std::vector<std::thread> threads;
      std::vector<std::exception_ptr> errors(n);
      for (std::size_t i = 0; i < n; ++i) {
        threads.emplace_back([&, i] {
          CHECK(prevalent::detail::snapshot_reading::current() == nullptr);
          try {
            f(i);
          } catch (...) {
            errors[i] = std::current_exception();
          }
        });
      }
      for (auto& t : threads) t.join();
      ++parallel_runs_;
      for (auto& e : errors)
        if (e) std::rethrow_exception(e);
    };
    return r;
  }
  std::size_t claimed() const { return claimed_.size(); }
  int parallel_runs() const { return parallel_runs_; }

 private:
  std::vector<json> parts_;
  std::vector<std::size_t> chunk_sizes_;
  std::set<std::size_t> claimed_;
  int parallel_runs_ = 0;
};

struct Big {
  cow_map<std::string, int> by_name;
  cow_map<int, std::string> by_id;
  cow_map<std::string, int> small;  // under the part threshold: written inline
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Big, by_name, by_id, small)
};
struct BigStd {
  std::map<std::string, int> by_name;
  std::map<int, std::string> by_id;
  std::map<std::string, int> small;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(BigStd, by_name, by_id, small)
};

void fill(Big& b, BigStd& s, int n) {
  for (int i = 0; i < n; ++i) {
    const std::string name = "name-" + std::to_string(i * 7919 % 100003);
    b.by_name[name] = i;
    s.by_name[name] = i;
    b.by_id[i * 31 % 50021] = name;
    s.by_id[i * 31 % 50021] = name;
  }
  for (int i = 0; i < 10; ++i) {
    b.small["s" + std::to_string(i)] = i;
    s.small["s" + std::to_string(i)] = i;
  }
}

}  // namespace

TEST_CASE("cow_map's snapshot parts: the chunks spliced in give exactly the whole-tree bytes") {
  Big big;
  BigStd model;
  fill(big, model, 20000);
  FakeWriting writing;
  json tree;
  {
    prevalent::detail::writing_scope scope(&writing);
    tree = json(big);
  }
  // Two large maps became parts; the small one is inline.
  REQUIRE(writing.parts().size() == 2);
  CHECK(writing.parts()[0].object);
  CHECK(writing.parts()[0].size == 20000);
  CHECK_FALSE(writing.parts()[1].object);
  CHECK(writing.parts()[0].chunks >= 20000 / 4096);
  CHECK(tree.at("small").size() == 10);
  // The parts hold their own references: the live maps' leaves are shared until released.
  CHECK(big.by_name.shared_leaf_count() == big.by_name.leaf_count());
  const std::string spliced = writing.splice(tree);
  CHECK(spliced == json(model).dump());
  // Every chunk released: the live map no longer shares any leaf with the snapshot.
  CHECK(big.by_name.shared_leaf_count() == 0);
  CHECK(big.by_id.shared_leaf_count() == 0);
  // Writes to the live map after the capture do not reach the part.
  FakeWriting again;
  json tree2;
  {
    prevalent::detail::writing_scope scope(&again);
    tree2 = json(big);
  }
  big.by_name.clear();
  big.by_id[-1] = "late";
  CHECK(again.splice(tree2) == json(model).dump());
  // A chunk visited after its release is refused rather than read.
  CHECK_THROWS_AS(again.parts()[0].visit_chunk(0, [](const json*, json&) {}), std::logic_error);
  // Without a writing current, to_json writes the whole tree.
  CHECK(json(big).at("by_id").size() == 20001);
}

TEST_CASE("cow_map's snapshot parts: a claimed part is decoded in parallel chunks into the map") {
  Big original;
  BigStd model;
  fill(original, model, 20000);
  const json whole = json(model);
  json tree = whole;
  tree["by_name"] = FakeReading::placeholder(0);
  tree["by_id"] = FakeReading::placeholder(1);
  REQUIRE(json(whole.get<BigStd>()) == whole);

  SUBCASE("chunks of uneven sizes, empty ones included") {
    FakeReading reading({whole.at("by_name"), whole.at("by_id")}, {1, 0, 4096, 3, 9000, 0, 77});
    Big loaded;
    {
      prevalent::detail::reading_scope scope(&reading);
      tree.get_to(loaded);
    }
    CHECK(reading.claimed() == 2);
    CHECK(reading.parallel_runs() == 2);
    CHECK(loaded.by_name == original.by_name);
    CHECK(loaded.by_id == original.by_id);
    CHECK(loaded.small == original.small);
    CHECK(json(loaded).dump() == whole.dump());
    // Built in bulk: leaves are full, not split halves.
    CHECK(loaded.by_name.leaf_count() <= original.by_name.leaf_count());
    // And writable as any map.
    loaded.by_name["name-new"] = -1;
    CHECK(loaded.by_name.size() == 20001);
  }
  SUBCASE("keys out of order across chunks (another writer's order) fall back to inserting") {
    // by_name as written by a map ordered by std::greater: the same entries, reversed.
    json reversed = json::array();
    for (auto it = whole.at("by_id").rbegin(); it != whole.at("by_id").rend(); ++it)
      reversed.push_back(*it);
    FakeReading reading({whole.at("by_name"), reversed}, {5000, 5000, 5000});
    Big loaded;
    {
      prevalent::detail::reading_scope scope(&reading);
      tree.get_to(loaded);
    }
    CHECK(loaded.by_id == original.by_id);
    CHECK(loaded.by_name == original.by_name);
  }
  SUBCASE("a map ordered otherwise than the part is rebuilt in its own order") {
    FakeReading reading({whole.at("by_name")}, {3000});
    cow_map<std::string, int, std::greater<>> desc;
    {
      prevalent::detail::reading_scope scope(&reading);
      FakeReading::placeholder(0).get_to(desc);
    }
    REQUIRE(desc.size() == 20000);
    CHECK(desc.begin()->first == model.by_name.rbegin()->first);
    CHECK(std::is_sorted(desc.begin(), desc.end(),
                         [](const auto& a, const auto& b) { return a.first > b.first; }));
  }
  SUBCASE("a part of the wrong kind or a bad entry fails as std::map's from_json would") {
    FakeReading reading({whole.at("by_id"), json::array({json::array({1, "x"}), 7})}, {100});
    Big loaded;
    prevalent::detail::reading_scope scope(&reading);
    CHECK_THROWS_WITH_AS(FakeReading::placeholder(0).get_to(loaded.by_name),
                         "[json.exception.type_error.302] type must be object, but is array",
                         json::type_error);
    CHECK_THROWS_AS(FakeReading::placeholder(1).get_to(loaded.by_id), json::type_error);
  }
}

TEST_CASE("cow_map::to_json_array / from_json_array: a caller's element encoding, parts too") {
  cow_map<int, std::string> m;
  for (int i = 0; i < 5000; ++i) m[i * 3] = std::to_string(i);
  auto encode = [](const std::pair<int, std::string>& e) { return json{e.second, e.first}; };
  auto decode = [](const json& j) {
    return std::pair<int, std::string>(j.at(1).get<int>(), j.at(0).get<std::string>());
  };
  json plain;
  m.to_json_array(plain, encode);
  REQUIRE(plain.size() == 5000);
  CHECK(plain[1] == json{"1", 3});
  FakeWriting writing;
  json tree;
  {
    prevalent::detail::writing_scope scope(&writing);
    m.to_json_array(tree, encode);
  }
  REQUIRE(writing.parts().size() == 1);
  CHECK(writing.splice(tree) == plain.dump());

  cow_map<int, std::string> back;
  back.from_json_array(plain, decode);
  CHECK(back == m);
  FakeReading reading({plain}, {1000, 1000});
  cow_map<int, std::string> streamed;
  {
    prevalent::detail::reading_scope scope(&reading);
    streamed.from_json_array(FakeReading::placeholder(0), decode);
  }
  CHECK(reading.claimed() == 1);
  CHECK(streamed == m);
}

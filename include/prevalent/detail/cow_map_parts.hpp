// How prevalent::cow_map (cow_map.hpp) is serialized: the bytes of std::map<Key, T, Compare>
// under nlohmann, whole or, while the store writes or loads a snapshot, through the snapshot's
// parts (snapshot_parts.hpp) in chunks of whole leaves on the snapshot's threads. Not an API of
// its own.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "prevalent/detail/snapshot_parts.hpp"

namespace prevalent::detail {

template <class C>
concept transparent = requires {
  typename C::is_transparent;
};

template <class Map>
struct cow_map_json {
  using key_type = typename Map::key_type;
  using mapped_type = typename Map::mapped_type;
  using value_type = typename Map::value_type;
  using compare = typename Map::key_compare;
  using leaf_ref = typename Map::leaf_ref;
  using leaf = typename Map::leaf;

  // nlohmann's rule for std::map: an object when a std::string can be made from the key.
  static constexpr bool as_object = std::is_constructible_v<std::string, key_type>;
  // Whether the map's order is the order of nlohmann's objects (std::string's), so that its
  // entries may be written in its own order.
  static constexpr bool object_order =
      as_object &&
      (std::is_same_v<key_type, std::string> || std::is_same_v<key_type, std::string_view>)&&(
          std::is_same_v<compare, std::less<key_type>> || std::is_same_v<compare, std::less<>>);
  // Smaller maps are written inline, not as a part of their own.
  static constexpr std::size_t part_min_entries = 1024;
  // About this many entries (whole leaves) per chunk.
  static constexpr std::size_t chunk_entries = 4096;

  static void to_json(nlohmann::json& j, const Map& m) {
    if constexpr (as_object) {
      if constexpr (object_order) {
        if (try_part(j, m, true, [](const value_type& v, const entry_visitor& visit) {
              nlohmann::json key(std::string(v.first));
              nlohmann::json value(v.second);
              visit(&key, value);
            }))
          return;
      }
      nlohmann::json::object_t obj;
      for (const auto& v : m) obj.emplace_hint(obj.end(), std::string(v.first), v.second);
      j = std::move(obj);
    } else {
      to_array(j, m, [](const value_type& v) { return nlohmann::json(v); });
    }
  }

  template <class Encode>
  static void to_array(nlohmann::json& j, const Map& m, const Encode& encode) {
    if (try_part(j, m, false, [encode](const value_type& v, const entry_visitor& visit) {
          nlohmann::json element = encode(v);
          visit(nullptr, element);
        }))
      return;
    nlohmann::json::array_t arr;
    arr.reserve(m.size());
    for (const auto& v : m) arr.push_back(encode(v));
    j = std::move(arr);
  }

  static void from_json(const nlohmann::json& j, Map& m) {
    if constexpr (as_object) {
      auto decode = [](const nlohmann::json* key, nlohmann::json& value) {
        return value_type(key_type(key->template get_ref<const std::string&>()),
                          value.template get<mapped_type>());
      };
      if (load_claimed(j, m, true, decode)) return;
      if (!j.is_object()) throw type_error("object", j);
      std::vector<value_type> items;
      items.reserve(j.size());
      for (const auto& [k, v] : j.template get_ref<const nlohmann::json::object_t&>())
        items.emplace_back(key_type(k), v.template get<mapped_type>());
      assemble(m, std::move(items));
    } else {
      from_array(j, m, [&j](const nlohmann::json& p) {
        if (!p.is_array()) throw type_error("array", p, j);
        return value_type(p.at(0).template get<key_type>(), p.at(1).template get<mapped_type>());
      });
    }
  }

  template <class Decode>
  static void from_array(const nlohmann::json& j, Map& m, const Decode& decode) {
    if (load_claimed(j, m, false,
                     [&decode](const nlohmann::json*, nlohmann::json& v) { return decode(v); }))
      return;
    if (!j.is_array()) throw type_error("array", j);
    std::vector<value_type> items;
    items.reserve(j.size());
    for (const auto& p : j) items.push_back(decode(p));
    assemble(m, std::move(items));
  }

 private:
  static nlohmann::json::type_error type_error(const char* want, const nlohmann::json& got,
                                               const nlohmann::json& where) {
    return nlohmann::json::type_error::create(
        302, std::string("type must be ") + want + ", but is " + got.type_name(), &where);
  }
  static nlohmann::json::type_error type_error(const char* want, const nlohmann::json& got) {
    return type_error(want, got, got);
  }

  // While a snapshot is written on this thread: j becomes a placeholder for a part holding its
  // own references to m's leaves, in chunks of whole leaves.
  template <class VisitOne>
  static bool try_part(nlohmann::json& j, const Map& m, bool object, VisitOne one) {
    if (m.size() < part_min_entries) return false;
    snapshot_writing* w = snapshot_writing::current();
    if (w == nullptr) return false;
    struct held {
      std::vector<leaf_ref> leaves;
      std::vector<std::size_t> bounds;  // chunk i is leaves [bounds[i], bounds[i + 1])
    };
    auto h = std::make_shared<held>();
    h->leaves = m.leaves_;
    h->bounds.push_back(0);
    std::size_t run = 0;
    for (std::size_t li = 0; li < h->leaves.size(); ++li) {
      run += h->leaves[li]->items.size();
      if (run >= chunk_entries || li + 1 == h->leaves.size()) {
        h->bounds.push_back(li + 1);
        run = 0;
      }
    }
    part_writer p;
    p.object = object;
    p.size = m.size();
    p.chunks = h->bounds.size() - 1;
    p.visit_chunk = [h, one](std::size_t i, const entry_visitor& visit) {
      for (std::size_t li = h->bounds.at(i); li < h->bounds.at(i + 1); ++li) {
        const leaf* l = h->leaves[li].get();
        if (l == nullptr) throw std::logic_error("cow_map: a snapshot chunk visited after release");
        for (const auto& v : l->items) one(v, visit);
      }
    };
    p.release_chunk = [h](std::size_t i) {
      for (std::size_t li = h->bounds.at(i); li < h->bounds.at(i + 1); ++li) h->leaves[li].reset();
    };
    j = w->placeholder(std::move(p));
    return true;
  }

  // While a snapshot is loaded on this thread and j is one of its parts: decodes the chunks in
  // parallel straight into leaves, then assembles them (or inserts one by one if the keys are
  // not strictly increasing: a snapshot written under another order).
  template <class Decode>
  static bool load_claimed(const nlohmann::json& j, Map& m, bool object, const Decode& decode) {
    snapshot_reading* r = snapshot_reading::current();
    if (r == nullptr) return false;
    std::optional<part_reader> claimed = r->claim(j);
    if (!claimed) return false;
    const part_reader& p = *claimed;
    if (p.object != object)
      throw nlohmann::json::type_error::create(
          302,
          std::string("type must be ") + (object ? "object, but is array" : "array, but is object"),
          nullptr);
    struct chunk {
      std::vector<leaf_ref> leaves;
      std::size_t entries = 0;
      bool sorted = true;
    };
    std::vector<chunk> chunks(p.chunks);
    const compare comp = m.key_comp();
    p.parallel_for(p.chunks, [&](std::size_t i) {
      chunk& c = chunks[i];
      std::vector<value_type> cur;
      const value_type* prev = nullptr;  // stays valid: cur never reallocates, leaves keep it
      auto flush = [&] {
        if (!cur.empty()) c.leaves.push_back(leaf_ref(new leaf(std::move(cur))));
        cur = {};
        cur.reserve(Map::bulk_capacity);
      };
      cur.reserve(Map::bulk_capacity);
      p.visit_chunk(i, [&](const nlohmann::json* key, nlohmann::json& value) {
        if (cur.size() == Map::bulk_fill) flush();
        cur.push_back(decode(key, value));
        if (prev != nullptr && !comp(prev->first, cur.back().first)) c.sorted = false;
        prev = &cur.back();
        ++c.entries;
      });
      flush();
    });
    bool sorted = true;
    const value_type* last = nullptr;
    for (const chunk& c : chunks) {
      sorted = sorted && c.sorted;
      if (c.leaves.empty()) continue;
      if (last != nullptr && !comp(last->first, c.leaves.front()->items.front().first))
        sorted = false;
      last = &c.leaves.back()->items.back();
    }
    m.clear();
    if (sorted) {
      for (chunk& c : chunks) {
        for (auto& l : c.leaves) m.leaves_.push_back(std::move(l));
        m.size_ += c.entries;
      }
      return true;
    }
    for (chunk& c : chunks) {
      for (auto& l : c.leaves) {
        for (auto& v : l->items) m.try_emplace(std::move(v.first), std::move(v.second));
        l.reset();
      }
    }
    return true;
  }

  // m = items: bulk when the keys strictly increase, else one by one (the first of equal keys
  // wins, as with std::map's emplace).
  static void assemble(Map& m, std::vector<value_type>&& items) {
    const compare comp = m.key_comp();
    bool sorted = true;
    for (std::size_t i = 1; i < items.size() && sorted; ++i)
      sorted = comp(items[i - 1].first, items[i].first);
    if (sorted) {
      m.adopt_sorted(std::move(items));
      return;
    }
    m.clear();
    for (auto& v : items) m.try_emplace(std::move(v.first), std::move(v.second));
  }
};

}  // namespace prevalent::detail

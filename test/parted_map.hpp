// A test container that opts in to streamed snapshots (detail/snapshot_parts.hpp) the way
// cow_map does: a std::map whose to_json returns a placeholder while a snapshot is written,
// with its own copy of the entries cut into chunks, and whose from_json claims a placeholder
// and decodes the chunks in parallel. It serializes exactly as the std::map it wraps. Counters
// let tests see which path was taken.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include <prevalent/detail/snapshot_parts.hpp>

namespace test {

struct parted_counters {
  std::atomic<int> placeholders{0}, claims{0}, released{0};
};
inline parted_counters& parted_stats() {
  static parted_counters c;
  return c;
}

template <class K, class V>
struct parted_map {
  std::map<K, V> items;
  static constexpr std::size_t chunk = 1000;
  static constexpr bool object = std::is_convertible_v<K, std::string>;

  bool operator==(const parted_map&) const = default;

  friend void to_json(nlohmann::json& j, const parted_map& m) {
    auto* w = prevalent::detail::snapshot_writing::current();
    if (!w) {
      j = m.items;
      return;
    }
    auto held = std::make_shared<const std::map<K, V>>(m.items);
    auto starts = std::make_shared<std::vector<typename std::map<K, V>::const_iterator>>();
    std::size_t n = 0;
    for (auto it = held->begin(); it != held->end(); ++it, ++n)
      if (n % chunk == 0) starts->push_back(it);
    prevalent::detail::part_writer p;
    p.object = object;
    p.size = held->size();
    p.chunks = starts->size();
    p.visit_chunk = [held, starts](std::size_t i, const prevalent::detail::entry_visitor& visit) {
      auto it = (*starts)[i];
      for (std::size_t k = 0; k < chunk && it != held->end(); ++k, ++it) {
        if constexpr (object) {
          const nlohmann::json key = it->first;
          nlohmann::json value = it->second;
          visit(&key, value);
        } else {
          nlohmann::json element = *it;
          visit(nullptr, element);
        }
      }
    };
    p.release_chunk = [](std::size_t) { ++parted_stats().released; };
    ++parted_stats().placeholders;
    j = w->placeholder(std::move(p));
  }

  friend void from_json(const nlohmann::json& j, parted_map& m) {
    if (auto* r = prevalent::detail::snapshot_reading::current()) {
      if (auto part = r->claim(j)) {
        ++parted_stats().claims;
        std::vector<std::vector<std::pair<K, V>>> chunks(part->chunks);
        part->parallel_for(part->chunks, [&](std::size_t i) {
          part->visit_chunk(i, [&](const nlohmann::json* key, nlohmann::json& value) {
            if (key)
              chunks[i].emplace_back(key->get<K>(), value.get<V>());
            else
              chunks[i].push_back(value.get<std::pair<K, V>>());
          });
        });
        m.items.clear();
        for (auto& c : chunks)
          for (auto& e : c) m.items.insert(m.items.end(), std::move(e));
        return;
      }
    }
    m.items = j.get<std::map<K, V>>();
  }
};

}  // namespace test

// KvState: prevalent-kv's whole keyspace, the State of its prevalent store. Keys map to a
// string or a hash, each with an optional absolute deadline in milliseconds since the epoch.
// A key whose deadline has passed is absent to every command (the time comes from the
// command's Context, or the query's clock, never read here); commands that write drop such
// keys when they meet them, and the journaled expire_due command drops them all, so replay
// rebuilds exactly the same keys.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>
#include <prevalent/cow_map.hpp>

namespace kv {

inline constexpr long long no_expiry = -1;

// A hash's fields in insertion order (the order small hashes have in Redis); an index is
// added once it grows past a few dozen fields (then deletion no longer keeps the order, like a
// large Redis hash, whose order is unspecified).
class Hash {
 public:
  using item = std::pair<std::string, std::string>;
  const std::string* find(std::string_view field) const;
  std::string* find(std::string_view field) {
    return const_cast<std::string*>(std::as_const(*this).find(field));
  }
  bool set(std::string_view field, std::string value);  // true if the field is new
  bool erase(std::string_view field);
  std::size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  const std::vector<item>& items() const { return items_; }

 private:
  static constexpr std::size_t index_from = 48;
  std::vector<item> items_;
  std::unordered_map<std::string, std::size_t> index_;  // empty while small
};

struct Entry {
  std::variant<std::string, Hash> value;
  long long expire_at = no_expiry;  // ms since the epoch
  std::uint64_t version = 0;        // sequence of the last command that changed it (WATCH)

  bool is_string() const { return value.index() == 0; }
  bool is_hash() const { return value.index() == 1; }
  std::string& str() { return std::get<0>(value); }
  const std::string& str() const { return std::get<0>(value); }
  Hash& hash() { return std::get<1>(value); }
  const Hash& hash() const { return std::get<1>(value); }
};

// What a command that writes knows: the time and sequence from its Context.
struct write_context {
  long long now_ms = 0;
  std::uint64_t sequence = 0;
};

// Keys are ordered by (hash, bytes): a lookup compares 64-bit hashes, not long common key
// prefixes, and SCAN resumes from a hash (its cursor), as Redis's cursor is a position too.
inline std::uint64_t key_hash(std::string_view key) {
  const std::uint64_t h = std::hash<std::string_view>{}(key);
  return h == 0 ? 1 : h;  // 0 is the cursor of a whole iteration
}
struct key_slot {
  std::uint64_t hash = 0;
  std::string name;
};
struct key_probe {
  std::uint64_t hash;
  std::string_view name;
};
struct key_order {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    if (a.hash != b.hash) return a.hash < b.hash;
    return std::string_view(a.name) < std::string_view(b.name);
  }
};

class KvState {
 public:
  // A cow_map: a snapshot's capture shares the keyspace instead of copying it, and writers
  // copy only the leaves they touch while the snapshot is written.
  using map_type = prevalent::cow_map<key_slot, Entry, key_order>;

  // The live entry for `key` at time `now_ms`, or nullptr (absent or expired).
  const Entry* find(std::string_view key, long long now_ms) const;
  // For a command that writes: drops the key first if it has expired.
  Entry* find(std::string_view key, const write_context& ctx);
  // The entry for `key`, created empty (a string) if absent; `created` tells which.
  Entry& upsert(std::string_view key, const write_context& ctx, bool& created);
  // Marks `e` changed by the command in `ctx` (WATCH sees it).
  static void touch(Entry& e, const write_context& ctx) { e.version = ctx.sequence; }
  void set_expiry(std::string_view key, Entry& e, long long at);  // no_expiry: persist
  // Removes `key` (if present) for the command with sequence `seq` (WATCH sees it).
  bool erase(std::string_view key, std::uint64_t seq);
  void clear();

  // Removes up to `limit` keys whose deadline is at or before `now_ms`; returns how many.
  std::size_t expire_due(long long now_ms, std::size_t limit, std::uint64_t seq);
  // The sequence of the command that last removed the absent `key`, if remembered, else 0.
  std::uint64_t tombstone(std::string_view key) const;
  // The earliest deadline, or no_expiry.
  long long next_deadline() const;

  const map_type& keys() const { return keys_; }
  std::size_t size() const { return keys_.size(); }
  std::size_t expiring() const { return deadlines_.size(); }
  // Live keys at `now_ms` (size() still counts expired keys not yet dropped).
  std::size_t live_size(long long now_ms) const;

  // What a snapshot is made of: the keys, shared with the live state (the deadlines and
  // tombstones are not in snapshots, so capture() does not copy them). Serializes as KvState.
  struct captured_keys {
    map_type keys;
    friend void to_json(nlohmann::json& j, const captured_keys& c);
  };
  captured_keys capture() const { return {keys_}; }

  friend void to_json(nlohmann::json& j, const KvState& s);
  friend void from_json(const nlohmann::json& j, KvState& s);

 private:
  map_type keys_;
  void bury(std::string key, std::uint64_t seq);

  std::set<std::pair<long long, std::string>, std::less<>> deadlines_;  // (deadline, key)
  // The last removals (key -> sequence), so that WATCH of an absent key notices a key created
  // and removed again before EXEC. Bounded; not part of snapshots (WATCH ends with the process).
  static constexpr std::size_t max_tombstones = 65536;
  std::unordered_map<std::string, std::uint64_t> tombstones_;
  std::deque<std::string> tombstone_order_;
};

// Binary-safe strings in the journal and snapshots: a valid UTF-8 string as a JSON string,
// anything else as a binary value (native in CBOR and MessagePack; an object of bytes in JSON).
nlohmann::json bytes_to_json(const std::string& s);
std::string bytes_from_json(const nlohmann::json& j);

}  // namespace kv

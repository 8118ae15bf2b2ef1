#include "kv_state.hpp"

#include <cstdint>

namespace kv {
namespace {

bool valid_utf8(const std::string& s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* end = p + s.size();
  while (p < end) {
    const unsigned c = *p;
    std::size_t n;
    std::uint32_t cp;
    if (c < 0x80) {
      ++p;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (static_cast<std::size_t>(end - p) <= n) return false;
    for (std::size_t i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

}  // namespace

nlohmann::json bytes_to_json(const std::string& s) {
  if (valid_utf8(s)) return s;
  return nlohmann::json::binary(std::vector<std::uint8_t>(s.begin(), s.end()));
}

std::string bytes_from_json(const nlohmann::json& j) {
  if (j.is_string()) return j.get_ref<const std::string&>();
  if (j.is_binary()) {
    const auto& b = j.get_binary();
    return std::string(b.begin(), b.end());
  }
  if (j.is_object() && j.contains("bytes")) {  // a binary value that went through JSON text
    std::string out;
    for (const auto& byte : j.at("bytes")) out.push_back(static_cast<char>(byte.get<int>()));
    return out;
  }
  throw std::invalid_argument("kv: expected a byte string, got " + std::string(j.type_name()));
}

const std::string* Hash::find(std::string_view field) const {
  if (!index_.empty()) {
    const auto it = index_.find(std::string(field));
    return it == index_.end() ? nullptr : &items_[it->second].second;
  }
  for (const auto& [f, v] : items_)
    if (f == field) return &v;
  return nullptr;
}

bool Hash::set(std::string_view field, std::string value) {
  if (std::string* v = find(field)) {
    *v = std::move(value);
    return false;
  }
  items_.emplace_back(std::string(field), std::move(value));
  if (!index_.empty()) {
    index_.emplace(std::string(field), items_.size() - 1);
  } else if (items_.size() > index_from) {
    for (std::size_t i = 0; i < items_.size(); ++i) index_.emplace(items_[i].first, i);
  }
  return true;
}

bool Hash::erase(std::string_view field) {
  if (!index_.empty()) {
    const auto it = index_.find(std::string(field));
    if (it == index_.end()) return false;
    const std::size_t at = it->second;
    index_.erase(it);
    if (at + 1 != items_.size()) {
      items_[at] = std::move(items_.back());
      index_[items_[at].first] = at;
    }
    items_.pop_back();
    return true;
  }
  for (auto it = items_.begin(); it != items_.end(); ++it) {
    if (it->first == field) {
      items_.erase(it);
      return true;
    }
  }
  return false;
}

const Entry* KvState::find(std::string_view key, long long now_ms) const {
  const auto it = keys_.find(key_probe{key_hash(key), key});
  if (it == keys_.end()) return nullptr;
  if (it->second.expire_at != no_expiry && it->second.expire_at <= now_ms) return nullptr;
  return &it->second;
}

Entry* KvState::find(std::string_view key, const write_context& ctx) {
  const auto it = keys_.find(key_probe{key_hash(key), key});
  if (it == keys_.end()) return nullptr;
  if (it->second.expire_at != no_expiry && it->second.expire_at <= ctx.now_ms) {
    erase(key, ctx.sequence);
    return nullptr;
  }
  return &keys_.mutate(it);
}

Entry& KvState::upsert(std::string_view key, const write_context& ctx, bool& created) {
  if (Entry* e = find(key, ctx)) {
    created = false;
    return *e;
  }
  created = true;
  return keys_[key_slot{key_hash(key), std::string(key)}];
}

void KvState::set_expiry(std::string_view key, Entry& e, long long at) {
  if (e.expire_at == at) return;
  if (e.expire_at != no_expiry) deadlines_.erase({e.expire_at, std::string(key)});
  e.expire_at = at;
  if (at != no_expiry) deadlines_.emplace(at, std::string(key));
}

bool KvState::erase(std::string_view key, std::uint64_t seq) {
  const auto it = keys_.find(key_probe{key_hash(key), key});
  if (it == keys_.end()) return false;
  if (it->second.expire_at != no_expiry) deadlines_.erase({it->second.expire_at, it->first.name});
  std::string name = it->first.name;
  keys_.erase(it);
  bury(std::move(name), seq);
  return true;
}

void KvState::bury(std::string key, std::uint64_t seq) {
  auto [it, added] = tombstones_.insert_or_assign(key, seq);
  if (added) tombstone_order_.push_back(std::move(key));
  while (tombstone_order_.size() > max_tombstones) {
    tombstones_.erase(tombstone_order_.front());
    tombstone_order_.pop_front();
  }
}

std::uint64_t KvState::tombstone(std::string_view key) const {
  const auto it = tombstones_.find(std::string(key));
  return it == tombstones_.end() ? 0 : it->second;
}

void KvState::clear() {
  keys_.clear();
  deadlines_.clear();
}

std::size_t KvState::expire_due(long long now_ms, std::size_t limit, std::uint64_t seq) {
  std::size_t n = 0;
  while (n < limit && !deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
    auto node = deadlines_.extract(deadlines_.begin());
    const std::string& key = node.value().second;
    if (const auto it = keys_.find(key_probe{key_hash(key), key}); it != keys_.end())
      keys_.erase(it);
    bury(std::move(node.value().second), seq);
    ++n;
  }
  return n;
}

long long KvState::next_deadline() const {
  return deadlines_.empty() ? no_expiry : deadlines_.begin()->first;
}

std::size_t KvState::live_size(long long now_ms) const {
  std::size_t expired = 0;
  for (const auto& [at, key] : deadlines_) {
    if (at > now_ms) break;
    ++expired;
  }
  return keys_.size() - expired;
}

// A snapshot: [[key, deadline, value], ...]; a value is a byte string or, for a hash, an
// array [field, value, field, value, ...]. Written and loaded through cow_map's element
// encoding, so that a large keyspace goes through the snapshot's parts, in parallel chunks.
namespace {

nlohmann::json encode_key(const KvState::map_type::value_type& item) {
  const auto& [key, e] = item;
  nlohmann::json value;
  if (e.is_string()) {
    value = bytes_to_json(e.str());
  } else {
    value = nlohmann::json::array();
    for (const auto& [f, v] : e.hash().items()) {
      value.push_back(bytes_to_json(f));
      value.push_back(bytes_to_json(v));
    }
  }
  return nlohmann::json::array({bytes_to_json(key.name), e.expire_at, std::move(value)});
}

KvState::map_type::value_type decode_key(const nlohmann::json& item) {
  Entry e;
  std::string key = bytes_from_json(item.at(0));
  e.expire_at = item.at(1).get<long long>();
  const auto& value = item.at(2);
  if (value.is_array()) {
    Hash h;
    for (std::size_t i = 0; i + 1 < value.size(); i += 2)
      h.set(bytes_from_json(value[i]), bytes_from_json(value[i + 1]));
    e.value = std::move(h);
  } else {
    e.value = bytes_from_json(value);
  }
  const std::uint64_t hash = key_hash(key);
  return {key_slot{hash, std::move(key)}, std::move(e)};
}

}  // namespace

void to_json(nlohmann::json& j, const KvState::captured_keys& c) {
  c.keys.to_json_array(j, encode_key);
}

void to_json(nlohmann::json& j, const KvState& s) { s.keys_.to_json_array(j, encode_key); }

void from_json(const nlohmann::json& j, KvState& s) {
  s.clear();
  s.keys_.from_json_array(j, decode_key);
  for (const auto& [slot, e] : s.keys_)
    if (e.expire_at != no_expiry) s.deadlines_.emplace(e.expire_at, slot.name);
}

}  // namespace kv

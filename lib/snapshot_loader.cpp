// The streaming snapshot loader (detail/snapshot_load.hpp).
#include <algorithm>
#include <atomic>
#include <charconv>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "prevalent/detail/snapshot_load.hpp"
#include "prevalent/detail/snapshot_parts.hpp"
#include "prevalent/error.hpp"
#include "prevalent/parallel.hpp"
#include "prevalent/snapshot_encoding.hpp"
#include "prevalent/snapshot_loader.hpp"
#include "prevalent/snapshot_parts_scope.hpp"
#include "prevalent/snapshot_scan.hpp"

namespace prevalent::detail {

namespace {

std::string random_nonce() {
  std::random_device rd;
  return std::to_string(rd()) + std::to_string(rd()) + std::to_string(rd());
}

class PartsReader final : public snapshot_reading {
 public:
  PartsReader(byte_view payload, codec c, const std::vector<scanned_part>& parts,
              std::size_t chunk_entries)
      : chunk_entries_(chunk_entries),
        payload_(payload),
        codec_(c),
        parts_(parts),
        prefix_("prevalent-snapshot-part:" + random_nonce() + ":"),
        claimed_(parts.size()) {}

  std::string placeholder(std::size_t i) const { return prefix_ + std::to_string(i); }
  const std::string& prefix() const { return prefix_; }

  std::optional<part_reader> claim(const nlohmann::json& j) override {
    const auto* s = j.get_ptr<const std::string*>();
    if (!s || !s->starts_with(prefix_)) return std::nullopt;
    std::size_t i = 0;
    const char* first = s->data() + prefix_.size();
    const char* last = s->data() + s->size();
    auto [end, ec] = std::from_chars(first, last, i);
    if (ec != std::errc() || end != last || i >= parts_.size() || claimed_[i]) return std::nullopt;
    claimed_[i] = true;
    const scanned_part& p = parts_[i];
    part_reader r;
    r.object = p.object;
    r.size = p.entries.size();
    r.chunks = chunks(p);
    r.visit_chunk = [this, &p](std::size_t k, const entry_visitor& visit) {
      visit_chunk(p, k, visit);
    };
    r.parallel_for = [](std::size_t n, const std::function<void(std::size_t)>& f) {
      parallel_for(n, f);
    };
    return r;
  }

  bool all_claimed() const {
    for (bool c : claimed_)
      if (!c) return false;
    return true;
  }

  std::size_t chunks(const scanned_part& p) const {
    return (p.entries.size() + chunk_entries_ - 1) / chunk_entries_;
  }
  std::size_t chunk_entries() const { return chunk_entries_; }

  // Decodes entries [k * chunk_entries, ...) of part p and visits them in order: the chunk's
  // bytes as one container (one parse), or entry by entry to name the one that is damaged.
  void visit_chunk(const scanned_part& p, std::size_t k, const entry_visitor& visit) const {
    const std::size_t first = k * chunk_entries_;
    const std::size_t last = std::min(p.entries.size(), first + chunk_entries_);
    if (first >= last) return;
    if (codec_ == codec::json)
      visit_chunk_at_once(p, first, last, visit);
    else
      visit_entries(p, first, last, visit);
  }

  // The chunk's bytes decoded as one object or array (one parser per chunk instead of one per
  // entry); nullopt if they do not decode.
  std::optional<nlohmann::json> decode_chunk(const scanned_part& p, std::size_t first,
                                             std::size_t last) const {
    std::string chunk;
    append_container_open(chunk, codec_, p.object, last - first);
    chunk.append(as_chars(
        payload_.subspan(p.entries[first].key, p.entries[last - 1].end - p.entries[first].key)));
    append_container_close(chunk, codec_, p.object);
    return decode(as_bytes(chunk), codec_);
  }

  // Chunk k of part p as a tree, for the whole-tree fallback. Throws what visit_entries()
  // throws for the damaged entry.
  nlohmann::json chunk_tree(const scanned_part& p, std::size_t k) const {
    const std::size_t first = k * chunk_entries_;
    const std::size_t last = std::min(p.entries.size(), first + chunk_entries_);
    if (auto decoded = decode_chunk(p, first, last)) return std::move(*decoded);
    visit_entries(p, first, last, [](const nlohmann::json*, nlohmann::json&) {});
    throw error(errc::corrupt_snapshot, "payload offset " + std::to_string(p.entries[first].key) +
                                            ": a chunk of entries does not decode");
  }

  // JSON: the chunk at once; entry by entry if that fails, to name the damaged entry.
  void visit_chunk_at_once(const scanned_part& p, std::size_t first, std::size_t last,
                           const entry_visitor& visit) const {
    auto decoded = decode_chunk(p, first, last);
    if (decoded && decoded->size() == last - first) {
      if (p.object) {
        for (auto& [key, value] : decoded->get_ref<nlohmann::json::object_t&>()) {
          const nlohmann::json k = key;
          visit(&k, value);
        }
      } else {
        for (auto& element : decoded->get_ref<nlohmann::json::array_t&>()) visit(nullptr, element);
      }
      return;
    }
    visit_entries(p, first, last, visit);
  }

  // Entry by entry (CBOR and MessagePack readers cost little to start).
  void visit_entries(const scanned_part& p, std::size_t first, std::size_t last,
                     const entry_visitor& visit) const {
    for (std::size_t e = first; e < last; ++e) {
      const scanned_entry& at = p.entries[e];
      auto bad = [&](std::uint64_t offset, const char* what) {
        return error(errc::corrupt_snapshot,
                     "payload offset " + std::to_string(offset) + ": " + what + " (entry " +
                         std::to_string(e) + " of the " + std::to_string(p.entries.size()) +
                         "-entry " + (p.object ? "object" : "array") + " at payload offset " +
                         std::to_string(p.begin) + ")");
      };
      std::optional<nlohmann::json> key;
      if (p.object) {
        key = decode(payload_.subspan(at.key, at.key_end - at.key), codec_);
        if (!key || !key->is_string()) throw bad(at.key, "the key does not decode to a string");
      }
      auto value = decode(payload_.subspan(at.value, at.end - at.value), codec_);
      if (!value) throw bad(at.value, "the value does not decode");
      visit(key ? &*key : nullptr, *value);
    }
  }

 private:
  std::size_t chunk_entries_;
  byte_view payload_;
  codec codec_;
  const std::vector<scanned_part>& parts_;
  std::string prefix_;
  std::vector<bool> claimed_;  // only the thread that runs from_tree touches it
};

// The container of part p as a tree, its chunks decoded in parallel.
nlohmann::json assemble(const PartsReader& reader, const scanned_part& p) {
  std::vector<nlohmann::json> decoded(reader.chunks(p));
  parallel_for(decoded.size(), [&](std::size_t k) { decoded[k] = reader.chunk_tree(p, k); });
  if (p.object) {
    // The chunks' nodes are spliced in, not copied; a key in two chunks keeps the later value,
    // as decoding the whole payload does.
    nlohmann::json::object_t object;
    for (auto& chunk : decoded) {
      auto& entries = chunk.get_ref<nlohmann::json::object_t&>();
      object.merge(entries);
      for (auto& [key, value] : entries) object[key] = std::move(value);
      chunk = nullptr;
    }
    return nlohmann::json(std::move(object));
  }
  nlohmann::json::array_t array;
  array.reserve(p.entries.size());
  for (auto& chunk : decoded) {
    for (auto& element : chunk.get_ref<nlohmann::json::array_t&>())
      array.push_back(std::move(element));
    chunk = nullptr;
  }
  return nlohmann::json(std::move(array));
}

// Puts every part's container back where its placeholder is in `tree`.
void put_back(nlohmann::json& j, const PartsReader& reader, const std::vector<scanned_part>& parts,
              const std::string& prefix, int depth) {
  if (const auto* s = j.get_ptr<const std::string*>()) {
    if (!s->starts_with(prefix)) return;
    const std::size_t i = std::stoul(s->substr(prefix.size()));
    if (i < parts.size()) j = assemble(reader, parts[i]);
    return;
  }
  if (depth >= max_scan_depth || (!j.is_object() && !j.is_array())) return;
  for (auto& child : j) put_back(child, reader, parts, prefix, depth + 1);
}

}  // namespace

void load_snapshot_payload(byte_view payload, codec c,
                           const std::function<void(const nlohmann::json&)>& from_tree) {
  load_snapshot_payload(payload, c, from_tree, loader_limits{});
}

namespace {

nlohmann::json decode_whole(byte_view payload, codec c) {
  auto decoded = decode(payload, c);
  if (!decoded) throw std::runtime_error(std::string("not valid ") + codec_name(c));
  return std::move(*decoded);
}

// The payload with each part replaced by its placeholder, decoded; nullopt if it does not
// decode (damage outside the large containers, reported by decoding the whole payload).
std::optional<nlohmann::json> skeleton_tree(byte_view payload, codec c, const PartsReader& reader,
                                            const std::vector<scanned_part>& parts) {
  std::string skeleton;
  std::size_t done = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const auto& p = parts[i];
    skeleton.append(as_chars(payload.subspan(done, p.begin - done)));
    encode_to(skeleton, nlohmann::json(reader.placeholder(i)), c);
    done = p.end;
  }
  skeleton.append(as_chars(payload.subspan(done)));
  return decode(as_bytes(skeleton), c);
}

}  // namespace

void load_snapshot_payload(byte_view payload, codec c,
                           const std::function<void(const nlohmann::json&)>& from_tree,
                           const loader_limits& limits) {
  auto whole = [&] { from_tree(decode_whole(payload, c)); };
  auto parts = scan_large_containers(payload, c, limits.large_container);
  if (!parts || parts->empty()) return whole();
  PartsReader reader(payload, c, *parts, std::max<std::size_t>(limits.chunk_entries, 1));
  auto tree = skeleton_tree(payload, c, reader, *parts);
  if (!tree) return whole();
  bool claimed_all = false;
  try {
    reading_scope scope(&reader);
    from_tree(*tree);
    claimed_all = reader.all_claimed();
  } catch (const nlohmann::json::exception&) {
    // A container that does not opt in (a std::map, say) met a placeholder.
  }
  if (claimed_all) return;
  put_back(*tree, reader, *parts, reader.prefix(), 0);
  from_tree(*tree);
}

nlohmann::json decode_snapshot_tree(byte_view payload, codec c) {
  const loader_limits limits;
  auto parts = scan_large_containers(payload, c, limits.large_container);
  if (!parts || parts->empty()) return decode_whole(payload, c);
  PartsReader reader(payload, c, *parts, limits.chunk_entries);
  auto tree = skeleton_tree(payload, c, reader, *parts);
  if (!tree) return decode_whole(payload, c);
  put_back(*tree, reader, *parts, reader.prefix(), 0);
  return std::move(*tree);
}

}  // namespace prevalent::detail

#include "prevalent/snapshot_writer.hpp"

#include <algorithm>
#include <memory>
#include <random>
#include <stdexcept>
#include <string_view>

#include "prevalent/parallel.hpp"
#include "prevalent/snapshot_encoding.hpp"
#include "prevalent/snapshot_parts_scope.hpp"

namespace prevalent::detail {

namespace {

std::string random_nonce() {
  std::random_device rd;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 4; ++i) {
    const std::uint32_t v = rd();
    for (int b = 0; b < 8; ++b) out += hex[(v >> (4 * b)) & 0xf];
  }
  return out;
}

// A large object or array of the serialized tree, moved out of it and visited in chunks.
part_writer tree_part(nlohmann::json&& container, std::size_t chunk_entries) {
  auto held = std::make_shared<nlohmann::json>(std::move(container));
  part_writer p;
  p.object = held->is_object();
  p.size = held->size();
  p.chunks = (p.size + chunk_entries - 1) / chunk_entries;
  if (p.object) {
    // std::map iterators at each chunk's start; visiting only reads the map.
    auto starts = std::make_shared<std::vector<nlohmann::json::object_t::iterator>>();
    auto& object = held->get_ref<nlohmann::json::object_t&>();
    std::size_t n = 0;
    for (auto it = object.begin(); it != object.end(); ++it, ++n)
      if (n % chunk_entries == 0) starts->push_back(it);
    p.visit_chunk = [held, starts, chunk_entries](std::size_t i, const entry_visitor& visit) {
      auto& object = held->get_ref<nlohmann::json::object_t&>();
      auto it = (*starts)[i];
      for (std::size_t k = 0; k < chunk_entries && it != object.end(); ++k, ++it) {
        const nlohmann::json key = it->first;
        visit(&key, it->second);
      }
    };
  } else {
    p.visit_chunk = [held, chunk_entries](std::size_t i, const entry_visitor& visit) {
      auto& array = held->get_ref<nlohmann::json::array_t&>();
      const std::size_t end = std::min(array.size(), (i + 1) * chunk_entries);
      for (std::size_t k = i * chunk_entries; k < end; ++k) visit(nullptr, array[k]);
    };
  }
  return p;
}

}  // namespace

SnapshotWriter::SnapshotWriter(codec c) : codec_(c), nonce_(random_nonce()) {}

std::string SnapshotWriter::placeholder_text(std::size_t i) const {
  return "prevalent-snapshot-part:" + nonce_ + ":" + std::to_string(i);
}

nlohmann::json SnapshotWriter::placeholder(part_writer part) {
  parts_.push_back(std::move(part));
  return placeholder_text(parts_.size() - 1);
}

void SnapshotWriter::take_large_containers(nlohmann::json& j, int depth) {
  if (!j.is_object() && !j.is_array()) return;
  if (j.size() >= part_threshold) {
    parts_.push_back(tree_part(std::move(j), chunk_entries));
    j = placeholder_text(parts_.size() - 1);
    return;
  }
  if (depth >= 64) return;  // deeper containers are written with the tree
  for (auto& child : j) take_large_containers(child, depth + 1);
}

void SnapshotWriter::write_part(const part_writer& part, const payload_sink& sink) const {
  std::string head;
  append_container_open(head, codec_, part.object, part.size);
  sink(as_bytes(head));
  std::vector<std::size_t> counts(part.chunks);
  std::size_t written = 0;
  const codec c = codec_;
  const bool object = part.object;
  ordered_pipeline(
      part.chunks, 4 * pool_size(part.chunks),
      [&](std::size_t i) {
        std::string out;
        std::size_t n = 0;
        part.visit_chunk(i, [&](const nlohmann::json* key, nlohmann::json& value) {
          if (object != (key != nullptr))
            throw std::logic_error("a snapshot part visited an entry of the wrong kind");
          append_entry(out, c, key, value, n == 0);
          ++n;
        });
        counts[i] = n;
        return out;
      },
      [&](std::size_t i, std::string& out) {
        if (counts[i] > 0 && written > 0 && c == codec::json) sink(as_bytes(std::string_view(",")));
        sink(as_bytes(out));
        written += counts[i];
        if (part.release_chunk) part.release_chunk(i);
      });
  if (written != part.size)
    throw std::logic_error("a snapshot part said it has " + std::to_string(part.size) +
                           " entries but visited " + std::to_string(written));
  std::string tail;
  append_container_close(tail, codec_, part.object);
  if (!tail.empty()) sink(as_bytes(tail));
}

void SnapshotWriter::write(const std::function<nlohmann::json()>& serialize,
                           const payload_sink& sink) {
  std::string small;
  {
    nlohmann::json tree;
    {
      writing_scope scope(this);
      tree = serialize();
    }
    take_large_containers(tree, 0);
    encode_to(small, tree, codec_);
  }  // the tree goes: the parts hold what they write
  // Where each part's placeholder is in the small payload, in payload order.
  std::vector<std::pair<std::size_t, std::size_t>> at;  // (offset, part)
  std::vector<std::size_t> lengths(parts_.size());
  const std::string_view text(small);
  for (std::size_t i = 0; i < parts_.size(); ++i) {
    const std::string marker = encode(nlohmann::json(placeholder_text(i)), codec_);
    lengths[i] = marker.size();
    const auto pos = text.find(marker);
    if (pos == std::string_view::npos) continue;  // dropped by the state's to_json
    if (text.find(marker, pos + 1) != std::string_view::npos)
      throw std::logic_error("a snapshot part's placeholder appears twice in the state's tree");
    at.emplace_back(pos, i);
  }
  std::sort(at.begin(), at.end());
  std::size_t done = 0;
  for (auto [pos, i] : at) {
    sink(as_bytes(text.substr(done, pos - done)));
    write_part(parts_[i], sink);
    parts_[i] = {};  // release what the part holds
    done = pos + lengths[i];
  }
  sink(as_bytes(text.substr(done)));
}

std::string write_streamed(const std::function<nlohmann::json()>& serialize, codec c) {
  std::string out;
  SnapshotWriter w(c);
  w.write(serialize,
          [&](byte_view b) { out.append(reinterpret_cast<const char*>(b.data()), b.size()); });
  return out;
}

}  // namespace prevalent::detail

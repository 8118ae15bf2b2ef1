// The streaming snapshot writer: the writer side of detail/snapshot_parts.hpp. It serializes
// the captured state to a small tree while it is snapshot_writing::current() (large containers
// that opt in return placeholders), also takes the large objects and arrays left in that tree
// out as parts, encodes the small tree, and writes it with each part's entries spliced in where
// its placeholder is, the chunks encoded on a few threads. The bytes are exactly those of
// encoding the whole state as one tree with the same codec (docs/FORMAT.md).
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/detail/snapshot_parts.hpp"

namespace prevalent::detail {

// Receives the payload in order, piece by piece.
using payload_sink = std::function<void(byte_view)>;

class SnapshotWriter final : public snapshot_writing {
 public:
  // Containers of the tree with at least this many entries become parts.
  static constexpr std::size_t part_threshold = 1024;
  // Entries per chunk of a part taken from the tree.
  static constexpr std::size_t chunk_entries = 4096;

  explicit SnapshotWriter(codec c);
  ~SnapshotWriter() = default;
  SnapshotWriter(const SnapshotWriter&) = delete;
  SnapshotWriter& operator=(const SnapshotWriter&) = delete;

  nlohmann::json placeholder(part_writer part) override;

  // Calls serialize() with this writer current on the calling thread (it should destroy the
  // captured state before it returns, once the tree is built), then writes the payload to
  // `sink`. Throws what serialize(), a part's visit_chunk or the sink throw, and
  // std::logic_error when a part visits a different number of entries than its size says.
  void write(const std::function<nlohmann::json()>& serialize, const payload_sink& sink);

 private:
  std::string placeholder_text(std::size_t i) const;
  void take_large_containers(nlohmann::json& j, int depth);
  void write_part(const part_writer& part, const payload_sink& sink) const;

  codec codec_;
  std::string nonce_;
  std::vector<part_writer> parts_;
};

// The payload of `tree` written through SnapshotWriter (the whole-tree case of write()), for
// tests and benchmarks that compare it with encode(tree, c).
std::string write_streamed(const std::function<nlohmann::json()>& serialize, codec c);

}  // namespace prevalent::detail

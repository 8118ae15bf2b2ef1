// How a large container's part of a snapshot is written and read apart from the rest of the
// state: in chunks, on several threads, without one JSON tree of the whole state. The bytes are
// exactly those nlohmann writes for the same container (an object for string keys, an array of
// elements otherwise), so a state can switch between a standard container and one that opts in
// (cow_map.hpp) without changing its snapshots. store.hpp drives both halves.
//
// Writing: while Store::snapshot() serializes the captured state, snapshot_writing::current()
// is set on that thread. A container that opts in returns placeholder(part) from its to_json
// instead of its entries; the writer encodes the part's chunks in parallel and splices their
// bytes in where the placeholder is.
// Reading: while a snapshot is loaded, snapshot_reading::current() is set on the thread that
// runs from_json(State). Large containers of the payload arrive as placeholders; a container's
// from_json claims one and decodes its chunks in parallel. A placeholder that nothing claims
// (a std::map member, say) makes the loader parse the snapshot again as one tree, so opting in
// is never required for a snapshot to load.
//
// Not an API of its own: the contract between cow_map.hpp and the snapshot code.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>

#include <nlohmann/json.hpp>

namespace prevalent::detail {

// Receives one entry of a part: for an object, its key (a string) and value; for an array,
// key is nullptr and value is the element. `value` may be moved from.
using entry_visitor = std::function<void(const nlohmann::json* key, nlohmann::json& value)>;

// A container's part, as the writer sees it.
struct part_writer {
  bool object = true;    // {key: value, ...} or [element, ...]
  std::size_t size = 0;  // entries, all chunks together
  std::size_t chunks = 0;
  // Visits chunk i's entries in order. Called once per chunk, from several threads at once,
  // none of which has snapshot_writing::current() set.
  std::function<void(std::size_t i, const entry_visitor& visit)> visit_chunk;
  // May be empty. Called once chunk i is encoded: the container may drop what it holds for
  // it (the live container then stops paying copy-on-write for it).
  std::function<void(std::size_t i)> release_chunk;
};

class snapshot_writing {
 public:
  // The snapshot being written on this thread, or nullptr.
  static snapshot_writing* current() noexcept;
  // What to_json returns for the part, in the state's tree.
  virtual nlohmann::json placeholder(part_writer part) = 0;

 protected:
  ~snapshot_writing() = default;
};

// A container's part, as the loader hands it over.
struct part_reader {
  bool object = true;
  std::size_t size = 0;  // entries, all chunks together
  std::size_t chunks = 0;
  // Decodes chunk i and visits its entries in order. Throws on a malformed entry.
  std::function<void(std::size_t i, const entry_visitor& visit)> visit_chunk;
  // Runs f(0) .. f(n-1) on the loader's threads (none of which has
  // snapshot_reading::current() set) and returns when all are done; rethrows the first
  // exception.
  std::function<void(std::size_t n, const std::function<void(std::size_t)>& f)> parallel_for;
};

class snapshot_reading {
 public:
  // The snapshot being loaded on this thread, or nullptr.
  static snapshot_reading* current() noexcept;
  // If `j` is one of this load's placeholders and not claimed yet, claims it.
  virtual std::optional<part_reader> claim(const nlohmann::json& j) = 0;

 protected:
  ~snapshot_reading() = default;
};

}  // namespace prevalent::detail

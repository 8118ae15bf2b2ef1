// Structural scanners for snapshot payloads in JSON text, CBOR and MessagePack: they find the
// outermost objects and arrays with many entries and the byte ranges of their entries, without
// decoding any value, so that the loader can decode those entries in parallel. They accept
// what nlohmann writes (and JSON with whitespace); on anything else they give up (the loader
// then decodes the payload as one tree, which reports the damage). On damaged bytes they never
// read outside the payload, never loop, and never nest deeper than max_scan_depth.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"

namespace prevalent::detail {

inline constexpr int max_scan_depth = 128;

// One entry of a container: for an object, its key at [key, key_end) and its value at
// [value, end); for an array, the element at [value, end) (key == key_end == value).
struct scanned_entry {
  std::uint64_t key = 0, key_end = 0, value = 0, end = 0;
};

// A container found: its bytes are [begin, end) of the payload.
struct scanned_part {
  bool object = true;
  std::uint64_t begin = 0, end = 0;
  std::vector<scanned_entry> entries;
};

// The outermost containers with at least `threshold` entries, in payload order (none of them
// inside another). nullopt when the payload is not one well-formed value of codec `c` as far
// as its structure goes, or nests deeper than max_scan_depth.
std::optional<std::vector<scanned_part>> scan_large_containers(byte_view payload, codec c,
                                                               std::size_t threshold);

}  // namespace prevalent::detail

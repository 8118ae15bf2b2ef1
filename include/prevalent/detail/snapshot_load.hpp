// The streaming snapshot loader as Store sees it (lib/snapshot_loader.cpp): the reader side of
// detail/snapshot_parts.hpp. Not an API of its own.
#pragma once

#include <functional>

#include <nlohmann/json.hpp>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"

namespace prevalent::detail {

// Decodes a verified snapshot payload into the state being loaded by calling from_tree(tree)
// (which runs from_json(State) and keeps the result). The outermost objects and arrays of at
// least 1024 entries are replaced in `tree` by placeholders, and from_tree runs with a
// snapshot_reading current, so that containers that opt in claim them and decode their
// entries in parallel. If a placeholder is left unclaimed, or from_tree throws a
// nlohmann::json::exception, it runs again with the whole tree (its large containers decoded
// in parallel and put back in place). Throws errc::corrupt_snapshot naming the payload offset
// of an entry that does not decode, and std::runtime_error when the payload is not valid in
// codec `c`.
void load_snapshot_payload(byte_view payload, codec c,
                           const std::function<void(const nlohmann::json&)>& from_tree);

// The whole payload as one tree, for State::upgrade, which needs all of it: its outermost
// objects and arrays of at least 1024 entries are decoded in chunks in parallel and put in
// place. Throws as load_snapshot_payload() does.
nlohmann::json decode_snapshot_tree(byte_view payload, codec c);

}  // namespace prevalent::detail

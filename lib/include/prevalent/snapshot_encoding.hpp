// The bytes nlohmann writes around and between the entries of an object or array, for each
// codec, so that a container can be written entry by entry (and chunk by chunk, on several
// threads) with exactly the bytes that encoding the whole container at once would give.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "prevalent/codec.hpp"

namespace prevalent::detail {

// The container's opening: JSON `{` or `[`; CBOR and MessagePack the map or array header with
// `count`, in the smallest form nlohmann uses. Throws std::length_error for a count that
// nlohmann's encoder cannot write either (MessagePack past 2^32 - 1).
void append_container_open(std::string& out, codec c, bool object, std::uint64_t count);
// The container's end: JSON `}` or `]`, nothing for CBOR and MessagePack.
void append_container_close(std::string& out, codec c, bool object);
// One entry: JSON `"key":value` (or the element), preceded by `,` unless `first`; CBOR and
// MessagePack the key, then the value (or the element). `key` is nullptr for an array.
void append_entry(std::string& out, codec c, const nlohmann::json* key, const nlohmann::json& value,
                  bool first);

}  // namespace prevalent::detail

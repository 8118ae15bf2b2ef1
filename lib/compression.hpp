// zstd compression of snapshot payloads, when the library was built with libzstd.
#pragma once

#include <string>

#include "prevalent/bytes.hpp"

namespace prevalent::detail {

bool zstd_available();
// Throws prevalent::error(compression_failed) naming the size and zstd's reason when zstd
// fails, or invalid_option when built without zstd.
bytes zstd_compress(byte_view data);
// Throws prevalent::error(corrupt_snapshot) naming `what` when `data` is not a valid frame or
// would decompress to more than `max_size` bytes.
bytes zstd_decompress(byte_view data, std::uint64_t max_size, const std::string& what);

}  // namespace prevalent::detail

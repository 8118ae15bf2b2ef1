#include "compression.hpp"

#include "prevalent/error.hpp"

#ifdef PREVALENT_HAVE_ZSTD
#include <zstd.h>
#endif

namespace prevalent::detail {

#ifdef PREVALENT_HAVE_ZSTD

bool zstd_available() { return true; }

bytes zstd_compress(byte_view data) {
  bytes out(ZSTD_compressBound(data.size()));
  const std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), 3);
  if (ZSTD_isError(n))
    throw error(errc::compression_failed, "zstd could not compress a snapshot payload of " +
                                              std::to_string(data.size()) +
                                              " bytes: " + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

bytes zstd_decompress(byte_view data, std::uint64_t max_size, const std::string& what) {
  const unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
    throw error(errc::corrupt_snapshot, what + ": not a zstd frame with a known content size");
  if (size > max_size)
    throw error(errc::corrupt_snapshot, what + ": zstd frame claims " + std::to_string(size) +
                                            " bytes, over the limit of " +
                                            std::to_string(max_size));
  bytes out(size);
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), data.data(), data.size());
  if (ZSTD_isError(n) || n != size)
    throw error(errc::corrupt_snapshot,
                what + ": zstd: " + (ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short frame"));
  return out;
}

#else

bool zstd_available() { return false; }

bytes zstd_compress(byte_view) {
  throw error(errc::invalid_option,
              "snapshot compression needs zstd; prevalent was built without it");
}

bytes zstd_decompress(byte_view, std::uint64_t, const std::string& what) {
  throw error(errc::corrupt_snapshot,
              what + ": zstd-compressed, but prevalent was built without zstd");
}

#endif

}  // namespace prevalent::detail

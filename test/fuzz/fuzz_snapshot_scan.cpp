// libFuzzer target: the structural scanners of snapshot payloads (snapshot_scan.hpp) and the
// streaming loader on arbitrary bytes. The first byte picks the codec (value % 3) and the
// size from which a container counts as large (value / 3 % 8 + 1), the rest is the payload.
// Checks that scanning never reads out of bounds (ASan) and that what it finds is consistent
// (parts in order, disjoint, entries inside their part and in order), and that the loader
// decodes exactly what nlohmann decodes from the whole payload, and fails when that fails.
#include <cstdlib>

#include "prevalent/codec.hpp"
#include "prevalent/snapshot_loader.hpp"
#include "prevalent/snapshot_scan.hpp"

namespace d = prevalent::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const auto c = static_cast<prevalent::codec>(data[0] % 3 + 1);
  const std::size_t threshold = data[0] / 3 % 8 + 1;
  prevalent::byte_view payload(data + 1, size - 1);
  if (auto parts = d::scan_large_containers(payload, c, threshold)) {
    std::uint64_t previous_end = 0;
    for (const auto& p : *parts) {
      if (p.begin < previous_end || p.end > payload.size() || p.begin >= p.end) std::abort();
      if (p.entries.size() < threshold) std::abort();
      std::uint64_t at = p.begin;
      for (const auto& e : p.entries) {
        if (e.key < at || e.key_end < e.key || e.value < e.key_end || e.end < e.value ||
            e.end > p.end)
          std::abort();
        at = e.end;
      }
      previous_end = p.end;
    }
  }
  const auto whole = prevalent::decode(payload, c);
  std::optional<nlohmann::json> streamed;
  try {
    d::load_snapshot_payload(
        payload, c, [&](const nlohmann::json& j) { streamed = j; }, d::loader_limits{threshold, 2});
  } catch (const std::exception&) {
    streamed.reset();
  }
  if (whole.has_value() != streamed.has_value()) std::abort();
  if (whole && prevalent::encode(*whole, prevalent::codec::cbor) !=
                   prevalent::encode(*streamed, prevalent::codec::cbor))
    std::abort();
  return 0;
}

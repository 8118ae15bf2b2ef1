// libFuzzer target: record, segment-header and snapshot-header decoding on arbitrary bytes.
// Checks that decoding never reads out of bounds (ASan), and that whatever decodes encodes
// back to the same bytes.
#include <prevalent/format.hpp>

#include <cstdlib>

namespace f = prevalent::format;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  prevalent::byte_view in(data, size);
  std::string why;
  if (auto h = f::decode_segment_header(in, why)) {
    if (f::encode_segment_header(*h) != prevalent::bytes(data, data + h->size())) std::abort();
  }
  (void)f::decode_snapshot_header(in, why);
  for (std::uint32_t salt : {0u, 1u, 0x1f695319u}) {
    auto r = f::decode_record(in, salt, 1u << 20);
    if (r.status == f::record_status::ok) {
      prevalent::bytes again;
      f::append_record(again, salt, r.seq, r.timestamp_ns, r.payload, r.run_index);
      if (again != prevalent::bytes(data, data + r.size)) std::abort();
    }
  }
  return 0;
}

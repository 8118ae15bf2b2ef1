// libFuzzer target: a store opening fuzzed content with valid framing, so that the fuzzer
// reaches the decoders behind the checksums. The first byte picks the case:
//   0..2  a journal segment whose one record carries the rest as payload, in codec json,
//         cbor or msgpack: replay must decode and dispatch it or refuse with an error
//   3..5  a snapshot whose payload is the rest, in codec json, cbor or msgpack
//   6     the rest is a raw snapshot file (header included)
// Opening must succeed or throw prevalent::error; nothing else.
#include <prevalent/checksum.hpp>
#include <prevalent/format.hpp>
#include <prevalent/prevalent.hpp>

#include <map>

using namespace prevalent;

namespace {

struct State {
  std::map<std::string, long> counts;
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(State, counts)
};
struct Add {
  static constexpr std::string_view name = "add";
  static constexpr int version = 2;
  std::string key;
  long by = 0;
  void apply(State& s, const Context&) const { s.counts[key] += by; }
  NLOHMANN_DEFINE_TYPE_INTRUSIVE(Add, key, by)
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int kind = data[0] % 7;
  byte_view rest(data + 1, size - 1);
  auto dir = make_memory_directory();
  const format::codec codecs[3] = {format::codec::json, format::codec::cbor,
                                   format::codec::msgpack};
  if (kind < 3) {
    format::segment_header h;
    h.codec = codecs[kind];
    h.salt = 7;
    bytes seg = format::encode_segment_header(h);
    if (!rest.empty()) format::append_record(seg, h.salt, 1, 0, rest);
    dir->open(format::segment_file_name(1), Directory::open_mode::create_new)->append(seg);
  } else {
    bytes snap;
    if (kind < 6) {
      format::snapshot_header h;
      h.codec = codecs[kind - 3];
      h.payload_length = rest.size();
      h.payload_crc = crc32c(rest);
      snap = format::encode_snapshot_header(h);
    }
    snap.insert(snap.end(), rest.begin(), rest.end());
    dir->open(format::snapshot_file_name(0), Directory::open_mode::create_new)->append(snap);
  }
  try {
    store_options o;
    o.sync = sync_policy::none();
    Store<State, Add> store(dir, o);
    store.execute(Add{"k", 1});
  } catch (const error&) {
  }
  return 0;
}

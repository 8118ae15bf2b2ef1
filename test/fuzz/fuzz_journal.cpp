// libFuzzer target: journal recovery over a fuzzed directory image. The input is split into up
// to three segment files at 0xFF 0xFE separators; the journal must open (recovering a prefix)
// or refuse with prevalent::error, never crash. When it opens, it must also take a record and
// reopen with it.
#include <prevalent/error.hpp>
#include <prevalent/format.hpp>
#include <prevalent/journal.hpp>

#include <string_view>

using namespace prevalent;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto dir = make_memory_directory();
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::uint64_t first_seq = 1;
  for (int i = 0; i < 3 && !all.empty(); ++i) {
    auto cut = all.find("\xff\xfe");
    auto part = all.substr(0, cut);
    auto file = dir->open(format::segment_file_name(first_seq), Directory::open_mode::create_new);
    file->append(as_bytes(part));
    first_seq += 1 + part.size() % 7;
    all = cut == std::string_view::npos ? std::string_view() : all.substr(cut + 2);
  }
  journal_options o;
  o.segment_bytes = 4096;
  o.max_record_bytes = 1 << 16;
  o.preallocate_bytes = 0;
  try {
    std::uint64_t last = 0;
    {
      auto j = Journal::open(dir, o, 1, 1, [&](const record_view& r) { last = r.seq; });
      const auto seq = j->append(1, "fuzz");
      j->sync_through(seq);
      last = seq;
    }
    std::uint64_t again = 0;
    Journal::open(dir, o, 1, 1, [&](const record_view& r) { again = r.seq; });
    if (again != last) std::abort();
  } catch (const error&) {
  }
  return 0;
}

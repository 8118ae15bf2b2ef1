// The segment writer alone: run indexes in the framing, preallocated zero fill, and rolls that
// cut the zero fill of the closed segment.
#include <doctest/doctest.h>

#include <prevalent/format.hpp>

#include "../lib/segment_writer.hpp"
#include "support.hpp"

using namespace prevalent;
namespace f = prevalent::format;

namespace {

std::vector<detail::pending_record> batch(std::uint64_t first, int n, std::size_t size = 40) {
  std::vector<detail::pending_record> out;
  for (int i = 0; i < n; ++i) out.push_back({first + i, 0, std::string(size, 'r')});
  return out;
}

// Run index of every record in `file`, in order.
std::vector<std::uint32_t> run_indexes(Directory& dir, const std::string& file) {
  const bytes data = read_all(*dir.open(file, Directory::open_mode::read));
  const std::uint32_t salt = [&] {
    std::string why;
    return f::decode_segment_header(data, why)->salt;
  }();
  std::vector<std::uint32_t> out;
  for (std::size_t pos = f::segment_header_size; pos < data.size();) {
    auto r = f::decode_record(byte_view(data).subspan(pos), salt, 1 << 20);
    if (r.status != f::record_status::ok) break;
    out.push_back(r.run_index);
    pos += r.size;
  }
  return out;
}

}  // namespace

TEST_CASE("segment_writer: run index counts records since the last sync") {
  test::temp_dir tmp;
  auto dir = open_posix_directory(tmp.path());
  journal_options o;
  o.preallocate_bytes = 4096;
  detail::segment_writer w(dir, o);
  w.adopt({}, 1);
  w.write(batch(1, 3));
  w.write(batch(4, 2));  // same unsynced run
  w.sync();
  w.write(batch(6, 2));  // a new run
  w.sync();
  const auto segs = w.segments();
  REQUIRE(segs.size() == 1);
  CHECK(run_indexes(*dir, segs[0].file) == std::vector<std::uint32_t>{0, 1, 2, 3, 4, 0, 1});
  // Preallocated: the file reaches past the last record, in zeros.
  CHECK(dir->open(segs[0].file, Directory::open_mode::read)->size() >= 4096);
  CHECK(segs[0].bytes < 4096);
  CHECK(w.bytes_written() == segs[0].bytes - f::segment_header_size);
}

TEST_CASE("segment_writer: a roll cuts the zero fill and starts the run again") {
  test::temp_dir tmp;
  auto dir = open_posix_directory(tmp.path());
  journal_options o;
  o.segment_bytes = f::segment_header_size + 3 * f::framed_size(40);  // three records each
  o.preallocate_bytes = 1 << 20;                                      // capped at segment_bytes
  detail::segment_writer w(dir, o);
  w.adopt({}, 1);
  w.write(batch(1, 7));  // one batch over three segments
  const auto segs = w.segments();
  REQUIRE(segs.size() == 3);
  for (int i = 0; i < 2; ++i) {
    CHECK(segs[i].last_seq - segs[i].first_seq + 1 == 3);
    // Closed segments end at their last record: no zero fill left for recovery to misread.
    CHECK(dir->open(segs[i].file, Directory::open_mode::read)->size() == segs[i].bytes);
    CHECK(run_indexes(*dir, segs[i].file) == std::vector<std::uint32_t>{0, 1, 2});
  }
  CHECK(segs[2].first_seq == 7);
  CHECK(run_indexes(*dir, segs[2].file) == std::vector<std::uint32_t>{0});
  w.drop_below(7);
  CHECK(w.first_seq() == 7);
}

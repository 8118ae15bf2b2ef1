// The segment reader streams: it holds one record and a bounded read-ahead window, never a
// whole segment, and still hands every record over intact.
#include <doctest/doctest.h>

#include <algorithm>

#include <prevalent/journal.hpp>

#include "../lib/segment_reader.hpp"
#include "support.hpp"

using namespace prevalent;

namespace {

// A segment image in memory that records the size of every read.
class counting_file : public File {
 public:
  explicit counting_file(bytes data) : data_(std::move(data)) {}
  void append(byte_view) override { throw std::logic_error("read only"); }
  void write_at(std::uint64_t, byte_view) override { throw std::logic_error("read only"); }
  std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const override {
    largest = std::max(largest, out.size());
    total += out.size();
    if (offset >= data_.size()) return 0;
    const std::size_t n = std::min<std::size_t>(out.size(), data_.size() - offset);
    std::copy_n(data_.begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }
  std::uint64_t size() const override { return data_.size(); }
  void sync() override {}
  void truncate(std::uint64_t) override { throw std::logic_error("read only"); }
  mutable std::size_t largest = 0;
  mutable std::size_t total = 0;

 private:
  bytes data_;
};

// One segment of `n` records of `size` bytes, written by the journal itself.
bytes write_segment(int n, std::size_t size) {
  test::temp_dir tmp;
  auto dir = open_posix_directory(tmp.path());
  journal_options o;
  o.segment_bytes = 64ull << 20;
  o.preallocate_bytes = 0;
  auto j = Journal::open(dir, o, 1, 1, {});
  for (int i = 1; i <= n; ++i) j->append(i, std::string(size, static_cast<char>('a' + i % 26)));
  j->sync_through(n);
  const std::string file = j->segments().front().file;
  j->close();
  return read_all(*dir->open(file, Directory::open_mode::read));
}

}  // namespace

TEST_CASE("segment_reader reads a large segment in bounded pieces, every record intact") {
  const int n = 3000;
  const std::size_t size = 1000;
  counting_file file(write_segment(n, size));
  REQUIRE(file.size() > 2'000'000);
  detail::segment_reader reader(file, file.size(), "segment", 1 << 20);
  std::uint64_t expected = 1;
  bool intact = true;
  const auto scan = reader.scan(true, [&](const record_view& r) {
    const char c = static_cast<char>('a' + r.seq % 26);
    intact = intact && r.seq == expected++ && r.payload.size() == size &&
             std::all_of(r.payload.begin(), r.payload.end(), [&](auto b) { return b == c; });
  });
  CHECK(intact);
  CHECK(scan.records == n);
  CHECK(scan.torn_reason.empty());
  CHECK(scan.valid_end == file.size());
  CHECK(file.largest <= 64u << 10);  // never the whole 3 MB segment at once
  // Each byte about once: a window refill re-reads only the record that straddled its end.
  CHECK(file.total <= file.size() + file.size() / 32);
}

TEST_CASE("segment_reader reads a record larger than its window in one piece") {
  counting_file file(write_segment(3, 200'000));
  detail::segment_reader reader(file, file.size(), "segment", 1 << 20);
  std::uint64_t seen = 0;
  reader.scan(true, [&](const record_view& r) { seen += r.payload.size(); });
  CHECK(seen == 600'000);
  CHECK(file.largest < 300'000);
}

TEST_CASE("segment_reader stops at `end`: bytes past it are ignored, not reported torn") {
  bytes image = write_segment(10, 100);
  const std::uint64_t end = image.size();
  image.resize(image.size() + 4096, 0xAB);  // a writer appending meanwhile
  counting_file file(std::move(image));
  detail::segment_reader reader(file, end, "segment", 1 << 20);
  const auto scan = reader.scan(false, {});
  CHECK(scan.records == 10);
  CHECK(scan.valid_end == end);
  CHECK(scan.torn_reason.empty());
}

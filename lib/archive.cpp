// Archive: durable copies of the segments and snapshots a store drops (archive.hpp).
#include "prevalent/archive.hpp"

#include <algorithm>

#include "prevalent/error.hpp"
#include "prevalent/format.hpp"

namespace prevalent {

void Archive::keep(Directory& from, const std::string& name) {
  const std::string temp = name + format::temp_suffix;
  try {
    dir_->remove(temp);  // left by an interrupted keep() of the same file
  } catch (const error& e) {
    if (e.code() != std::errc::no_such_file_or_directory) throw;
  }
  {
    const auto source = from.open(name, Directory::open_mode::read);
    const auto copy = dir_->open(temp, Directory::open_mode::create_new);
    bytes buffer(1u << 20);
    const std::uint64_t size = source->size();
    for (std::uint64_t at = 0; at < size;) {
      const std::size_t want =
          static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), size - at));
      const std::size_t got = source->read_at(at, std::span(buffer).first(want));
      if (got == 0)
        throw error(std::make_error_code(std::errc::io_error),
                    "archiving " + from.describe(name) + ": the file shrank while it was copied");
      copy->append(byte_view(buffer).first(got));
      at += got;
    }
    copy->sync();
  }
  dir_->rename(temp, name);
  dir_->sync();
}

void Archive::remove_leftovers() {
  bool removed = false;
  for (const auto& name : dir_->list()) {
    if (!name.ends_with(format::temp_suffix)) continue;
    const std::string stem = name.substr(0, name.size() - std::string(format::temp_suffix).size());
    if (!format::parse_segment_file_name(stem) && !format::parse_snapshot_file_name(stem)) continue;
    dir_->remove(name);
    removed = true;
  }
  if (removed) dir_->sync();
}

}  // namespace prevalent

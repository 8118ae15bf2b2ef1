// The history a store directory keeps, read without the store's types: which past states time
// travel (time_travel.hpp) can rebuild, and how a past state is named (as_of). Nothing here
// locks the directory or writes to it, so it works beside a running store and on a copy
// that is read-only.
//
//   auto range = prevalent::reachable_sequences("/var/lib/bank");   // {first, last}
//   if (range.contains(42)) ...
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "prevalent/directory.hpp"
#include "prevalent/options.hpp"

namespace prevalent {

// A past state of a store: the state right after record `seq` (0: the empty state, before the
// first record), or the state at `time`: after the last record stamped at or before it (record
// timestamps never go backwards, command.hpp's Context). Set exactly one of them.
struct as_of {
  std::optional<std::uint64_t> seq{};
  std::optional<std::chrono::system_clock::time_point> time{};
};

// The sequence numbers whose state can be rebuilt, first..last; empty() when there are none.
struct sequence_range {
  std::uint64_t first = 1, last = 0;
  bool empty() const { return first > last; }
  bool contains(std::uint64_t seq) const { return first <= seq && seq <= last; }
};

// How a past state was rebuilt (StoreView::report()).
struct travel_report {
  std::uint64_t seq = 0;           // the last record applied (0: none, the empty state)
  std::int64_t timestamp_ns = 0;   // that record's timestamp (the snapshot's, or 0)
  std::string snapshot;            // the snapshot loaded, full path ("": none, replayed from 1)
  std::uint64_t snapshot_seq = 0;  // the last record it covers
  std::uint64_t replayed = 0;      // journal records applied after it
};

// Which states time travel can rebuild in the store directory `path`, with the files of
// options.archive or options.archive_directory (if set and present) counted too: from the oldest
// snapshot that the journal continues from (0, the empty state, when the journal reaches back to
// record 1) to the last record (or the newest snapshot, if it is newer). Read from the file names
// and the last segment's records (a torn tail does not count); nothing else is verified (a damaged
// or missing file inside the range shows when open_at reads it). options.encryption_key is needed
// for an encrypted store. Throws std::errc::no_such_file_or_directory if `path` is not a
// directory. Never creates, locks or writes anything.
sequence_range reachable_sequences(const std::filesystem::path& path,
                                   const store_options& options = {});
// The same on any Directory (the archive still comes from options.archive or
// options.archive_directory).
sequence_range reachable_sequences(std::shared_ptr<Directory> dir,
                                   const store_options& options = {});

// The sequence number of the state `when` names, without the store's types: `when.seq` itself
// if it is reachable, or for `when.time` the last record stamped at or before it (0 if none),
// found from the snapshots' headers and the records after the newest one at or before it.
// Throws errc::not_reachable naming the reachable range, errc::invalid_option unless exactly
// one of seq and time is set. Reads as reachable_sequences() does.
std::uint64_t sequence_as_of(const std::filesystem::path& path, const as_of& when,
                             const store_options& options = {});
std::uint64_t sequence_as_of(std::shared_ptr<Directory> dir, const as_of& when,
                             const store_options& options = {});

}  // namespace prevalent

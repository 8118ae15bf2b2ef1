// The compiled half of time travel and of the determinism check (time_travel.hpp,
// determinism.hpp): reading a store directory and its archive without locking or writing
// anything. It lists snapshots and journal segments of both (the store directory's copy of a
// file wins), loads snapshots, reads records in order across both, and replays them onto a
// typed state through the callbacks a Store uses (store_core.hpp). Not an API of its own.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/detail/store_core.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/history.hpp"
#include "prevalent/journal_info.hpp"
#include "prevalent/options.hpp"
#include "prevalent/state_digest.hpp"

namespace prevalent::detail {

// One snapshot of a history.
struct history_snapshot {
  std::string file;        // its name
  std::string path;        // full path, for messages
  std::uint64_t last_seq;  // the last record it covers
  bool archived;           // in the archive directory, not the store's
};

// What loading a snapshot found in it.
struct snapshot_facts {
  std::int64_t timestamp_ns = 0;  // of its last record
  prevalent::codec codec = prevalent::codec::json;
  std::uint32_t state_version = 1;  // State::version of the program that wrote it
  // The state digest of its payload: the one its header records (version 3 snapshots), else
  // computed from the payload.
  digest128 digest{};
};

class History {
 public:
  // The store directory at `path`, opened without creating it (std::errc::no_such_file_or_
  // directory if it is missing), or `dir`; the archive is options.archive, or
  // options.archive_directory if it exists. The files present now are the ones read.
  History(const std::filesystem::path& path, const store_options& options);
  History(std::shared_ptr<Directory> dir, const store_options& options);
  ~History();
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  // Snapshots of both directories, newest first.
  const std::vector<history_snapshot>& snapshots() const;
  // As reachable_sequences() (history.hpp).
  sequence_range reachable() const;
  // The first record of the journal (both directories), or nullopt without any segment.
  std::optional<std::uint64_t> journal_start() const;

  // Reads and verifies snapshot `s` and hands its payload to `load`. Throws
  // errc::corrupt_snapshot (also when `load` throws: the state does not decode),
  // errc::encryption_mismatch, errc::authentication_failed.
  snapshot_facts load(const history_snapshot& s, const StoreCore::snapshot_loader& load) const;
  // Reads and verifies snapshot `s` without decoding it: its timestamp, codec and digest.
  snapshot_facts inspect(const history_snapshot& s) const;

  // Visits records from..to (to = UINT64_MAX: to the last one there is) in order, verified;
  // `visit` returns false to stop before the record it was given. Returns the last record
  // visited (from - 1 if none). Throws errc::not_reachable if a record of from..to is not
  // there (to = UINT64_MAX: if record `from` is missing though later ones exist), and the
  // segment readers' errors for damage.
  std::uint64_t for_each(std::uint64_t from, std::uint64_t to,
                         const std::function<bool(const record_view&)>& visit) const;

  // Replays records after+1..to (to = UINT64_MAX: all there are), stopping before the first
  // record stamped after `until_ns` if given, onto a state that holds everything through
  // `after`, through `replay` (the replay pipeline for long tails). Throws as for_each().
  struct replay_result {
    std::uint64_t last = 0;         // the last record applied (`after` if none)
    std::int64_t timestamp_ns = 0;  // its timestamp (`base_timestamp` if none)
    std::uint64_t records = 0;      // records applied
  };
  replay_result replay(std::uint64_t after, std::uint64_t to, std::optional<std::int64_t> until_ns,
                       std::int64_t base_timestamp, const replay_hooks& replay) const;

  // Rebuilds the state as of `when`: calls reset() (the empty state), loads the newest usable
  // snapshot at or before it (an unusable one is skipped, as on open, and reset() called
  // again), then replays the records after it through `replay` (the replay pipeline for long
  // tails). Throws errc::not_reachable naming the reachable range, errc::invalid_option when
  // `when` sets neither or both of seq and time.
  travel_report travel(const as_of& when, const StoreCore::snapshot_loader& load,
                       const replay_hooks& replay, const std::function<void()>& reset) const;

  // As sequence_as_of() (history.hpp).
  std::uint64_t resolve(const as_of& when) const;

  // The store directory's path, for messages.
  std::string path() const;
  const store_options& options() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// Serializes a state as a snapshot of it would be written: `serialize` returns the state's
// tree and runs with a snapshot writer current (detail/snapshot_parts.hpp); the payload goes
// to `sink` in order. Byte for byte the payload Store::snapshot() writes for the same state.
void serialize_state(codec c, const std::function<nlohmann::json()>& serialize,
                     const std::function<void(byte_view)>& sink);

}  // namespace prevalent::detail

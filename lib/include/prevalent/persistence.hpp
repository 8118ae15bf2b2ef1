// The part of a Store that does not depend on the user's types: the directory lock, the
// snapshot store and the journal, and the recovery sequence that ties them together (newest
// usable snapshot, then the journal tail). Store<State, Commands...> is a thin typed layer on
// top; this class is what a store does with bytes.
#pragma once

#include <functional>
#include <memory>
#include <mutex>

#include "prevalent/archive.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/journal.hpp"
#include "prevalent/options.hpp"
#include "prevalent/snapshot_store.hpp"

namespace prevalent {

class Persistence {
 public:
  // Receives a verified, decompressed snapshot payload, its header and its file (as the
  // directory describes it, for messages); throws if it does not decode (the snapshot is then
  // treated as damaged and an older one is tried), or errc::incompatible_version if its state
  // version cannot be read by this program (the open fails).
  using snapshot_loader = std::function<void(byte_view payload, const format::snapshot_header&,
                                             const std::string& file)>;

  // Locks the directory (errc::directory_in_use if another store has it) and checks options;
  // opens (creating it if needed) the archive directory, if one is set.
  Persistence(std::shared_ptr<Directory> dir, store_options options);

  // Loads the newest snapshot that verifies and decodes, then replays the journal after it
  // through `replay`. Without any snapshot the replay starts at sequence number 1.
  // `settle` keeps a visitor that works ahead in step (Journal::settler).
  void recover(const snapshot_loader& load, const Journal::visitor& replay,
               const Journal::settler& settle = {});

  // Loads the state again from disk, through record `upto` (used after a failed apply or an
  // I/O error). Records up to `upto` must have been written. Safe while a snapshot is being
  // published: what the rebuild reads is not deleted under it (see pins_mutex_). Throws if
  // it cannot deliver exactly the state through `upto`.
  void rebuild(const snapshot_loader& load, const Journal::visitor& replay, std::uint64_t upto,
               const Journal::settler& settle = {});

  // Publishes a snapshot of the state through `last_seq` (made durable first, whatever the
  // sync policy), then drops journal segments that no kept snapshot needs. The header records
  // `state_version` (State::version). Returns the snapshot file's size (0 if a newer snapshot
  // was published meanwhile: nothing written).
  std::uint64_t publish_snapshot(std::uint64_t last_seq, std::int64_t timestamp_ns,
                                 byte_view payload, std::uint32_t state_version = 1);

  // publish_snapshot() for a payload produced piece by piece (SnapshotStore::install_streamed).
  std::uint64_t publish_snapshot_streamed(
      std::uint64_t last_seq, std::int64_t timestamp_ns,
      const std::function<void(const SnapshotStore::payload_sink&)>& produce,
      std::uint32_t state_version = 1);

  // Lets another store open the directory (after the journal was closed).
  void unlock_directory() { lock_.reset(); }

  Journal& journal() { return *journal_; }
  const Journal& journal() const { return *journal_; }
  SnapshotStore& snapshots() { return snapshots_; }
  const Directory& directory() const { return *dir_; }
  Directory& directory() { return *dir_; }
  const store_options& options() const { return options_; }

 private:
  std::uint64_t load_newest_snapshot(const snapshot_loader& load, std::uint64_t at_most);
  void remove_unneeded();                                // caller holds publish_mutex_
  std::uint64_t size_of(const std::string& file) const;  // 0 if it cannot be opened

  std::shared_ptr<Directory> dir_;
  store_options options_;
  std::unique_ptr<DirectoryLock> lock_;
  std::unique_ptr<Archive> archive_;  // store_options::archive_directory, if set
  SnapshotStore snapshots_;
  std::mutex publish_mutex_;  // one snapshot publish at a time
  // A rebuild reads a snapshot and then the journal segments after it, while a publish may be
  // deleting the snapshots and segments it makes unneeded. The rebuild pins the files instead
  // of excluding the publish: it counts itself in `readers_`, and a publish that finds a reader
  // leaves its deletions pending (the last reader or the next publish does them). Neither side
  // ever waits for the other: a rebuild runs under the store's exclusive state lock, a publish
  // runs after its capture has released the state lock, and the deletions hold pins_mutex_
  // only for unlinks and a directory sync. Lock order: state lock, then publish_mutex_ (only
  // ever try_lock under the state lock), then pins_mutex_, then the journal's own locks; the
  // publish side never takes the state lock, so no cycle can form.
  std::mutex pins_mutex_;
  unsigned readers_ = 0;          // rebuilds reading snapshots and segments
  bool removal_pending_ = false;  // a publish left its deletions to do
  std::unique_ptr<Journal> journal_;
};

}  // namespace prevalent

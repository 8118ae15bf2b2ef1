// Progress of a store's open (load the newest snapshot, then replay the journal after it), for
// a progress bar or a log line while a large store opens: store_options::on_recovery_progress
// receives a recovery_progress at a bounded rate.
#pragma once

#include <cstdint>
#include <functional>

namespace prevalent {

enum class recovery_phase {
  snapshot,  // loading the newest snapshot (read, verified, decoded)
  journal,   // verifying the journal's segments and replaying the records after it
  done,      // the last call: the state is complete, every number is final
};

struct recovery_progress {
  recovery_phase phase = recovery_phase::snapshot;
  // The snapshot file being loaded, in bytes: `snapshot_bytes_loaded` is 0 while it is read
  // and decoded, and `snapshot_bytes_total` once it is (the decoding is not broken down
  // further). Both 0 without a snapshot.
  std::uint64_t snapshot_bytes_loaded = 0;
  std::uint64_t snapshot_bytes_total = 0;
  // Records replayed onto the state so far (those after the snapshot).
  std::uint64_t records_replayed = 0;
  // Journal bytes read of the segment files the open reads (their sizes on disk, preallocated
  // zero fill included; the last call reports journal_bytes_read == journal_bytes_total).
  std::uint64_t journal_bytes_read = 0;
  std::uint64_t journal_bytes_total = 0;
};

// Called on the thread that opens the store: once when the open starts, then at most about
// 10 times a second, and once more at the end with recovery_phase::done. Each call's numbers
// are at least those of the call before (but for snapshot_bytes_total when the newest
// snapshot is damaged and an older one is loaded instead: the total becomes that one's size).
// An exception it throws cancels the open: the store's constructor throws it, the directory is
// released, and the files are as the open left them (only a torn tail it already cut is gone).
// It must not use the store being opened.
using progress_function = std::function<void(const recovery_progress&)>;

}  // namespace prevalent

// Options of a Store, checked when it opens (errc::invalid_option names the bad one).
#pragma once

#include <chrono>
#include <cstdint>

#include "prevalent/format.hpp"
#include "prevalent/journal.hpp"
#include "prevalent/sync_policy.hpp"

namespace prevalent {

// When the store takes snapshots by itself, on a background thread, while commands go on.
// Any trigger that is set fires; all zero (the default) means only explicit snapshot() calls.
struct snapshot_policy {
  std::uint64_t every_commands = 0;       // after this many commands since the last snapshot
  std::uint64_t every_journal_bytes = 0;  // after this many journal bytes since the last one
  std::chrono::nanoseconds every{0};      // after this much time, if anything changed
  bool on_close = false;  // snapshot when the store is destroyed, so the next open replays nothing
};

struct store_options {
  // When execute() returns: after fdatasync (always), after the write (interval), or at once
  // (none). See sync_policy.hpp for what each promises.
  prevalent::sync_policy sync = sync_policy::always();
  // How commands are encoded in the journal: text JSON (readable), CBOR or MessagePack.
  format::codec codec = format::codec::json;
  // How snapshots are encoded. JSON by default whatever `codec` says: for large states
  // nlohmann's JSON parser measured 3.7x faster than its CBOR reader here (1M sessions:
  // parse 1.8 s, from_cbor 6.8 s), and compress_snapshots takes care of the size.
  format::codec snapshot_codec = format::codec::json;
  // A journal segment is closed once it would grow past this size (minimum 72 bytes).
  std::uint64_t segment_bytes = 64ull << 20;
  // Largest encoded command accepted (at most 1 GiB).
  std::uint32_t max_record_bytes = 16u << 20;
  // At most this many encoded bytes wait for the journal's writer thread; a command that
  // finds the queue full waits until the writer has taken it. Under sync policy `none` this is
  // what a process crash can lose: the commands acknowledged but not yet written (bench/
  // section "window": 4 writers under `none` lost about 1 ms of commands at 256 KiB, where an
  // unbounded queue lost 100 ms and more). Other policies wait for the disk anyway.
  std::size_t max_queued_bytes = 256u << 10;
  // Automatic snapshots.
  snapshot_policy snapshots;
  // Snapshots kept on disk (at least 1). The journal is kept back to the oldest of them, so a
  // damaged newest snapshot can be skipped on open.
  unsigned keep_snapshots = 2;
  // Compress snapshots with zstd (needs a build with libzstd).
  bool compress_snapshots = false;
  // Apply each command as decoded from its own encoded bytes, so a field the serialization
  // forgets shows up at once instead of only after a replay. On in every build (the same
  // default whatever NDEBUG says), always on in transient stores. It costs one decode per
  // execute: measured here with a 60-byte key-value command, 7.5 instead of 3.2 us per
  // execute under sync_policy::none (JSON; CBOR 5.5 instead of 1.8 us), lost in the
  // fdatasync (130-320 us) under always(). Turn it off for throughput once the commands'
  // serialization is tested.
  bool verify_encoding = true;
  // Receives recovery events (a torn tail cut off, a damaged snapshot skipped), failures of
  // automatic snapshots, and a failed final sync when the store is destroyed.
  log_function log;
};

}  // namespace prevalent

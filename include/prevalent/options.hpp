// Options of a Store and of its journal. check_options() validates them all in one place, when
// a store opens (errc::invalid_option, naming the option and its value).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "prevalent/codec.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/encryption_key.hpp"
#include "prevalent/recovery_progress.hpp"
#include "prevalent/sync_policy.hpp"

namespace prevalent {

// Receives recovery events and failures that have no caller to throw to.
using log_function = std::function<void(const std::string&)>;

// Options of the journal. A store's options include them (store_options below).
struct journal_options {
  // A segment is closed and a new one started once appending would grow it past this size
  // (at least 72 bytes: a header and one small record).
  std::uint64_t segment_bytes = 64ull << 20;
  // Records with a larger payload are refused (errc::record_too_large); at most 1 GiB.
  std::uint32_t max_record_bytes = 16u << 20;
  // When a record counts as written (see sync_policy.hpp).
  prevalent::sync_policy sync = sync_policy::always();
  // Codec recorded in new segments' headers.
  prevalent::codec codec = prevalent::codec::json;
  // At most this many encoded bytes wait for the journal's writer thread (queued, or in the
  // write under way); a command that finds them there waits until the writer has written
  // them. Under sync policy `none` this is what a process crash can lose (bench/ section
  // "window": 4 writers lost about 1 ms of commands with 64 MiB segments, 24 ms with 16 KiB
  // ones, where an unbounded queue lost 240 ms). Other policies wait for the disk anyway.
  std::size_t max_queued_bytes = 256u << 10;
  // Zero-fill the active segment this far ahead of the last record (0: off). Writing into
  // space that is already allocated and synced spares fdatasync the file-size update: on
  // ext4 here a 100-byte write + fdatasync ran 1.5x faster into preallocated space.
  std::uint64_t preallocate_bytes = 4u << 20;
  // Authenticated encryption at rest (docs/SECURITY.md#encryption-at-rest): with a key, every
  // record of new segments, and in a store every snapshot, is sealed with XChaCha20-Poly1305,
  // and the headers say so. The key comes from the application and is never written to disk.
  // Needs a build with libsodium (errc::invalid_option otherwise). Opening an encrypted store
  // without the key, or with another one, fails with errc::encryption_mismatch naming the file.
  std::optional<prevalent::encryption_key> encryption_key{};
  // With a key: also read segments and snapshots written without encryption, to turn it on for
  // an existing store (new segments and snapshots are encrypted; the old files go once
  // snapshots cover them). Off by default: a key given means every file must authenticate, so
  // nobody who can write the directory can slip in a plaintext segment or snapshot.
  bool accept_unencrypted = false;
  // The epoch (term) of the primary this store is, written with every record (in the segment
  // header, docs/FORMAT.md): 0, the default, for a store that is not replicated (its segments
  // are written as before epochs existed). Replication (issue 11) sets it to the term the
  // primary was elected in; a new epoch starts a new segment. Epochs never decrease along the
  // journal: a store opened with a lower epoch than its journal's last record opens and
  // replays, but refuses commands (errc::stale_epoch).
  std::uint64_t epoch = 0;
};

// When the store takes snapshots by itself, on a background thread, while commands go on.
// Any trigger that is set fires; all zero (the default) means only explicit snapshot() calls.
struct snapshot_policy {
  std::uint64_t every_commands = 0;       // after this many commands since the last snapshot
  std::uint64_t every_journal_bytes = 0;  // after this many journal bytes since the last one
  std::chrono::nanoseconds every{0};      // after this much time, if anything changed
  bool on_close = false;  // snapshot when the store is destroyed, so the next open replays nothing
};

// When a primary acknowledges a command (issue 11, docs/REPLICATION.md "Acknowledgement modes"):
// `local()` once it is as safe as the sync policy promises on this machine (the default);
// `replicated(k, timeout)` once, in addition, at least k replicas have reported it durable on
// their disks. If they have not within `timeout`, execute() throws errc::replication_timeout
// (the command is applied and durable locally; it may or may not reach the replicas later).
struct ack_policy {
  unsigned replicas = 0;  // k; 0 = local
  std::chrono::milliseconds timeout{5000};

  static ack_policy local() { return {}; }
  static ack_policy replicated(unsigned k,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return {k, timeout};
  }
};

// Everything a Store is opened with: the journal's options (sync policy, codec, segment size,
// record and queue limits, preallocation: journal_options above) and the store's own.
struct store_options : journal_options {
  // How snapshots are encoded. JSON by default whatever `codec` says: for large states
  // nlohmann's JSON parser measured 3.7x faster than its CBOR reader here (1M sessions:
  // parse 1.8 s, from_cbor 6.8 s), and compress_snapshots takes care of the size.
  prevalent::codec snapshot_codec = prevalent::codec::json;
  // Automatic snapshots.
  snapshot_policy snapshots;
  // Snapshots kept on disk (at least 1). The journal is kept back to the oldest of them, so a
  // damaged newest snapshot can be skipped on open.
  unsigned keep_snapshots = 2;
  // Keep the history that retention drops: with a directory here (created with directory_mode
  // if missing; not the store's own), every journal segment and snapshot the store would
  // delete is first copied into it durably, under the same name, then deleted. The archive
  // reads like a store directory; time travel (time_travel.hpp) and the determinism check look
  // into it. The store never deletes anything there (README, "Time travel").
  std::filesystem::path archive_directory{};
  // The archive as a Directory instead of a path (another implementation, or a
  // FaultInjectingDirectory in a test); wins over archive_directory.
  std::shared_ptr<Directory> archive{};
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
  // automatic snapshots, a failed final sync when the store is destroyed, and the warnings of
  // insecure_modes.
  log_function log;
  // File modes of a store opened by path (Store(path, options); a Directory passed in brings
  // its own). Every file the store creates gets exactly `file_mode` and a directory it creates
  // `directory_mode`, whatever the umask: private by default, since the journal and the
  // snapshots hold the whole state (session tokens, for a session store). Both must give the
  // owner read and write (and search, for the directory) and must not let others write.
  unsigned file_mode = 0600;
  unsigned directory_mode = 0700;
  // An existing directory or file that grants group or others more than these modes: warned
  // about through `log` (the default), refused (errc::insecure_permissions), or ignored.
  modes_policy insecure_modes = modes_policy::warn;
  // Progress of the open (snapshot bytes loaded, records and journal bytes replayed), for a
  // progress bar: called on the opening thread when the open starts, at most about 10 times a
  // second, and once at the end (recovery_progress.hpp). Throwing from it cancels the open.
  progress_function on_recovery_progress;
  // When execute() returns, beyond the sync policy: local (default) or replicated(k), which
  // needs a replication server serving this store (include/prevalent/repl/replica.hpp,
  // ReplicationPrimary).
  ack_policy acks{};
};

// The POSIX directory modes a store opened by path uses (posix_modes in directory.hpp).
inline posix_modes modes_of(const store_options& o) {
  return {o.file_mode, o.directory_mode, o.insecure_modes, o.log};
}

// Throws errc::invalid_option naming the first option that is out of range.
void check_options(const journal_options& o);
void check_options(const store_options& o);
void check_options(const posix_modes& m);

}  // namespace prevalent

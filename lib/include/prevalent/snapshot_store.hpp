// Snapshot files: publishes a serialized state crash-safely, lists and verifies the ones on
// disk, and keeps only the newest few. A snapshot is tagged with the last sequence number it
// covers. Threads: publish() calls must be serialized by the caller; list() and load() may run
// at any time.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/format.hpp"

namespace prevalent {
namespace detail {
class payload_cipher;
}

struct snapshot_info {
  std::string file;
  std::uint64_t last_seq;
};

struct loaded_snapshot {
  std::string file;
  // With the state version and, for version 3 snapshots, the digest (also of an encrypted
  // one: load() unseals it).
  format::snapshot_header header;
  bytes payload;  // decompressed, unsealed: the bytes the digest is of
};

class SnapshotStore {
 public:
  // `keep` >= 1: how many snapshots publish() leaves on disk. With `cipher`, snapshots are
  // written encrypted and load() authenticates them; an unencrypted one is then refused unless
  // `accept_unencrypted`. Without, an encrypted snapshot is refused.
  SnapshotStore(std::shared_ptr<Directory> dir, unsigned keep,
                std::shared_ptr<const detail::payload_cipher> cipher = nullptr,
                bool accept_unencrypted = true);

  // R3 (docs/RELIABILITY.md): writes a temporary file, syncs it, renames it into place and syncs
  // the directory; only then removes snapshots beyond the newest `keep` (and syncs the directory
  // again). When it returns, the snapshot survives a crash. Returns the file name. `payload` is
  // encoded with `codec`; it is stored zstd-compressed when `compression` says so, then sealed
  // when the store has a cipher. The header records `state_version` and the state digest
  // of `payload` (docs/FORMAT.md, version 3).
  std::string publish(std::uint64_t last_seq, std::int64_t timestamp_ns, byte_view payload,
                      format::codec codec = format::codec::json,
                      format::compression compression = format::compression::none,
                      std::uint32_t state_version = 1);
  // The first half of publish(): the new snapshot is durable when it returns, and nothing is
  // removed. remove_old() is the second half.
  std::string install(std::uint64_t last_seq, std::int64_t timestamp_ns, byte_view payload,
                      format::codec codec = format::codec::json,
                      format::compression compression = format::compression::none,
                      std::uint32_t state_version = 1);
  // install() for a payload that is produced piece by piece: `produce` is called once with a
  // sink that takes the payload in order. Without compression or encryption the pieces go
  // straight into the temporary file (the header, whose length, CRC-32C and state digest are
  // counted on the way, is written last at offset 0 before the sync); with either, the
  // payload is gathered in memory first (zstd's frame records the content size and the seal
  // is one-shot). Same protocol (R3) and errors as install(); what `produce` throws leaves
  // only the temporary file, which the next open deletes.
  using payload_sink = std::function<void(byte_view)>;
  std::string install_streamed(std::uint64_t last_seq, std::int64_t timestamp_ns,
                               const std::function<void(const payload_sink&)>& produce,
                               format::codec codec = format::codec::json,
                               format::compression compression = format::compression::none,
                               std::uint32_t state_version = 1);
  // Removes the snapshots beyond the newest `keep`, then syncs the directory.
  // `before_remove(name)`, if given, runs before each removal (the archive's copy,
  // archive.hpp); if it throws, that snapshot stays.
  void remove_old(const std::function<void(const std::string& name)>& before_remove = {});

  // Snapshots on disk, newest first (by name only; load() verifies).
  std::vector<snapshot_info> list() const;

  // Reads and verifies one snapshot. Throws errc::corrupt_snapshot naming the file, the
  // offset and what was wrong; errc::encryption_mismatch when its encryption does not fit the
  // key given (none, another one); errc::authentication_failed when its checksums match but
  // it does not authenticate. A version 3 snapshot's payload must match its state digest.
  loaded_snapshot load(const snapshot_info& which) const;

  // Reads and verifies only the header of one snapshot (no key needed): its codec, sequence
  // number, timestamp, state version (1 for versions 1 and 2) and, when it is not encrypted
  // and of version 3, its state digest. Throws errc::corrupt_snapshot as load() does.
  format::snapshot_header read_header(const snapshot_info& which) const;

  // Deletes temporary files left by a publish() that a crash interrupted.
  void remove_leftovers();

 private:
  format::snapshot_header read_header(File& file, const std::string& path) const;

  std::shared_ptr<Directory> dir_;
  unsigned keep_;
  std::shared_ptr<const detail::payload_cipher> cipher_;
  bool accept_unencrypted_;
};

}  // namespace prevalent

// A fault-injecting disk for crash tests: a Directory that wraps another one (by default a new
// in-memory directory), passes every call through to it, and remembers per file what has been
// made durable, so that a test can cut the power at any point and see exactly what a real disk
// could have kept. Part of the separate library prevalent_testing (pkg-config
// `prevalent-testing`, CMake `prevalent::testing`), not of the production library.
//
// What is durable: a file's bytes as of its last sync(); a directory entry (create, rename,
// remove) as of the last Directory::sync(). Files already in the wrapped directory when the
// wrapper is made count as durable. After power_loss(), a file exists under a name only if that
// entry was durable, with its synced bytes, plus (optionally) a torn piece of the writes that
// followed: none of them, all of them, a prefix of them, or any subset of their 512-byte sectors
// (as the sectors of one write may persist when power fails during its fdatasync); lost sectors
// keep their synced bytes, or read as zeros past the synced end. Directory changes made since
// the last directory sync may each have reached the disk or not, in any combination (a file
// system may write metadata out of order; ALICE, OSDI 2014): with `reorder`, power_loss() keeps
// a random subset of them. A rename is one change: it moves the entry or leaves it where it was.
// The wrapped directory itself is never rolled back: power_loss() returns a new image.
//
// Faults: crash_after(n) makes the n-th mutating operation from now (append, write_at,
// truncate, file sync, create, rename, remove, directory sync) and every one after it fail with
// EIO, as a machine that lost power would; fail_nth(kind, n, errno) fails only the n-th
// operation of one kind (ENOSPC or EIO), for error-path tests; fail_when(rule) asks a predicate
// before each mutating operation and fails it with EIO when the predicate says so (a rule that
// sleeps and returns false makes a slow disk). A failed operation changes nothing. Deterministic:
// the tearing draws from the seed given to power_loss(). Thread-safe; the rule is called with no
// lock held, on the thread doing the operation.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "prevalent/directory.hpp"

namespace prevalent::testing {

class FaultInjectingDirectory final : public Directory,
                                      public std::enable_shared_from_this<FaultInjectingDirectory> {
 public:
  // `write` is append, write_at and truncate; `sync` a file's sync; `dir_sync` the directory's.
  enum class op { write, sync, create, rename, remove, dir_sync };
  // Decides whether an operation of kind `kind` on file `name` ("" for dir_sync; the new name
  // for a rename) fails with EIO.
  using fault_rule = std::function<bool(op kind, const std::string& name)>;

  // A simulated disk in memory, empty.
  FaultInjectingDirectory();
  // A disk over `inner` (in memory or on the file system), whose files count as durable. The
  // wrapper must see every change to `inner` while it lives.
  explicit FaultInjectingDirectory(std::shared_ptr<Directory> inner);

  // A simulated disk that starts out holding a copy of `contents`, all of it durable: to cut
  // the power again while a store recovers from an earlier power loss.
  static std::shared_ptr<FaultInjectingDirectory> holding(Directory& contents);

  // Makes the n-th mutating operation from now (1 = the next) and all later ones fail.
  void crash_after(std::uint64_t n);
  // Makes only the n-th operation of kind `kind` from now fail with `err`.
  void fail_nth(op kind, std::uint64_t n, int err);
  // From now on, fails each mutating operation for which `rule` returns true (an empty rule:
  // none). Replaces the previous rule.
  void fail_when(fault_rule rule);
  // Mutating operations so far, in all or of one kind (to size fault points from a dry run).
  std::uint64_t operations() const;
  std::uint64_t operations(op kind) const;

  // The directory as the disk would hold it after a power loss now: a fresh in-memory
  // Directory. With `tear`, each file keeps a random part of its unsynced writes (see above); with
  // `reorder`, a random subset of the directory changes since the last directory sync.
  std::shared_ptr<Directory> power_loss(std::uint64_t seed, bool tear = true,
                                        bool reorder = true) const;

  std::string path() const override { return inner_->path(); }
  std::vector<std::string> list() const override;
  std::unique_ptr<File> open(const std::string& name, open_mode mode) override;
  void remove(const std::string& name) override;
  void rename(const std::string& from, const std::string& to) override;
  void sync() override;
  std::unique_ptr<DirectoryLock> lock(const std::string& name) override;

 private:
  // One file as the disk knows it, whatever names it has had.
  struct inode {
    std::unique_ptr<File> reader;  // a handle on the wrapped file: follows renames, outlives
                                   // an unlink, reads what the file holds now
    std::uint64_t size = 0;        // the file's length now (a handle's size() may be its own)
    bytes synced;                  // what survives a power loss
    // Byte ranges [first, second) changed since the last sync (copied into `synced` at sync).
    std::vector<std::pair<std::uint64_t, std::uint64_t>> dirty;

    void written(std::uint64_t first, std::uint64_t last) {
      dirty.emplace_back(first, last);
      size = std::max(size, last);
    }
    bytes now() const {
      bytes data(size);
      data.resize(reader->read_at(0, data));
      return data;
    }
  };
  // A directory change not yet made durable: `removed` loses its entry, `added` gets `node`
  // (a create has no `removed`, an unlink no `added`, a rename both).
  struct dir_change {
    std::string removed, added;
    std::shared_ptr<inode> node;
  };
  friend class TrackedFile;

  // The inode behind `name`, adopted as durable if the wrapped directory has a file the
  // wrapper has not seen. Caller holds mutex_.
  std::shared_ptr<inode> node_for(const std::string& name);
  // Throws if the rule fails this operation. Caller does not hold mutex_.
  void ask_rule(op kind, const std::string& name) const;
  // Counts a mutating operation and throws if a planned fault is due. Caller holds mutex_.
  void check(op kind, const std::string& name);

  std::shared_ptr<Directory> inner_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<inode>> entries_;          // current names
  std::map<std::string, std::shared_ptr<inode>> durable_entries_;  // as of the last dir sync
  std::vector<dir_change> pending_;                                // since the last dir sync
  std::shared_ptr<const fault_rule> rule_;                         // null: no rule
  std::uint64_t operations_ = 0;
  std::uint64_t crash_at_ = 0;                           // 0: no crash planned
  std::map<op, std::pair<std::uint64_t, int>> fail_at_;  // kind -> (operation count, errno)
  std::map<op, std::uint64_t> counts_;
};

}  // namespace prevalent::testing

// The filesystem seam. Every byte prevalent reads or writes, every file it creates, renames or
// removes, and the directory lock go through `Directory` and `File`. The POSIX implementation is
// the real one; the in-memory one runs stores with no disk (transient mode, fast tests);
// prevalent::testing::FaultInjectingDirectory (library prevalent_testing) wraps either to
// inject faults and simulate power loss without the layers above noticing.
//
// Failures throw prevalent::error carrying the errno and the path. Implementations must be safe
// to call from several threads on different File objects; one File is used by one thread at a
// time, except that sync() may run concurrently with append() on the same File.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "prevalent/bytes.hpp"

namespace prevalent {

// One open file. Writes go to the end; reads are positional.
class File {
 public:
  virtual ~File() = default;
  File() = default;
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Writes all of `data` at the current end of the file. Not durable until sync().
  virtual void append(byte_view data) = 0;
  // Writes all of `data` at `offset`, growing the file if it ends before. Not durable until
  // sync(). Used to fill space that was preallocated with zeros.
  virtual void write_at(std::uint64_t offset, byte_view data) = 0;
  // Reads up to out.size() bytes at `offset`; returns how many were read (fewer only at end).
  virtual std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const = 0;
  virtual std::uint64_t size() const = 0;
  // Makes every byte written so far durable (fdatasync).
  virtual void sync() = 0;
  // Cuts the file to `length` bytes. Not durable until sync().
  virtual void truncate(std::uint64_t length) = 0;
};

// Held while a store owns its directory; releasing it (destruction) unlocks.
class DirectoryLock {
 public:
  virtual ~DirectoryLock() = default;
};

// A flat directory of named files.
class Directory {
 public:
  enum class open_mode {
    read,        // existing file, read only
    write,       // existing file, read and append
    create_new,  // a new file, read and append; fails if the name exists
  };

  virtual ~Directory() = default;
  Directory() = default;
  Directory(const Directory&) = delete;
  Directory& operator=(const Directory&) = delete;

  // The directory's path, for messages ("<memory>" for the in-memory one).
  virtual std::string path() const = 0;
  // Names of the regular files in the directory, in no particular order.
  virtual std::vector<std::string> list() const = 0;
  virtual std::unique_ptr<File> open(const std::string& name, open_mode mode) = 0;
  virtual void remove(const std::string& name) = 0;
  // Atomically replaces `to` with `from`. Not durable until sync().
  virtual void rename(const std::string& from, const std::string& to) = 0;
  // Makes created, renamed and removed entries durable (fsync of the directory).
  virtual void sync() = 0;
  // Takes the exclusive lock `name` (created if missing). Throws errc::directory_in_use when
  // another holder, in this process or another, has it.
  virtual std::unique_ptr<DirectoryLock> lock(const std::string& name) = 0;

  // The full path of `name`, for messages.
  std::string describe(const std::string& name) const { return path() + "/" + name; }
};

// Reads a whole file into memory.
bytes read_all(const File& file);

// What opening a directory does when the directory or a file in it grants group or others more
// than the modes it is meant to have (say a 0755 directory or a 0644 journal segment).
enum class modes_policy {
  warn,    // log one line per offending path, naming it and its mode, and go on
  refuse,  // fail the open with errc::insecure_permissions naming the path and its mode
  ignore,  // say nothing
};

// Permission bits of what the POSIX directory creates, and the check of what it finds.
struct posix_modes {
  // Mode of every file created (journal segments, snapshots and their temp files, LOCK), set
  // exactly with fchmod whatever the umask or a default ACL would have left.
  unsigned file = 0600;
  // Mode of the store directory itself when it is created (missing parents get the usual
  // 0777 less the umask). An existing directory keeps its mode.
  unsigned directory = 0700;
  // What an open does about an existing directory or file more open than the modes above.
  modes_policy insecure = modes_policy::warn;
  // Receives the warnings of modes_policy::warn (none: they are dropped).
  std::function<void(const std::string&)> log;
};

// The real filesystem. Creates `path` (and parents) when missing, the last with
// `modes.directory`; then checks the modes of the directory and of its files (see
// posix_modes). Throws errc::invalid_option for modes that posix_modes cannot take (see
// check_options in options.hpp).
std::shared_ptr<Directory> open_posix_directory(const std::filesystem::path& path,
                                                posix_modes modes = {});

// A directory that lives only in memory. Stores opened on the same object share its files.
std::shared_ptr<Directory> make_memory_directory();

}  // namespace prevalent

// The archive of a store that keeps its history (store_options::archive_directory): journal
// segments and snapshots that retention drops are copied here, durably, before the store
// deletes them, under the same names, so that the archive reads like a store directory and time
// travel (time_travel.hpp) can reach back into it. The store never deletes anything in it.
//
// Crash safety: keep() copies into "<name>.tmp", syncs it, renames it to <name> and syncs the
// archive directory; only then may the caller remove the original (and sync its directory). A
// crash before the rename leaves a .tmp file (removed by remove_leftovers() at the next open, and
// overwritten by the next keep() of the same name); a crash between the rename and the removal
// leaves the file in both places, identical (dropped files are never written again): the next
// drop archives it again, and time travel reads the store directory's copy.
//
// Threads: keep() calls must be serialized by the caller (the store's publish lock does).
#pragma once

#include <memory>
#include <string>

#include "prevalent/directory.hpp"

namespace prevalent {

class Archive {
 public:
  explicit Archive(std::shared_ptr<Directory> dir) : dir_(std::move(dir)) {}

  // Copies file `name` of `from` into the archive as described above; when it returns, the
  // copy survives a crash.
  void keep(Directory& from, const std::string& name);
  // Deletes the .tmp files an interrupted keep() left.
  void remove_leftovers();

  Directory& directory() { return *dir_; }

 private:
  std::shared_ptr<Directory> dir_;
};

}  // namespace prevalent

// The store directory as the tool sees it, the key file, the lock probe and the error report.
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "common.hpp"
#include "prevalent/encryption_key.hpp"
#include "prevalent/error.hpp"

namespace prevalent::tool {

int report(const std::exception& e) {
  int code = exit_usage;
  std::string hint;
  if (auto* t = dynamic_cast<const tool_error*>(&e)) {
    code = t->code;
  } else if (auto* p = dynamic_cast<const prevalent::error*>(&e)) {
    if (p->code() == errc::directory_in_use) {
      code = exit_in_use;
    } else if (p->code() == errc::encryption_mismatch) {
      hint = " (give the store's key with --key-file FILE)";
    } else if (p->code() == errc::corrupt_record || p->code() == errc::corrupt_segment ||
               p->code() == errc::corrupt_snapshot || p->code() == errc::sequence_gap ||
               p->code() == errc::no_usable_snapshot || p->code() == errc::authentication_failed ||
               p->code() == errc::bad_command_payload) {
      code = exit_damaged;
    }
  }
  (void)std::fprintf(stderr, "prevalent: %s%s\n", e.what(), hint.c_str());
  return code;
}

std::shared_ptr<const detail::payload_cipher> read_key_file(const std::string& key_file) {
  if (key_file.empty()) return nullptr;
  std::ifstream in(key_file);
  if (!in) throw tool_error(exit_usage, "cannot read the key file " + key_file);
  std::string hex;
  in >> hex;
  try {
    return std::make_shared<const detail::payload_cipher>(encryption_key::from_hex(hex));
  } catch (const std::exception& e) {
    throw tool_error(exit_usage, "key file " + key_file + ": " + e.what());
  }
}

StoreDir::StoreDir(const std::filesystem::path& path, const std::string& key_file) : path_(path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status))
    throw tool_error(exit_not_a_store, path.string() + ": no such directory");
  if (!std::filesystem::is_directory(status))
    throw tool_error(exit_not_a_store, path.string() + ": not a directory");
  // Never created or chmod-ed here: the directory exists, and modes are the store's business.
  dir_ = open_posix_directory(path, posix_modes{0600, 0700, modes_policy::ignore, {}});
  for (auto& name : dir_->list()) {
    std::uint64_t bytes = 0;
    try {
      bytes = dir_->open(name, Directory::open_mode::read)->size();
    } catch (const std::exception&) {
      // unreadable: listed with size 0; reading it later names the error
    }
    if (auto seq = format::parse_segment_file_name(name)) {
      segments_.push_back({name, *seq, bytes});
    } else if (auto last = format::parse_snapshot_file_name(name)) {
      snapshots_.push_back({name, *last, bytes});
    } else if (name.size() > 4 && name.ends_with(format::temp_suffix)) {
      temp_files_.push_back(name);
    } else if (name != format::lock_file_name) {
      other_files_.push_back(name);
    }
  }
  auto by_seq = [](const store_file& a, const store_file& b) { return a.seq < b.seq; };
  std::sort(segments_.begin(), segments_.end(), by_seq);
  std::sort(snapshots_.begin(), snapshots_.end(), by_seq);
  std::sort(other_files_.begin(), other_files_.end());
  if (segments_.empty() && snapshots_.empty()) {
    std::string what =
        path.string() + ": not a prevalent store (no journal-*.log or snapshot-*.snap";
    if (!other_files_.empty()) {
      what += "; it holds " + plural(other_files_.size(), "other file") + ", e.g. " +
              other_files_.front();
    }
    throw tool_error(exit_not_a_store, what + ")");
  }
  cipher_ = read_key_file(key_file);
}

std::optional<format::segment_header> StoreDir::segment_header(const store_file& s,
                                                               std::string& why) const {
  bytes head(format::max_segment_header_size);
  head.resize(dir_->open(s.name, Directory::open_mode::read)->read_at(0, head));
  return format::decode_segment_header(head, why);
}

std::optional<format::snapshot_header> StoreDir::snapshot_header(const store_file& s,
                                                                 std::string& why) const {
  bytes head(format::encrypted_snapshot_header_size);
  head.resize(dir_->open(s.name, Directory::open_mode::read)->read_at(0, head));
  return format::decode_snapshot_header(head, why);
}

loaded_snapshot StoreDir::load_snapshot(const store_file& s) const {
  SnapshotStore snapshots(dir_, 1, cipher_, true);
  return snapshots.load({s.name, s.seq});
}

lock_holder probe_lock(const std::filesystem::path& dir) {
  lock_holder out;
  struct stat st {};
  if (::stat((dir / format::lock_file_name).c_str(), &st) != 0) return out;  // never opened
  // /proc/locks: "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (device in hex). Reading it
  // takes no lock, so a store opening meanwhile never sees the tool as a holder.
  std::ifstream locks("/proc/locks");
  std::string line;
  while (std::getline(locks, line)) {
    std::istringstream in(line);
    std::string id, kind, mode, access, pid, where;
    if (!(in >> id >> kind)) continue;
    if (kind == "->") in >> kind;  // a waiter
    if (!(in >> mode >> access >> pid >> where) || kind != "FLOCK") continue;
    const auto colon = where.rfind(':');
    if (colon == std::string::npos) continue;
    unsigned dev_major = 0, dev_minor = 0;
    if (std::sscanf(where.c_str(), "%x:%x", &dev_major, &dev_minor) != 2) continue;
    if (std::stoull(where.substr(colon + 1)) != st.st_ino || dev_major != major(st.st_dev) ||
        dev_minor != minor(st.st_dev))
      continue;
    out.held = true;
    out.pid = std::stol(pid);
    return out;
  }
  return out;
}

}  // namespace prevalent::tool

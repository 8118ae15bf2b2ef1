#include "prevalent/fault_injecting_directory.hpp"

#include <algorithm>
#include <cerrno>
#include <functional>
#include <random>

#include "prevalent/error.hpp"

namespace prevalent {

class simulated_file final : public File {
 public:
  simulated_file(std::shared_ptr<FaultInjectingDirectory> dir,
                 std::shared_ptr<FaultInjectingDirectory::inode> node, std::string name)
      : dir_(std::move(dir)), node_(std::move(node)), name_(std::move(name)) {}

  void append(byte_view data) override {
    std::lock_guard g(dir_->mutex_);
    dir_->check(FaultInjectingDirectory::op::write, name_);
    node_->data.insert(node_->data.end(), data.begin(), data.end());
  }
  void write_at(std::uint64_t offset, byte_view data) override {
    std::lock_guard g(dir_->mutex_);
    dir_->check(FaultInjectingDirectory::op::write, name_);
    if (node_->data.size() < offset + data.size()) node_->data.resize(offset + data.size());
    std::copy(data.begin(), data.end(), node_->data.begin() + static_cast<std::ptrdiff_t>(offset));
  }
  std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const override {
    std::lock_guard g(dir_->mutex_);
    const bytes& d = node_->data;
    if (offset >= d.size()) return 0;
    const std::size_t n = std::min<std::uint64_t>(out.size(), d.size() - offset);
    std::copy_n(d.begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }
  std::uint64_t size() const override {
    std::lock_guard g(dir_->mutex_);
    return node_->data.size();
  }
  void sync() override {
    std::lock_guard g(dir_->mutex_);
    dir_->check(FaultInjectingDirectory::op::sync, name_);
    node_->synced = node_->data;
  }
  void truncate(std::uint64_t length) override {
    std::lock_guard g(dir_->mutex_);
    dir_->check(FaultInjectingDirectory::op::write, name_);
    node_->data.resize(length);
  }

 private:
  std::shared_ptr<FaultInjectingDirectory> dir_;
  std::shared_ptr<FaultInjectingDirectory::inode> node_;
  std::string name_;
};

namespace {
class simulated_lock final : public DirectoryLock {
 public:
  explicit simulated_lock(std::function<void()> release) : release_(std::move(release)) {}
  ~simulated_lock() override { release_(); }

 private:
  std::function<void()> release_;
};
}  // namespace

std::shared_ptr<FaultInjectingDirectory> FaultInjectingDirectory::holding(Directory& contents) {
  auto disk = std::make_shared<FaultInjectingDirectory>();
  for (const auto& name : contents.list()) {
    auto node = std::make_shared<inode>();
    node->data = read_all(*contents.open(name, open_mode::read));
    node->synced = node->data;
    disk->entries_[name] = node;
  }
  disk->durable_entries_ = disk->entries_;
  return disk;
}

void FaultInjectingDirectory::crash_after(std::uint64_t n) {
  std::lock_guard g(mutex_);
  crash_at_ = operations_ + n;
}

void FaultInjectingDirectory::fail_nth(op kind, std::uint64_t n, int err) {
  std::lock_guard g(mutex_);
  fail_at_[kind] = {counts_[kind] + n, err};
}

std::uint64_t FaultInjectingDirectory::operations() const {
  std::lock_guard g(mutex_);
  return operations_;
}

std::uint64_t FaultInjectingDirectory::operations(op kind) const {
  std::lock_guard g(mutex_);
  auto it = counts_.find(kind);
  return it == counts_.end() ? 0 : it->second;
}

void FaultInjectingDirectory::check(op kind, const std::string& name) {
  ++operations_;
  const std::uint64_t count = ++counts_[kind];
  if (crash_at_ != 0 && operations_ >= crash_at_) throw_os_error(EIO, "simulated power cut", name);
  auto it = fail_at_.find(kind);
  if (it != fail_at_.end() && it->second.first == count) {
    const int err = it->second.second;
    fail_at_.erase(it);
    throw_os_error(err, "injected fault", name);
  }
}

std::vector<std::string> FaultInjectingDirectory::list() const {
  std::lock_guard g(mutex_);
  std::vector<std::string> out;
  for (auto& [name, _] : entries_) out.push_back(name);
  return out;
}

std::unique_ptr<File> FaultInjectingDirectory::open(const std::string& name, open_mode mode) {
  std::lock_guard g(mutex_);
  auto it = entries_.find(name);
  if (mode == open_mode::create_new) {
    if (it != entries_.end()) throw_os_error(EEXIST, "open", describe(name));
    check(op::create, name);
    it = entries_.emplace(name, std::make_shared<inode>()).first;
    pending_.push_back({"", name, it->second});
  } else if (it == entries_.end()) {
    throw_os_error(ENOENT, "open", describe(name));
  }
  return std::make_unique<simulated_file>(shared_from_this(), it->second, name);
}

void FaultInjectingDirectory::remove(const std::string& name) {
  std::lock_guard g(mutex_);
  if (!entries_.count(name)) throw_os_error(ENOENT, "unlink", describe(name));
  check(op::remove, name);
  entries_.erase(name);
  pending_.push_back({name, "", nullptr});
}

void FaultInjectingDirectory::rename(const std::string& from, const std::string& to) {
  std::lock_guard g(mutex_);
  auto it = entries_.find(from);
  if (it == entries_.end()) throw_os_error(ENOENT, "rename", describe(from));
  check(op::rename, to);
  auto node = it->second;
  entries_.erase(it);
  pending_.push_back({from, to, node});
  entries_[to] = std::move(node);
}

void FaultInjectingDirectory::sync() {
  std::lock_guard g(mutex_);
  check(op::dir_sync, "");
  durable_entries_ = entries_;
  pending_.clear();
}

std::unique_ptr<DirectoryLock> FaultInjectingDirectory::lock(const std::string& name) {
  std::lock_guard g(mutex_);
  if (!locks_.insert(name).second)
    throw error(errc::directory_in_use, "store directory " + path() + " is in use");
  auto self = shared_from_this();
  return std::make_unique<simulated_lock>([self, name] {
    std::lock_guard g2(self->mutex_);
    self->locks_.erase(name);
  });
}

namespace {

// What a disk may hold of a file whose writes since the last sync were cut short by a power
// loss: nothing of them, all of them, a prefix of them (written in order), or any subset of
// their 512-byte sectors (the sectors of one write reach the platter in any order during its
// fdatasync). A sector that did not persist keeps its synced bytes, or reads as zeros past the
// synced end; the file's length is the synced one or the new one.
bytes torn_image(const bytes& synced, const bytes& now, std::mt19937_64& rng) {
  std::size_t first_diff = 0;
  while (first_diff < now.size() && first_diff < synced.size() &&
         now[first_diff] == synced[first_diff])
    ++first_diff;
  if (first_diff == now.size() && now.size() == synced.size()) return synced;  // all synced
  constexpr std::size_t sector = 512;
  switch (rng() % 4) {
    case 0: return synced;
    case 1: return now;
    case 2: {  // a prefix of the unsynced bytes, in order
      bytes kept = synced;
      const std::size_t cut = first_diff + rng() % (now.size() - first_diff + 1);
      if (kept.size() < cut) kept.resize(cut);
      std::copy(now.begin() + static_cast<std::ptrdiff_t>(first_diff),
                now.begin() + static_cast<std::ptrdiff_t>(cut),
                kept.begin() + static_cast<std::ptrdiff_t>(first_diff));
      return kept;
    }
    default: {  // any subset of sectors
      bytes kept = synced;
      kept.resize(rng() % 2 == 0 ? now.size() : synced.size(), 0);
      for (std::size_t at = first_diff / sector * sector; at < kept.size(); at += sector) {
        if (rng() % 2 == 0) continue;
        const std::size_t end = std::min({at + sector, kept.size(), now.size()});
        if (at < end)
          std::copy(now.begin() + static_cast<std::ptrdiff_t>(at),
                    now.begin() + static_cast<std::ptrdiff_t>(end),
                    kept.begin() + static_cast<std::ptrdiff_t>(at));
      }
      return kept;
    }
  }
}

}  // namespace

std::shared_ptr<Directory> FaultInjectingDirectory::power_loss(std::uint64_t seed, bool tear,
                                                               bool reorder) const {
  std::lock_guard g(mutex_);
  std::mt19937_64 rng(seed);
  auto entries = durable_entries_;
  if (reorder)
    for (const auto& change : pending_) {
      if (rng() % 2 == 0) continue;  // this change never reached the disk
      if (!change.removed.empty()) entries.erase(change.removed);
      if (!change.added.empty()) entries[change.added] = change.node;
    }
  auto image = make_memory_directory();
  for (const auto& [name, node] : entries) {
    bytes kept = tear ? torn_image(node->synced, node->data, rng) : node->synced;
    image->open(name, open_mode::create_new)->append(kept);
  }
  return image;
}

}  // namespace prevalent

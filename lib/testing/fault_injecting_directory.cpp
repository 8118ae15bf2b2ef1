#include "prevalent/testing/fault_injecting_directory.hpp"

#include <algorithm>
#include <cerrno>
#include <random>

#include "prevalent/error.hpp"

namespace prevalent::testing {

// A file of the wrapped directory, opened through the wrapper: checks for faults, passes the
// call through, and notes which bytes changed since the file's last sync.
class TrackedFile final : public File {
 public:
  using op = FaultInjectingDirectory::op;
  TrackedFile(std::shared_ptr<FaultInjectingDirectory> dir,
              std::shared_ptr<FaultInjectingDirectory::inode> node, std::unique_ptr<File> inner,
              std::string name)
      : dir_(std::move(dir)),
        node_(std::move(node)),
        inner_(std::move(inner)),
        name_(std::move(name)) {}

  void append(byte_view data) override {
    dir_->ask_rule(op::write, name_);
    std::lock_guard g(dir_->mutex_);
    dir_->check(op::write, name_);
    const std::uint64_t end = inner_->size();
    inner_->append(data);
    node_->written(end, end + data.size());
  }
  void write_at(std::uint64_t offset, byte_view data) override {
    dir_->ask_rule(op::write, name_);
    std::lock_guard g(dir_->mutex_);
    dir_->check(op::write, name_);
    inner_->write_at(offset, data);
    node_->written(offset, offset + data.size());
  }
  std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const override {
    return inner_->read_at(offset, out);
  }
  std::uint64_t size() const override { return inner_->size(); }
  void sync() override {
    dir_->ask_rule(op::sync, name_);
    std::lock_guard g(dir_->mutex_);
    dir_->check(op::sync, name_);
    inner_->sync();
    // What the file holds now is durable: copy the changed ranges into the synced image.
    bytes& synced = node_->synced;
    synced.resize(node_->size);
    for (auto [first, last] : node_->dirty) {
      last = std::min<std::uint64_t>(last, synced.size());
      if (first >= last) continue;
      node_->reader->read_at(first, std::span(synced).subspan(first, last - first));
    }
    node_->dirty.clear();
  }
  void truncate(std::uint64_t length) override {
    dir_->ask_rule(op::write, name_);
    std::lock_guard g(dir_->mutex_);
    dir_->check(op::write, name_);
    inner_->truncate(length);
    // Bytes cut off, or the zeros a longer length adds.
    node_->dirty.emplace_back(std::min(node_->size, length), std::max(node_->size, length));
    node_->size = length;
  }

 private:
  std::shared_ptr<FaultInjectingDirectory> dir_;
  std::shared_ptr<FaultInjectingDirectory::inode> node_;
  std::unique_ptr<File> inner_;
  std::string name_;
};

FaultInjectingDirectory::FaultInjectingDirectory()
    : FaultInjectingDirectory(make_memory_directory()) {}

FaultInjectingDirectory::FaultInjectingDirectory(std::shared_ptr<Directory> inner)
    : inner_(std::move(inner)) {
  std::lock_guard g(mutex_);
  for (const auto& name : inner_->list()) node_for(name);
}

std::shared_ptr<FaultInjectingDirectory> FaultInjectingDirectory::holding(Directory& contents) {
  auto copy = make_memory_directory();
  for (const auto& name : contents.list())
    copy->open(name, open_mode::create_new)
        ->append(read_all(*contents.open(name, open_mode::read)));
  return std::make_shared<FaultInjectingDirectory>(std::move(copy));
}

void FaultInjectingDirectory::crash_after(std::uint64_t n) {
  std::lock_guard g(mutex_);
  crash_at_ = operations_ + n;
}

void FaultInjectingDirectory::fail_nth(op kind, std::uint64_t n, int err) {
  std::lock_guard g(mutex_);
  fail_at_[kind] = {counts_[kind] + n, err};
}

void FaultInjectingDirectory::fail_when(fault_rule rule) {
  std::lock_guard g(mutex_);
  rule_ = rule ? std::make_shared<const fault_rule>(std::move(rule)) : nullptr;
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

void FaultInjectingDirectory::ask_rule(op kind, const std::string& name) const {
  std::shared_ptr<const fault_rule> rule;
  {
    std::lock_guard g(mutex_);
    rule = rule_;
  }
  if (rule && (*rule)(kind, name)) throw_os_error(EIO, "injected fault", name);
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

std::shared_ptr<FaultInjectingDirectory::inode> FaultInjectingDirectory::node_for(
    const std::string& name) {
  auto it = entries_.find(name);
  if (it != entries_.end()) return it->second;
  std::unique_ptr<File> reader;
  try {
    reader = inner_->open(name, open_mode::read);
  } catch (const error&) {
    return nullptr;  // not in the wrapped directory either
  }
  auto node = std::make_shared<inode>();
  node->synced = read_all(*reader);
  node->size = node->synced.size();
  node->reader = std::move(reader);
  entries_[name] = node;
  durable_entries_[name] = node;
  return node;
}

std::vector<std::string> FaultInjectingDirectory::list() const { return inner_->list(); }

std::unique_ptr<File> FaultInjectingDirectory::open(const std::string& name, open_mode mode) {
  if (mode == open_mode::create_new) ask_rule(op::create, name);
  std::lock_guard g(mutex_);
  if (mode != open_mode::create_new) {
    auto file = inner_->open(name, mode);
    auto node = node_for(name);
    if (!node) throw_os_error(ENOENT, "open", describe(name));
    return std::make_unique<TrackedFile>(shared_from_this(), std::move(node), std::move(file),
                                         name);
  }
  if (node_for(name)) throw_os_error(EEXIST, "open", describe(name));
  check(op::create, name);
  auto file = inner_->open(name, open_mode::create_new);
  auto node = std::make_shared<inode>();
  node->reader = inner_->open(name, open_mode::read);
  entries_[name] = node;
  pending_.push_back({"", name, node});
  return std::make_unique<TrackedFile>(shared_from_this(), std::move(node), std::move(file), name);
}

void FaultInjectingDirectory::remove(const std::string& name) {
  ask_rule(op::remove, name);
  std::lock_guard g(mutex_);
  if (!node_for(name)) throw_os_error(ENOENT, "unlink", describe(name));
  check(op::remove, name);
  inner_->remove(name);
  entries_.erase(name);
  pending_.push_back({name, "", nullptr});
}

void FaultInjectingDirectory::rename(const std::string& from, const std::string& to) {
  ask_rule(op::rename, to);
  std::lock_guard g(mutex_);
  auto node = node_for(from);
  if (!node) throw_os_error(ENOENT, "rename", describe(from));
  check(op::rename, to);
  inner_->rename(from, to);
  entries_.erase(from);
  pending_.push_back({from, to, node});
  entries_[to] = std::move(node);
}

void FaultInjectingDirectory::sync() {
  ask_rule(op::dir_sync, "");
  std::lock_guard g(mutex_);
  check(op::dir_sync, "");
  inner_->sync();
  durable_entries_ = entries_;
  pending_.clear();
}

std::unique_ptr<DirectoryLock> FaultInjectingDirectory::lock(const std::string& name) {
  return inner_->lock(name);
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
    bytes kept = tear ? torn_image(node->synced, node->now(), rng) : node->synced;
    image->open(name, open_mode::create_new)->append(kept);
  }
  return image;
}

}  // namespace prevalent::testing

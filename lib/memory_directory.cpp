// A Directory that keeps its files in memory: for transient stores and fast tests. Every
// operation is immediately "durable"; there is no power to lose.
#include <algorithm>
#include <map>
#include <mutex>
#include <set>

#include "prevalent/directory.hpp"
#include "prevalent/error.hpp"

namespace prevalent {
namespace {

struct shared_bytes {
  std::mutex mutex;
  bytes data;
};

class MemoryFile final : public File {
 public:
  explicit MemoryFile(std::shared_ptr<shared_bytes> content) : content_(std::move(content)) {}

  void append(byte_view data) override {
    std::lock_guard g(content_->mutex);
    content_->data.insert(content_->data.end(), data.begin(), data.end());
  }

  void write_at(std::uint64_t offset, byte_view data) override {
    std::lock_guard g(content_->mutex);
    bytes& d = content_->data;
    if (d.size() < offset + data.size()) d.resize(offset + data.size());
    std::copy(data.begin(), data.end(), d.begin() + static_cast<std::ptrdiff_t>(offset));
  }

  std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const override {
    std::lock_guard g(content_->mutex);
    const bytes& d = content_->data;
    if (offset >= d.size()) return 0;
    std::size_t n = std::min<std::uint64_t>(out.size(), d.size() - offset);
    std::copy_n(d.begin() + static_cast<std::ptrdiff_t>(offset), n, out.begin());
    return n;
  }

  std::uint64_t size() const override {
    std::lock_guard g(content_->mutex);
    return content_->data.size();
  }

  void sync() override {}

  void truncate(std::uint64_t length) override {
    std::lock_guard g(content_->mutex);
    content_->data.resize(length);
  }

 private:
  std::shared_ptr<shared_bytes> content_;
};

class MemoryDirectory final : public Directory,
                              public std::enable_shared_from_this<MemoryDirectory> {
 public:
  std::string path() const override { return "<memory>"; }

  std::vector<std::string> list() const override {
    std::lock_guard g(mutex_);
    std::vector<std::string> names;
    for (const auto& [name, _] : files_) names.push_back(name);
    return names;
  }

  std::unique_ptr<File> open(const std::string& name, open_mode mode) override {
    std::lock_guard g(mutex_);
    auto it = files_.find(name);
    if (mode == open_mode::create_new) {
      if (it != files_.end()) throw_os_error(EEXIST, "open", describe(name));
      it = files_.emplace(name, std::make_shared<shared_bytes>()).first;
    } else if (it == files_.end()) {
      throw_os_error(ENOENT, "open", describe(name));
    }
    return std::make_unique<MemoryFile>(it->second);
  }

  void remove(const std::string& name) override {
    std::lock_guard g(mutex_);
    if (files_.erase(name) == 0) throw_os_error(ENOENT, "unlink", describe(name));
  }

  void rename(const std::string& from, const std::string& to) override {
    std::lock_guard g(mutex_);
    auto it = files_.find(from);
    if (it == files_.end()) throw_os_error(ENOENT, "rename", describe(from));
    auto content = it->second;
    files_.erase(it);
    files_[to] = std::move(content);
  }

  void sync() override {}

  std::unique_ptr<DirectoryLock> lock(const std::string& name) override {
    std::lock_guard g(mutex_);
    if (!locks_.insert(name).second)
      throw error(errc::directory_in_use, "store directory " + path() +
                                              " is in use: another store holds " + describe(name));
    return std::make_unique<MemoryLock>(shared_from_this(), name);
  }

 private:
  class MemoryLock final : public DirectoryLock {
   public:
    MemoryLock(std::shared_ptr<MemoryDirectory> dir, std::string name)
        : dir_(std::move(dir)), name_(std::move(name)) {}
    ~MemoryLock() override {
      std::lock_guard g(dir_->mutex_);
      dir_->locks_.erase(name_);
    }

   private:
    std::shared_ptr<MemoryDirectory> dir_;
    std::string name_;
  };

  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<shared_bytes>> files_;
  std::set<std::string> locks_;
};

}  // namespace

std::shared_ptr<Directory> make_memory_directory() { return std::make_shared<MemoryDirectory>(); }

}  // namespace prevalent

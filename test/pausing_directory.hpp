// A Directory wrapper for tests that stops a chosen thread at a chosen open() until the test
// lets it go, so that two threads' file accesses can be interleaved exactly (a rebuild reading
// a snapshot while a publish deletes it, for example).
//
// A thread arms a pause point for itself under a label; its next open() of a file whose name
// starts with the given prefix opens the file and then waits, holding the open handle (as a
// process that has opened a file and not read it yet: an unlink does not take the data away
// from it, on POSIX and in the in-memory directory alike). The test waits for the pause, does
// what it wants meanwhile, and releases the label. A label released before its thread got
// there never pauses. Everything else is passed through to the wrapped directory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <prevalent/directory.hpp>

namespace test {

class PausingDirectory final : public prevalent::Directory {
 public:
  explicit PausingDirectory(std::shared_ptr<prevalent::Directory> inner)
      : inner_(std::move(inner)) {}

  // The calling thread's next open() of a name starting with `prefix` pauses under `label`.
  void arm(const std::string& label, const std::string& prefix) {
    std::lock_guard g(mutex_);
    changed_.notify_all();
    points_[label] = point{std::this_thread::get_id(), prefix, false, false, {}};
  }

  // Waits until the thread armed under `label` is paused; returns the name of the file it
  // paused at, or nullopt if it did not get there within `limit`.
  std::optional<std::string> wait_until_paused(
      const std::string& label, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    std::unique_lock l(mutex_);
    auto paused = [&] {
      auto it = points_.find(label);
      return it != points_.end() && it->second.paused;
    };
    if (!changed_.wait_for(l, limit, paused)) return std::nullopt;
    return points_.at(label).at;
  }

  // Lets the thread paused (or yet to pause) under `label` go on.
  void release(const std::string& label) {
    std::lock_guard g(mutex_);
    points_.at(label).released = true;
    changed_.notify_all();
  }

  std::string path() const override { return inner_->path(); }
  std::vector<std::string> list() const override { return inner_->list(); }
  std::unique_ptr<prevalent::File> open(const std::string& name, open_mode mode) override {
    auto file = inner_->open(name, mode);
    std::unique_lock l(mutex_);
    for (auto& [label, p] : points_) {
      if (p.thread != std::this_thread::get_id() || p.paused || p.released ||
          name.rfind(p.prefix, 0) != 0)
        continue;
      p.paused = true;
      p.at = name;
      changed_.notify_all();
      changed_.wait(l, [&] { return p.released; });
      break;
    }
    return file;
  }
  void remove(const std::string& name) override { inner_->remove(name); }
  void rename(const std::string& from, const std::string& to) override { inner_->rename(from, to); }
  void sync() override { inner_->sync(); }
  std::unique_ptr<prevalent::DirectoryLock> lock(const std::string& name) override {
    return inner_->lock(name);
  }

 private:
  struct point {
    std::thread::id thread;
    std::string prefix;
    bool paused = false;
    bool released = false;
    std::string at;
  };
  std::shared_ptr<prevalent::Directory> inner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, point> points_;
};

}  // namespace test

// A Directory wrapper for concurrency tests that perturbs the scheduler: before each open,
// list, read, append, write_at, truncate, file sync, rename, remove and directory sync it may
// yield the thread or sleep for 0-200 us, so that rare interleavings between the journal's
// committer, the snapshot thread, rebuilds and snapshot publishes happen often. Everything is
// passed through to the wrapped directory unchanged; no operation is made to fail.
//
// It can also freeze the directory: copy_to_memory() copies every file while no operation through
// the wrapper can run, so that a copy taken while a background snapshot is being published is the
// directory as it was between two operations (what a crash at that point would leave, all of
// it synced). The store keeps working afterwards.
//
// The jitter draws from a per-thread generator seeded from the seed given to the constructor
// and the order in which threads first touch the wrapper; thread scheduling still varies from
// run to run, so a seed makes a failure likely to recur, not certain.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include <prevalent/directory.hpp>
#include <prevalent/error.hpp>
#include <prevalent/format.hpp>

namespace test {

class jittery_directory final : public prevalent::Directory {
 public:
  // `percent`: how often an operation is delayed (0 = never: only the freezing for copy_to).
  jittery_directory(std::shared_ptr<prevalent::Directory> inner, std::uint64_t seed,
                    unsigned percent)
      : inner_(std::move(inner)), seed_(seed), percent_(percent) {}

  // Copies every file (except the lock) into a fresh in-memory directory while no operation
  // through this wrapper runs.
  std::shared_ptr<prevalent::Directory> copy_to_memory() const {
    std::unique_lock frozen(gate_);
    auto out = prevalent::make_memory_directory();
    for (const auto& name : inner_->list()) {
      if (name == prevalent::format::lock_file_name) continue;
      auto data = prevalent::read_all(*inner_->open(name, open_mode::read));
      auto copy = out->open(name, open_mode::create_new);
      copy->append(data);
      copy->sync();
    }
    out->sync();
    return out;
  }

  std::uint64_t delays() const { return delays_.load(); }

  std::string path() const override { return inner_->path(); }
  std::vector<std::string> list() const override {
    jitter();
    std::shared_lock g(gate_);
    return inner_->list();
  }
  std::unique_ptr<prevalent::File> open(const std::string& name, open_mode mode) override {
    jitter();
    std::shared_lock g(gate_);
    return std::make_unique<file>(*this, inner_->open(name, mode));
  }
  void remove(const std::string& name) override {
    jitter();
    std::shared_lock g(gate_);
    inner_->remove(name);
  }
  void rename(const std::string& from, const std::string& to) override {
    jitter();
    std::shared_lock g(gate_);
    inner_->rename(from, to);
  }
  void sync() override {
    jitter();
    std::shared_lock g(gate_);
    inner_->sync();
  }
  std::unique_ptr<prevalent::DirectoryLock> lock(const std::string& name) override {
    return inner_->lock(name);
  }

 private:
  class file final : public prevalent::File {
   public:
    file(const jittery_directory& dir, std::unique_ptr<prevalent::File> inner)
        : dir_(dir), inner_(std::move(inner)) {}
    void append(prevalent::byte_view data) override {
      dir_.jitter();
      std::shared_lock g(dir_.gate_);
      inner_->append(data);
    }
    void write_at(std::uint64_t offset, prevalent::byte_view data) override {
      dir_.jitter();
      std::shared_lock g(dir_.gate_);
      inner_->write_at(offset, data);
    }
    std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const override {
      dir_.jitter();
      std::shared_lock g(dir_.gate_);
      return inner_->read_at(offset, out);
    }
    std::uint64_t size() const override {
      std::shared_lock g(dir_.gate_);
      return inner_->size();
    }
    void sync() override {
      dir_.jitter();
      std::shared_lock g(dir_.gate_);
      inner_->sync();
    }
    void truncate(std::uint64_t length) override {
      dir_.jitter();
      std::shared_lock g(dir_.gate_);
      inner_->truncate(length);
    }

   private:
    const jittery_directory& dir_;
    std::unique_ptr<prevalent::File> inner_;
  };

  static std::uint64_t next_id() {
    static std::atomic<std::uint64_t> ids{0};
    return ++ids;
  }

  void jitter() const {
    if (percent_ == 0) return;
    thread_local std::mt19937_64 rng;
    thread_local std::uint64_t seeded_for = 0;
    if (seeded_for != id_) {
      rng.seed(seed_ * 1000003 + threads_.fetch_add(1));
      seeded_for = id_;
    }
    if (rng() % 100 >= percent_) return;
    ++delays_;
    if (rng() % 2 == 0)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(rng() % 201));
  }

  std::shared_ptr<prevalent::Directory> inner_;
  const std::uint64_t seed_;
  const unsigned percent_;
  const std::uint64_t id_ = next_id();  // tells wrappers apart for the per-thread generators
  mutable std::shared_mutex gate_;  // shared by every operation; copy_to_memory() takes it alone
  mutable std::atomic<std::uint32_t> threads_{0};
  mutable std::atomic<std::uint64_t> delays_{0};
};

}  // namespace test

// A Directory wrapper for tests that fails chosen operations with EIO: a predicate decides,
// per operation and file name, whether the call fails. (The full fault-injecting filesystem,
// with power-loss simulation, is a later step; this is the minimal double the I/O error tests
// need.)
#pragma once

#include <cerrno>
#include <functional>
#include <memory>

#include <prevalent/directory.hpp>
#include <prevalent/error.hpp>

namespace test {

enum class op { append, sync, rename, create, dir_sync };
using fault_rule = std::function<bool(op, const std::string& name)>;

class failing_file final : public prevalent::File {
 public:
  failing_file(std::unique_ptr<prevalent::File> inner, std::string name,
               std::shared_ptr<fault_rule> rule)
      : inner_(std::move(inner)), name_(std::move(name)), rule_(std::move(rule)) {}
  void append(prevalent::byte_view data) override {
    maybe_fail(op::append);
    inner_->append(data);
  }
  void write_at(std::uint64_t offset, prevalent::byte_view data) override {
    maybe_fail(op::append);
    inner_->write_at(offset, data);
  }
  std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const override {
    return inner_->read_at(offset, out);
  }
  std::uint64_t size() const override { return inner_->size(); }
  void sync() override {
    maybe_fail(op::sync);
    inner_->sync();
  }
  void truncate(std::uint64_t length) override { inner_->truncate(length); }

 private:
  void maybe_fail(op o) {
    if (*rule_ && (*rule_)(o, name_)) prevalent::throw_os_error(EIO, "injected", name_);
  }
  std::unique_ptr<prevalent::File> inner_;
  std::string name_;
  std::shared_ptr<fault_rule> rule_;
};

class failing_directory final : public prevalent::Directory {
 public:
  explicit failing_directory(std::shared_ptr<prevalent::Directory> inner)
      : inner_(std::move(inner)), rule_(std::make_shared<fault_rule>()) {}

  void fail_when(fault_rule rule) { *rule_ = std::move(rule); }

  std::string path() const override { return inner_->path(); }
  std::vector<std::string> list() const override { return inner_->list(); }
  std::unique_ptr<prevalent::File> open(const std::string& name, open_mode mode) override {
    if (mode == open_mode::create_new) maybe_fail(op::create, name);
    return std::make_unique<failing_file>(inner_->open(name, mode), name, rule_);
  }
  void remove(const std::string& name) override { inner_->remove(name); }
  void rename(const std::string& from, const std::string& to) override {
    maybe_fail(op::rename, to);
    inner_->rename(from, to);
  }
  void sync() override {
    maybe_fail(op::dir_sync, "");
    inner_->sync();
  }
  std::unique_ptr<prevalent::DirectoryLock> lock(const std::string& name) override {
    return inner_->lock(name);
  }

 private:
  void maybe_fail(op o, const std::string& name) {
    if (*rule_ && (*rule_)(o, name)) prevalent::throw_os_error(EIO, "injected", name);
  }
  std::shared_ptr<prevalent::Directory> inner_;
  std::shared_ptr<fault_rule> rule_;
};

}  // namespace test

// Directory and File on POSIX: pwrite at the tracked end, fdatasync, rename, directory fsync,
// and flock for the directory lock.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <mutex>

#include "prevalent/directory.hpp"
#include "prevalent/error.hpp"

namespace prevalent {
namespace {

class fd_guard {
 public:
  explicit fd_guard(int fd) : fd_(fd) {}
  ~fd_guard() {
    if (fd_ >= 0) ::close(fd_);
  }
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    struct stat st {};
    if (::fstat(fd_.get(), &st) != 0) throw_os_error(errno, "fstat", path_);
    size_ = static_cast<std::uint64_t>(st.st_size);
  }

  void append(byte_view data) override { write_at(size_, data); }

  void write_at(std::uint64_t offset, byte_view data) override {
    const std::uint8_t* p = data.data();
    std::size_t left = data.size();
    while (left > 0) {
      ssize_t n = ::pwrite(fd_.get(), p, left, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_os_error(errno, "write", path_);
      }
      p += n;
      left -= static_cast<std::size_t>(n);
      offset += static_cast<std::uint64_t>(n);
      size_ = std::max(size_, offset);
    }
  }

  std::size_t read_at(std::uint64_t offset, std::span<std::uint8_t> out) const override {
    std::size_t done = 0;
    while (done < out.size()) {
      ssize_t n = ::pread(fd_.get(), out.data() + done, out.size() - done,
                          static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_os_error(errno, "read", path_);
      }
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    return done;
  }

  std::uint64_t size() const override { return size_; }

  void sync() override {
    if (::fdatasync(fd_.get()) != 0) throw_os_error(errno, "fdatasync", path_);
  }

  void truncate(std::uint64_t length) override {
    if (::ftruncate(fd_.get(), static_cast<off_t>(length)) != 0)
      throw_os_error(errno, "truncate", path_);
    size_ = length;
  }

 private:
  fd_guard fd_;
  std::string path_;
  std::uint64_t size_ = 0;  // appends go here; the file is only ever written by this object
};

class PosixLock final : public DirectoryLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}

 private:
  fd_guard fd_;  // closing the descriptor releases the flock
};

class PosixDirectory final : public Directory {
 public:
  explicit PosixDirectory(std::filesystem::path path) : path_(std::move(path)) {
    std::error_code ec;
    std::filesystem::create_directories(path_, ec);
    if (ec) throw error(ec, "create directory " + path_.string() + ": " + ec.message());
  }

  std::string path() const override { return path_.string(); }

  std::vector<std::string> list() const override {
    std::vector<std::string> names;
    DIR* d = ::opendir(path_.c_str());
    if (d == nullptr) throw_os_error(errno, "list", path_.string());
    // readdir is safe here: this DIR stream is private to the call.
    while (dirent* e = ::readdir(d)) {  // NOLINT(concurrency-mt-unsafe)
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      if (e->d_type == DT_REG || e->d_type == DT_UNKNOWN) names.push_back(std::move(name));
    }
    ::closedir(d);
    return names;
  }

  std::unique_ptr<File> open(const std::string& name, open_mode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case open_mode::read: flags |= O_RDONLY; break;
      case open_mode::write: flags |= O_RDWR; break;
      case open_mode::create_new: flags |= O_RDWR | O_CREAT | O_EXCL; break;
    }
    std::string full = describe(name);
    int fd = ::open(full.c_str(), flags, 0644);
    if (fd < 0) throw_os_error(errno, "open", full);
    return std::make_unique<PosixFile>(fd, full);
  }

  void remove(const std::string& name) override {
    std::string full = describe(name);
    if (::unlink(full.c_str()) != 0) throw_os_error(errno, "unlink", full);
  }

  void rename(const std::string& from, const std::string& to) override {
    if (::rename(describe(from).c_str(), describe(to).c_str()) != 0)
      throw_os_error(errno, "rename " + describe(from) + " to", describe(to));
  }

  void sync() override {
    fd_guard fd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd.get() < 0) throw_os_error(errno, "open directory", path_.string());
    if (::fsync(fd.get()) != 0) throw_os_error(errno, "fsync directory", path_.string());
  }

  std::unique_ptr<DirectoryLock> lock(const std::string& name) override {
    std::string full = describe(name);
    int fd = ::open(full.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) throw_os_error(errno, "open lock file", full);
    auto held = std::make_unique<PosixLock>(fd);
    // flock locks belong to the open file description, so a second open of the same
    // directory in this very process is refused too, not only one from another process.
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      if (err == EWOULDBLOCK)
        throw error(errc::directory_in_use,
                    "store directory " + path() + " is in use: another store holds " + full);
      throw_os_error(err, "lock", full);
    }
    return held;
  }

 private:
  std::filesystem::path path_;
};

}  // namespace

std::shared_ptr<Directory> open_posix_directory(const std::filesystem::path& path) {
  return std::make_shared<PosixDirectory>(path);
}

bytes read_all(const File& file) {
  bytes data(file.size());
  data.resize(file.read_at(0, data));
  return data;
}

}  // namespace prevalent

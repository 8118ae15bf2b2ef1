// Directory and File on POSIX: pwrite at the tracked end, fdatasync, rename, directory fsync,
// flock for the directory lock, and the file modes: what it creates gets exactly the configured
// mode, what it finds more open than that is warned about or refused.
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
#include "prevalent/options.hpp"

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

// A mode as chmod takes it: 0600.
std::string octal(unsigned mode) {
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + (mode & 7u)));
    mode >>= 3;
  } while (mode != 0);
  return "0" + digits;
}

// Sets the exact mode of a file just created: open() and mkdir() only ever get the mode less
// the umask (or what a default ACL says), which may be less or, with an ACL, more than asked.
void set_mode(int fd, unsigned mode, const std::string& path) {
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) {
    int err = errno;
    ::close(fd);
    ::unlink(path.c_str());
    throw_os_error(err, "chmod " + octal(mode), path);
  }
}

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
  PosixDirectory(std::filesystem::path path, posix_modes modes)
      : path_(std::move(path)), modes_(std::move(modes)) {
    check_options(modes_);
    create();
    check_modes();
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
    int fd = ::open(full.c_str(), flags, static_cast<mode_t>(modes_.file));
    if (fd < 0) throw_os_error(errno, "open", full);
    if (mode == open_mode::create_new) set_mode(fd, modes_.file, full);
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
    // Created with O_EXCL first, so a new lock file gets its exact mode and an existing one
    // (checked when the directory was opened) keeps its own.
    int fd = ::open(full.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC,
                    static_cast<mode_t>(modes_.file));
    if (fd >= 0)
      set_mode(fd, modes_.file, full);
    else if (errno == EEXIST)
      fd = ::open(full.c_str(), O_RDWR | O_CLOEXEC);
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
  // Creates the missing parents with the usual mode and the directory itself with
  // modes_.directory, exactly.
  void create() {
    std::filesystem::path leaf = path_.has_filename() ? path_ : path_.parent_path();
    std::error_code ec;
    if (std::filesystem::is_directory(leaf, ec)) return;
    if (leaf.has_parent_path()) {
      std::filesystem::create_directories(leaf.parent_path(), ec);
      if (ec) throw error(ec, "create directory " + path_.string() + ": " + ec.message());
    }
    if (::mkdir(leaf.c_str(), static_cast<mode_t>(modes_.directory)) != 0) {
      int err = errno;
      if (err == EEXIST && std::filesystem::is_directory(leaf, ec)) return;  // raced: theirs
      throw_os_error(err, "create directory", path_.string());
    }
    if (::chmod(leaf.c_str(), static_cast<mode_t>(modes_.directory)) != 0)
      throw_os_error(errno, "chmod " + octal(modes_.directory), path_.string());
  }

  // The directory and every regular file in it against the modes: what they grant group and
  // others beyond the configured mode is reported as modes_.insecure says.
  void check_modes() const {
    if (modes_.insecure == modes_policy::ignore) return;
    std::vector<std::string> problems;
    auto check = [&](const std::string& full, unsigned expected, bool directory) {
      struct stat st {};
      if (::lstat(full.c_str(), &st) != 0) {
        if (errno == ENOENT) return;  // removed meanwhile
        throw_os_error(errno, "stat", full);
      }
      if (!directory && !S_ISREG(st.st_mode)) return;
      unsigned actual = static_cast<unsigned>(st.st_mode) & 0777u;
      if ((actual & 0077u & ~expected) == 0) return;
      problems.push_back((directory ? "store directory " : "file ") + full + " has mode " +
                         octal(actual) + ", expected " + octal(expected) +
                         " (group and others may read or write the store's state; chmod " +
                         octal(expected) + " it, or set " +
                         (directory ? "directory_mode" : "file_mode") + ")");
    };
    check(path_.string(), modes_.directory, true);
    for (const std::string& name : list()) check(describe(name), modes_.file, false);
    if (problems.empty()) return;
    if (modes_.insecure == modes_policy::refuse) {
      std::string all;
      for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
      throw error(errc::insecure_permissions, "insecure permissions: " + all);
    }
    if (modes_.log)
      for (const std::string& p : problems) modes_.log("insecure permissions: " + p);
  }

  std::filesystem::path path_;
  posix_modes modes_;
};

}  // namespace

std::shared_ptr<Directory> open_posix_directory(const std::filesystem::path& path,
                                                posix_modes modes) {
  return std::make_shared<PosixDirectory>(path, std::move(modes));
}

bytes read_all(const File& file) {
  bytes data(file.size());
  data.resize(file.read_at(0, data));
  return data;
}

}  // namespace prevalent

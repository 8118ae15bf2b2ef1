// `prevalent repair DIR`: cuts what recovery would cut (a torn tail, an unfinished last
// segment), moves out damaged snapshots (refusing when that would lose acknowledged history);
// with --salvage also cuts at the first corrupt record (repair_plan.cpp says what goes). Every
// byte it removes is first copied into a backup directory and synced there; it holds the
// directory lock throughout, so it refuses a store in use. --dry-run only says what it would do.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <ctime>

#include "commands.hpp"
#include "common.hpp"
#include "prevalent/error.hpp"
#include "progress.hpp"
#include "repair_plan.hpp"

namespace prevalent::tool {
namespace {

using ordered = nlohmann::ordered_json;

std::string backup_name(const repair_action& x) {
  return x.remove ? x.name : x.name + ".from-" + std::to_string(x.offset);
}

void sync_path(const std::filesystem::path& p, int flags) {
  const int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw_os_error(errno, "open", p.string());
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw_os_error(err, "fsync", p.string());
}

// Copies bytes [offset, offset + n) of `name` into a new file `to`, and syncs it.
void copy_out(const StoreDir& store, const std::string& name, std::uint64_t offset, std::uint64_t n,
              const std::filesystem::path& to) {
  const auto in = store.dir().open(name, Directory::open_mode::read);
  const int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) throw_os_error(errno, "create backup file", to.string());
  bytes buf(1u << 20);
  std::uint64_t done = 0;
  while (done < n) {
    buf.resize(static_cast<std::size_t>(std::min<std::uint64_t>(1u << 20, n - done)));
    const std::size_t got = in->read_at(offset + done, buf);
    if (got == 0) break;
    std::size_t put = 0;
    while (put < got) {
      const ssize_t w = ::write(fd, buf.data() + put, got - put);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        const int err = errno;
        ::close(fd);
        throw_os_error(err, "write backup file", to.string());
      }
      put += static_cast<std::size_t>(w);
    }
    done += got;
  }
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw_os_error(err, "fsync backup file", to.string());
  if (done != n)
    throw tool_error(exit_usage, store.describe(name) + " changed while it was backed up");
}

std::string default_backup(const std::string& dir) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char stamp[32];
  (void)std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
  return (std::filesystem::path(dir) / (std::string("repair-backup-") + stamp)).string();
}

}  // namespace

int run_repair(const repair_args& a) {
  const StoreDir store(a.dir, a.key_file);
  // Held until the end: no store may open the directory while it is repaired.
  std::unique_ptr<DirectoryLock> lock;
  if (a.dry_run) {
    const auto holder = probe_lock(store.path());
    if (holder.held)
      throw tool_error(exit_in_use,
                       a.dir + ": the store is in use" +
                           (holder.pid ? " by pid " + std::to_string(holder.pid) : std::string()) +
                           "; close it before repairing");
  } else {
    try {
      lock = store.dir().lock(format::lock_file_name);
    } catch (const prevalent::error& e) {
      if (e.code() != errc::directory_in_use) throw;
      const auto holder = probe_lock(store.path());
      throw tool_error(exit_in_use,
                       a.dir + ": the store is in use" +
                           (holder.pid ? " by pid " + std::to_string(holder.pid) : std::string()) +
                           "; close it before repairing");
    }
  }

  std::uint64_t total = 0;
  for (const auto& s : store.segments()) total += s.bytes;
  Progress progress("checking", total, !a.quiet);
  const auto walk = walk_journal(store, {}, &progress);
  progress.done();
  if (walk.damaged && !a.salvage) {
    const auto& d = *walk.damaged;
    (void)std::fprintf(
        stderr,
        "prevalent: %s\nprevalent: this is damage, not a torn tail: repair cuts only "
        "what recovery would cut. --salvage cuts at the first corrupt record (after "
        "record %llu) and drops everything after it, keeping a backup.\n",
        d.what.c_str(), static_cast<unsigned long long>(d.last_good_seq));
    return exit_damaged;
  }
  const auto plan = plan_repair(store, walk);
  if (!plan.refusal.empty()) {
    (void)std::fprintf(stderr, "prevalent: %s\n", plan.refusal.c_str());
    return exit_damaged;
  }
  const auto& actions = plan.actions;

  const std::string backup = a.backup.empty() ? default_backup(a.dir) : a.backup;
  ordered out;
  out["dry_run"] = a.dry_run;
  out["backup"] = actions.empty() ? ordered(nullptr) : ordered(backup);
  out["actions"] = ordered::array();
  for (const auto& x : actions)
    out["actions"].push_back({{"action", x.remove ? "remove" : "truncate"},
                              {"file", x.name},
                              {"offset", x.offset},
                              {"bytes", x.bytes},
                              {"backup_file", backup_name(x)},
                              {"why", x.why}});
  out["damaged_snapshots"] = plan.damaged_snapshots;
  out["last_seq_after"] = plan.last_seq_after;

  if (!actions.empty() && !a.dry_run) {
    // 1. The backup, synced, before anything in the store changes.
    const std::filesystem::path b(backup);
    std::error_code ec;
    std::filesystem::create_directories(b, ec);
    if (ec) throw_os_error(ec.value(), "create backup directory", backup);
    for (const auto& x : actions) copy_out(store, x.name, x.offset, x.bytes, b / backup_name(x));
    const std::string manifest = out.dump(2) + "\n";
    {
      const auto path = b / "repair.json";
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (fd < 0) throw_os_error(errno, "create", path.string());
      const bool ok =
          ::write(fd, manifest.data(), manifest.size()) == static_cast<ssize_t>(manifest.size()) &&
          ::fsync(fd) == 0;
      const int err = errno;
      ::close(fd);
      if (!ok) throw_os_error(err, "write", path.string());
    }
    sync_path(b, O_RDONLY | O_DIRECTORY);
    sync_path(b.parent_path().empty() ? "." : b.parent_path(), O_RDONLY | O_DIRECTORY);
    // 2. The cuts and removals, synced.
    for (const auto& x : actions) {
      if (x.remove) {
        store.dir().remove(x.name);
      } else {
        const auto f = store.dir().open(x.name, Directory::open_mode::write);
        f->truncate(x.offset);
        f->sync();
      }
    }
    store.dir().sync();
  }

  if (a.json) {
    print_line(out.dump());
  } else if (actions.empty()) {
    std::printf("nothing to repair: the journal ends cleanly at record %llu\n",
                static_cast<unsigned long long>(plan.last_seq_after));
  } else {
    for (const auto& x : actions) {
      if (x.remove)
        std::printf("%s %s (%llu bytes): %s\n", a.dry_run ? "would remove" : "removed",
                    x.name.c_str(), static_cast<unsigned long long>(x.bytes), x.why.c_str());
      else
        std::printf("%s %s at offset %llu (%llu bytes): %s\n", a.dry_run ? "would cut" : "cut",
                    x.name.c_str(), static_cast<unsigned long long>(x.offset),
                    static_cast<unsigned long long>(x.bytes), x.why.c_str());
    }
    std::printf("%s %s\n",
                a.dry_run ? "backup would go to" : "backup of what was removed:", backup.c_str());
    std::printf("the journal %s at record %s\n", a.dry_run ? "would end" : "ends",
                out["last_seq_after"].dump().c_str());
  }
  finish_output();
  return exit_ok;
}

}  // namespace prevalent::tool

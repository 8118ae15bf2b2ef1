#include "prevalent/persistence.hpp"

#include <filesystem>
#include <string>
#include <utility>

#include "prevalent/cipher.hpp"
#include "prevalent/error.hpp"
#include "prevalent/format.hpp"

namespace prevalent {

namespace {
store_options checked(store_options o) {
  check_options(o);
  return o;
}

// The archive of store_options::archive_directory, or null. Refuses the store's own directory:
// archiving a file there would delete it.
std::unique_ptr<Archive> open_archive(const store_options& o, const Directory& store) {
  if (o.archive) {
    if (o.archive.get() == &store)
      throw error(errc::invalid_option, "archive is the store's own directory; give another one");
    return std::make_unique<Archive>(o.archive);
  }
  if (o.archive_directory.empty()) return nullptr;
  std::error_code ec;
  if (std::filesystem::equivalent(o.archive_directory, store.path(), ec))
    throw error(errc::invalid_option, "archive_directory " + o.archive_directory.string() +
                                          " is the store's own directory; give another one");
  return std::make_unique<Archive>(open_posix_directory(o.archive_directory, modes_of(o)));
}
}  // namespace

Persistence::Persistence(std::shared_ptr<Directory> dir, store_options options)
    : dir_(std::move(dir)),
      options_(checked(std::move(options))),
      lock_(dir_->lock(format::lock_file_name)),
      archive_(open_archive(options_, *dir_)),
      snapshots_(dir_, options_.keep_snapshots,
                 options_.encryption_key
                     ? std::make_shared<const detail::payload_cipher>(*options_.encryption_key)
                     : nullptr,
                 options_.accept_unencrypted) {}

std::uint64_t Persistence::load_newest_snapshot(const snapshot_loader& load,
                                                std::uint64_t at_most) {
  const auto journal_start = Journal::first_seq_on_disk(*dir_);
  std::string problems;
  bool any = false;
  for (const auto& snap : snapshots_.list()) {
    if (snap.last_seq > at_most) continue;
    any = true;
    try {
      if (journal_start && *journal_start > snap.last_seq + 1)
        throw error(errc::no_usable_snapshot,
                    dir_->describe(snap.file) +
                        ": the journal no longer reaches back to it (starts at " +
                        std::to_string(*journal_start) + ")");
      auto loaded = snapshots_.load(snap);
      try {
        load(loaded.payload, loaded.header, dir_->describe(snap.file));
      } catch (const error& e) {
        if (e.code() == errc::incompatible_version) throw;
        throw error(errc::corrupt_snapshot,
                    dir_->describe(snap.file) + ": state does not decode: " + e.what());
      } catch (const std::exception& e) {
        throw error(errc::corrupt_snapshot,
                    dir_->describe(snap.file) + ": state does not decode: " + e.what());
      }
      if (!problems.empty() && options_.log)
        options_.log("recovery: using older snapshot " + dir_->describe(snap.file) +
                     " because newer ones are unusable: " + problems);
      return snap.last_seq;
    } catch (const error& e) {
      // A wrong key, or a snapshot changed by someone without it, is not damage to fall back
      // from quietly: the open fails and says so. Nor is a state version this program cannot
      // read: an older snapshot would only hide that the program is older than its data.
      if (e.code() == errc::encryption_mismatch || e.code() == errc::authentication_failed ||
          e.code() == errc::incompatible_version)
        throw;
      if (options_.log) options_.log(std::string("recovery: skipping snapshot: ") + e.what());
      problems += (problems.empty() ? "" : "; ") + std::string(e.what());
    }
  }
  if (any && (!journal_start || *journal_start > 1))
    throw error(errc::no_usable_snapshot,
                "no usable snapshot in " + dir_->path() +
                    " and the journal does not reach back to sequence number 1: " + problems);
  return 0;  // replay the whole journal onto a default-constructed state
}

void Persistence::recover(const snapshot_loader& load, const Journal::visitor& replay,
                          const Journal::settler& settle) {
  snapshots_.remove_leftovers();
  if (archive_) archive_->remove_leftovers();
  const std::uint64_t base = load_newest_snapshot(load, UINT64_MAX);
  journal_ = Journal::open(dir_, options_, base + 1, base + 1, replay, options_.log, settle);
}

void Persistence::rebuild(const snapshot_loader& load, const Journal::visitor& replay,
                          std::uint64_t upto, const Journal::settler& settle) {
  {
    std::lock_guard pins(pins_mutex_);  // waits only while a publish's deletions run
    ++readers_;
  }
  struct unpin {
    Persistence& p;
    ~unpin() {
      std::lock_guard pins(p.pins_mutex_);
      --p.readers_;
    }
  };
  {
    unpin reading{*this};
    journal_->flush_through(upto);
    const std::uint64_t base = load_newest_snapshot(load, upto);
    try {
      journal_->for_each(base + 1, upto, replay);  // throws unless it delivered base+1..upto
    } catch (...) {
      if (settle) settle();  // an earlier record's error comes first
      throw;
    }
    if (settle) settle();
  }
  // Do the deletions a publish left pending while this rebuild read, unless a publish is
  // running (it will do them itself): never wait for a publish under the state lock.
  std::unique_lock publishing(publish_mutex_, std::try_to_lock);
  if (!publishing || !removal_pending_) return;  // written only under publish_mutex_
  try {
    remove_unneeded();
  } catch (const std::exception& e) {  // the state is rebuilt; the next publish tries again
    if (options_.log)
      options_.log(std::string("removing snapshots and segments no longer needed failed: ") +
                   e.what());
  }
}

std::uint64_t Persistence::size_of(const std::string& file) const {
  try {
    return dir_->open(file, Directory::open_mode::read)->size();
  } catch (const std::exception&) {  // only a metric depends on it
    return 0;
  }
}

std::uint64_t Persistence::publish_snapshot(std::uint64_t last_seq, std::int64_t timestamp_ns,
                                            byte_view payload, std::uint32_t state_version) {
  // A snapshot must never cover a record the journal could still lose: recovery requires the
  // journal to reach the snapshot's sequence number.
  journal_->sync_through(last_seq);
  std::lock_guard one_at_a_time(publish_mutex_);
  if (auto newest = snapshots_.list(); !newest.empty() && newest.front().last_seq > last_seq)
    return 0;  // a newer snapshot was published meanwhile
  const std::string file = snapshots_.install(
      last_seq, timestamp_ns, payload, options_.snapshot_codec,
      options_.compress_snapshots ? format::compression::zstd : format::compression::none,
      state_version);
  const std::uint64_t bytes = size_of(file);
  remove_unneeded();
  return bytes;
}

std::uint64_t Persistence::publish_snapshot_streamed(
    std::uint64_t last_seq, std::int64_t timestamp_ns,
    const std::function<void(const SnapshotStore::payload_sink&)>& produce,
    std::uint32_t state_version) {
  journal_->sync_through(last_seq);  // as publish_snapshot()
  std::lock_guard one_at_a_time(publish_mutex_);
  if (auto newest = snapshots_.list(); !newest.empty() && newest.front().last_seq > last_seq)
    return 0;
  const std::string file = snapshots_.install_streamed(
      last_seq, timestamp_ns, produce, options_.snapshot_codec,
      options_.compress_snapshots ? format::compression::zstd : format::compression::none,
      state_version);
  const std::uint64_t bytes = size_of(file);
  remove_unneeded();
  return bytes;
}

void Persistence::remove_unneeded() {
  std::lock_guard pins(pins_mutex_);
  if (readers_ > 0) {
    removal_pending_ = true;  // a rebuild is reading them; it finishes this when done
    return;
  }
  removal_pending_ = true;  // until done: a failed unlink leaves it for the next publish
  // With an archive, each file is copied there durably before it is deleted (archive.hpp).
  Journal::retire_hook archive;
  if (archive_) archive = [this](const std::string& name) { archive_->keep(*dir_, name); };
  snapshots_.remove_old(archive);
  // Keep the journal back to the oldest kept snapshot so that it can stand in for a newer one
  // that turns out damaged.
  auto kept = snapshots_.list();
  if (!kept.empty()) journal_->drop_below(kept.back().last_seq + 1, archive);
  removal_pending_ = false;
}

}  // namespace prevalent

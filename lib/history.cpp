// History: a store directory and its archive read without lock or writes, for time travel and
// the determinism check (detail/history_core.hpp).
#include "prevalent/detail/history_core.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <map>
#include <system_error>
#include <utility>

#include "prevalent/cipher.hpp"
#include "prevalent/error.hpp"
#include "prevalent/format.hpp"
#include "prevalent/iso_time.hpp"
#include "prevalent/replay_pipeline.hpp"
#include "prevalent/snapshot_store.hpp"
#include "prevalent/snapshot_writer.hpp"
#include "segment_reader.hpp"

namespace prevalent::detail {

namespace {

// Thrown by a record visitor to stop a segment scan early.
struct stop_reading {};

// A directory that must exist: opening a missing one would create it.
std::shared_ptr<Directory> open_existing(const std::filesystem::path& path,
                                         const store_options& options) {
  std::error_code ec;
  if (!std::filesystem::is_directory(path, ec))
    throw error(std::make_error_code(std::errc::no_such_file_or_directory),
                "no store directory at " + path.string());
  return open_posix_directory(path, modes_of(options));
}

struct segment_entry {
  std::uint64_t first;
  std::string name;
  Directory* dir;
};

std::string range_text(const sequence_range& r) {
  if (r.empty()) return "none";
  return std::to_string(r.first) + ".." + std::to_string(r.last);
}

}  // namespace

struct History::impl {
  std::shared_ptr<Directory> dir;
  std::shared_ptr<Directory> archive;  // may be null
  store_options options;
  std::shared_ptr<const payload_cipher> cipher;
  std::unique_ptr<SnapshotStore> main_snapshots, archive_snapshots;
  std::vector<history_snapshot> snapshots;  // newest first
  std::vector<segment_entry> segments;      // by first sequence number

  impl(std::shared_ptr<Directory> d, const store_options& o) : dir(std::move(d)), options(o) {
    if (options.archive) {
      archive = options.archive;
    } else if (!options.archive_directory.empty()) {
      std::error_code ec;
      if (std::filesystem::is_directory(options.archive_directory, ec))
        archive = open_posix_directory(options.archive_directory, modes_of(options));
    }
    if (options.encryption_key)
      cipher = std::make_shared<const payload_cipher>(*options.encryption_key);
    main_snapshots =
        std::make_unique<SnapshotStore>(dir, 1, cipher, !cipher || options.accept_unencrypted);
    if (archive)
      archive_snapshots = std::make_unique<SnapshotStore>(archive, 1, cipher,
                                                          !cipher || options.accept_unencrypted);
    std::map<std::uint64_t, history_snapshot> snaps;
    std::map<std::uint64_t, segment_entry> segs;
    // The archive first: a file in both places is read from the store directory.
    for (Directory* d : {archive.get(), dir.get()}) {
      if (!d) continue;
      const bool archived = d == archive.get();
      for (const auto& name : d->list()) {
        if (auto seq = format::parse_snapshot_file_name(name))
          snaps.insert_or_assign(*seq, history_snapshot{name, d->describe(name), *seq, archived});
        else if (auto first = format::parse_segment_file_name(name))
          segs.insert_or_assign(*first, segment_entry{*first, name, d});
      }
    }
    for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) snapshots.push_back(it->second);
    for (auto& [_, s] : segs) segments.push_back(s);
  }

  const SnapshotStore& store_of(const history_snapshot& s) const {
    return s.archived ? *archive_snapshots : *main_snapshots;
  }

  // A file listed in the store directory may be gone when it is read: the running store
  // dropped it meanwhile. With an archive, it was copied there first: read that copy.
  static bool gone(const error& e) { return e.code() == std::errc::no_such_file_or_directory; }

  loaded_snapshot read(const history_snapshot& s) const {
    try {
      return store_of(s).load(snapshot_info{s.file, s.last_seq});
    } catch (const error& e) {
      if (!gone(e) || s.archived || !archive_snapshots) throw;
      return archive_snapshots->load(snapshot_info{s.file, s.last_seq});
    }
  }

  // Opens segment `seg` for reading; returns the directory it was found in.
  std::pair<std::unique_ptr<File>, Directory*> open_segment(const segment_entry& seg) const {
    try {
      return {seg.dir->open(seg.name, Directory::open_mode::read), seg.dir};
    } catch (const error& e) {
      if (!gone(e) || !archive || seg.dir == archive.get()) throw;
      return {archive->open(seg.name, Directory::open_mode::read), archive.get()};
    }
  }

  // The header of snapshot `s` (to choose among snapshots by time), or nullopt if it does not
  // verify (then loading it fails and says why).
  std::optional<format::snapshot_header> peek(const history_snapshot& s) const {
    try {
      return store_of(s).read_header(snapshot_info{s.file, s.last_seq});
    } catch (const error&) {
      return std::nullopt;
    }
  }

  static snapshot_facts facts_of(const loaded_snapshot& l) {
    return {l.header.timestamp_ns, l.header.codec, l.header.state_version,
            l.header.digest ? *l.header.digest : state_digest(l.payload)};
  }

  // The last record of the journal, by scanning its last segment (a torn tail ends it).
  std::optional<std::uint64_t> last_record() const {
    for (std::size_t i = segments.size(); i-- > 0;) {
      const segment_entry& seg = segments[i];
      auto [file, from] = open_segment(seg);
      segment_reader reader(*file, file->size(), from->describe(seg.name), options.max_record_bytes,
                            cipher.get(), !cipher || options.accept_unencrypted);
      const bool last = i + 1 == segments.size();
      if (last && reader.unfinished()) continue;  // holds no record
      return reader.scan(last, nullptr).last_seq;
    }
    return std::nullopt;
  }

  sequence_range reachable() const {
    const std::optional<std::uint64_t> newest_snapshot =
        snapshots.empty() ? std::nullopt : std::optional(snapshots.front().last_seq);
    if (segments.empty()) {
      const std::uint64_t at = newest_snapshot.value_or(0);
      return {at, at};
    }
    const std::uint64_t start = segments.front().first;
    const std::uint64_t last =
        std::max(last_record().value_or(start - 1), newest_snapshot.value_or(0));
    if (start == 1) return {0, last};
    // The oldest snapshot the journal continues from.
    for (auto it = snapshots.rbegin(); it != snapshots.rend(); ++it)
      if (it->last_seq + 1 >= start && it->last_seq <= last) return {it->last_seq, last};
    return {};
  }

  std::uint64_t for_each(std::uint64_t from, std::uint64_t to,
                         const std::function<bool(const record_view&)>& visit) const {
    from = std::max<std::uint64_t>(from, 1);
    std::uint64_t next = from;
    bool stopped = false, gap = false;
    for (std::size_t i = 0; i < segments.size() && !stopped && next <= to; ++i) {
      const segment_entry& seg = segments[i];
      const bool last = i + 1 == segments.size();
      if (!last && segments[i + 1].first <= next) continue;  // all before `next`
      if (seg.first > next) {  // record `next` is missing, later ones are there
        gap = true;
        break;
      }
      auto [file, from] = open_segment(seg);
      const std::string path = from->describe(seg.name);
      segment_reader reader(*file, file->size(), path, options.max_record_bytes, cipher.get(),
                            !cipher || options.accept_unencrypted);
      if (last && reader.unfinished()) break;
      try {
        reader.scan(last, [&](const record_view& r) {
          if (r.seq < next) return;
          if (r.seq > to || r.seq != next) throw stop_reading{};
          if (!visit(r)) {
            stopped = true;
            throw stop_reading{};
          }
          ++next;
        });
      } catch (const stop_reading&) {
      }
    }
    const bool missing = !stopped && (gap || (to != UINT64_MAX && next <= to));
    if (missing) {
      const sequence_range range = reachable();
      throw error(errc::not_reachable,
                  "record " + std::to_string(next) + " is not in the journal of " + dir->path() +
                      (archive ? " or its archive " + archive->path() : std::string()) +
                      " (needed for records " + std::to_string(from) + ".." + std::to_string(to) +
                      "; reachable states: " + range_text(range) + ")");
    }
    return next - 1;
  }
};

History::History(const std::filesystem::path& path, const store_options& options)
    : History(open_existing(path, options), options) {}

History::History(std::shared_ptr<Directory> dir, const store_options& options)
    : impl_(std::make_unique<impl>(std::move(dir), options)) {}

History::~History() = default;

const std::vector<history_snapshot>& History::snapshots() const { return impl_->snapshots; }

sequence_range History::reachable() const { return impl_->reachable(); }

std::optional<std::uint64_t> History::journal_start() const {
  if (impl_->segments.empty()) return std::nullopt;
  return impl_->segments.front().first;
}

snapshot_facts History::load(const history_snapshot& s,
                             const StoreCore::snapshot_loader& load) const {
  auto loaded = impl_->read(s);
  try {
    load(loaded.payload,
         {loaded.header.codec, loaded.header.state_version, s.path, loaded.header.last_seq});
  } catch (const error& e) {
    if (e.code() == errc::incompatible_version) throw;  // not damage: the types cannot read it
    throw error(errc::corrupt_snapshot, s.path + ": state does not decode: " + e.what());
  } catch (const std::exception& e) {
    throw error(errc::corrupt_snapshot, s.path + ": state does not decode: " + e.what());
  }
  return impl::facts_of(loaded);
}

snapshot_facts History::inspect(const history_snapshot& s) const {
  return impl::facts_of(impl_->read(s));
}

std::uint64_t History::for_each(std::uint64_t from, std::uint64_t to,
                                const std::function<bool(const record_view&)>& visit) const {
  return impl_->for_each(from, to, visit);
}

History::replay_result History::replay(std::uint64_t after, std::uint64_t to,
                                       std::optional<std::int64_t> until_ns,
                                       std::int64_t base_timestamp,
                                       const replay_hooks& replay) const {
  replay_result out{after, base_timestamp, 0};
  ReplayPipeline pipeline(replay,
                          [&out](const record_view& r) { out.timestamp_ns = r.timestamp_ns; });
  try {
    out.last = impl_->for_each(after + 1, to, [&](const record_view& r) {
      if (until_ns && r.timestamp_ns > *until_ns) return false;
      pipeline.push(r);
      ++out.records;
      return true;
    });
  } catch (...) {
    pipeline.settled_rethrow();
  }
  pipeline.settle();
  return out;
}

travel_report History::travel(const as_of& when, const StoreCore::snapshot_loader& load,
                              const replay_hooks& replay,
                              const std::function<void()>& reset) const {
  const impl& s = *impl_;
  if (when.seq.has_value() == when.time.has_value())
    throw error(errc::invalid_option, "as_of: set exactly one of seq and time");
  const std::uint64_t to = when.seq.value_or(UINT64_MAX);
  std::optional<std::int64_t> until;
  if (when.time)
    until =
        std::chrono::duration_cast<std::chrono::nanoseconds>(when.time->time_since_epoch()).count();
  const auto not_reachable = [&](const std::string& what, const std::string& problems) {
    std::string message = what + " is not reachable in " + s.dir->path() +
                          (s.archive ? " and its archive " + s.archive->path() : std::string()) +
                          ": reachable states are " + range_text(s.reachable());
    if (!problems.empty()) message += " (" + problems + ")";
    return error(errc::not_reachable, message);
  };
  const std::string target = when.seq ? "the state after record " + std::to_string(*when.seq)
                                      : "the state at " + detail::iso_time(*until);

  // Replays the records after `base` (through `to`, or while stamped at or before `until`).
  const auto replay_after = [&](std::uint64_t base, std::int64_t base_timestamp,
                                travel_report report) {
    const auto done = this->replay(base, to, until, base_timestamp, replay);
    report.seq = done.last;
    report.timestamp_ns = done.timestamp_ns;
    report.replayed = done.records;
    return report;
  };

  std::string problems;
  for (const history_snapshot& snap : s.snapshots) {
    if (snap.last_seq > to) continue;
    if (until) {
      auto header = s.peek(snap);
      if (header && header->timestamp_ns > *until) continue;
    }
    reset();
    snapshot_facts facts;
    try {
      facts = this->load(snap, load);
    } catch (const error& e) {
      if (e.code() == errc::encryption_mismatch || e.code() == errc::authentication_failed ||
          e.code() == errc::incompatible_version)
        throw;
      if (s.options.log) s.options.log("time travel: skipping snapshot: " + std::string(e.what()));
      problems += (problems.empty() ? "" : "; ") + std::string(e.what());
      continue;
    }
    travel_report report;
    report.snapshot = snap.path;
    report.snapshot_seq = snap.last_seq;
    return replay_after(snap.last_seq, facts.timestamp_ns, report);
  }
  // No snapshot: the whole journal, if it reaches back to record 1.
  const auto start = journal_start();
  if ((start && *start == 1) || (!start && s.snapshots.empty() && to == 0)) {
    reset();
    return replay_after(0, 0, travel_report{});
  }
  if (!start && s.snapshots.empty() && to == UINT64_MAX) {
    reset();
    return travel_report{};  // an empty store: the empty state at any time
  }
  throw not_reachable(target, problems);
}

std::uint64_t History::resolve(const as_of& when) const {
  const impl& s = *impl_;
  if (when.seq.has_value() == when.time.has_value())
    throw error(errc::invalid_option, "as_of: set exactly one of seq and time");
  const sequence_range range = s.reachable();
  if (when.seq) {
    if (!range.contains(*when.seq))
      throw error(errc::not_reachable, "the state after record " + std::to_string(*when.seq) +
                                           " is not reachable in " + s.dir->path() +
                                           ": reachable states are " + range_text(range));
    return *when.seq;
  }
  const std::int64_t until =
      std::chrono::duration_cast<std::chrono::nanoseconds>(when.time->time_since_epoch()).count();
  std::optional<std::uint64_t> base;
  for (const history_snapshot& snap : s.snapshots) {
    if (!range.contains(snap.last_seq)) continue;
    auto header = s.peek(snap);
    if (header && header->timestamp_ns <= until) {
      base = snap.last_seq;
      break;
    }
  }
  if (!base && range.first == 0) base = 0;
  if (!base)
    throw error(errc::not_reachable, "the state at " + std::to_string(until) +
                                         " ns is older than the oldest one reachable in " +
                                         s.dir->path() +
                                         " (reachable states: " + range_text(range) + ")");
  return s.for_each(*base + 1, UINT64_MAX,
                    [until](const record_view& r) { return r.timestamp_ns <= until; });
}

std::string History::path() const { return impl_->dir->path(); }
const store_options& History::options() const { return impl_->options; }

void serialize_state(codec c, const std::function<nlohmann::json()>& serialize,
                     const std::function<void(byte_view)>& sink) {
  SnapshotWriter writer(c);
  writer.write(serialize, sink);
}

}  // namespace prevalent::detail

namespace prevalent {

sequence_range reachable_sequences(const std::filesystem::path& path,
                                   const store_options& options) {
  return detail::History(path, options).reachable();
}

sequence_range reachable_sequences(std::shared_ptr<Directory> dir, const store_options& options) {
  return detail::History(std::move(dir), options).reachable();
}

std::uint64_t sequence_as_of(const std::filesystem::path& path, const as_of& when,
                             const store_options& options) {
  return detail::History(path, options).resolve(when);
}

std::uint64_t sequence_as_of(std::shared_ptr<Directory> dir, const as_of& when,
                             const store_options& options) {
  return detail::History(std::move(dir), options).resolve(when);
}

}  // namespace prevalent

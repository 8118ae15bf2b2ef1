// StoreCore: the part of a Store that does not depend on the user's types (store_core.hpp).
#include "prevalent/detail/store_core.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#if __has_include(<cxxabi.h>)
#include <cxxabi.h>
#endif

#include "prevalent/error.hpp"
#include "prevalent/format.hpp"
#include "prevalent/meters.hpp"
#include "prevalent/persistence.hpp"
#include "prevalent/recovery_tracker.hpp"
#include "prevalent/replay_pipeline.hpp"
#include "prevalent/replication_log.hpp"
#include "prevalent/snapshot_scheduler.hpp"
#include "prevalent/snapshot_writer.hpp"
#include "prevalent/writer_preferring_mutex.hpp"

namespace prevalent::detail {

namespace {
// Gives the heap that decoding a snapshot and replaying the journal freed back to the system
// (glibc keeps freed memory in its arenas otherwise: a restart then held three times what the
// state needs, issue 9).
void release_freed_heap() noexcept {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

template <class TimePoint>
std::uint64_t ns_between(TimePoint from, TimePoint to) noexcept {
  const auto d = std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
  return d > 0 ? static_cast<std::uint64_t>(d) : 0;
}

// What the store measures beyond the journal (metrics.hpp). The recovery fields are written
// once by open(), before any other thread can see the store.
struct store_meters {
  std::atomic<std::uint64_t> applied{0}, rejected{0}, failed{0};
  latency_histogram queue_ns{microsecond_ns}, apply_ns{microsecond_ns}, durable_ns{microsecond_ns};
  long_duration_histogram snapshot_ns{millisecond_ns};
  log2_histogram<25> snapshot_bytes{1024};  // 1 KiB .. 16 GiB
  std::atomic<std::uint64_t> snapshot_failures{0};
  std::uint64_t recovery_ns = 0, recovery_snapshot_ns = 0;
};
// Damage that stops an open: what to run next (docs/TOOL.md), after the error's own message.
error with_repair_hint(const error& e, const std::string& dir) {
  const auto c = e.code();
  if (c != errc::corrupt_record && c != errc::corrupt_segment && c != errc::sequence_gap) return e;
  // what() is "<message>: <the code's message>"; the new error appends the latter again.
  std::string message = e.what();
  const std::string suffix = ": " + c.message();
  if (message.size() >= suffix.size() &&
      message.compare(message.size() - suffix.size(), suffix.size(), suffix) == 0)
    message.resize(message.size() - suffix.size());
  return error(c, message + " (nothing was changed; `prevalent verify " + dir +
                      "` reports the damage, `prevalent repair --salvage " + dir +
                      "` cuts the journal there, keeping a backup of what it removes)");
}
}  // namespace

namespace {
// The readable name of a type from its typeid name (GCC and clang mangle it).
std::string readable_type(const char* mangled) {
#if __has_include(<cxxabi.h>)
  int status = 0;
  char* demangled = abi::__cxa_demangle(mangled, nullptr, nullptr, &status);
  if (status == 0 && demangled) {
    std::string out = demangled;
    std::free(demangled);
    return out;
  }
  std::free(demangled);
#endif
  return mangled;
}
}  // namespace

void check_state_version(const snapshot_source& from, std::uint32_t ours, bool has_upgrade,
                         const char* state_type) {
  if (from.state_version == ours || (from.state_version < ours && has_upgrade)) return;
  const std::string type = readable_type(state_type);
  std::string what = from.file + ": the snapshot of sequence number " +
                     std::to_string(from.last_seq) + " holds state " + type + " at version " +
                     std::to_string(from.state_version) + ", ";
  if (from.state_version > ours)
    what += "newer than this program's version " + std::to_string(ours) +
            " of it; open the store with the program that wrote it, or a newer one";
  else
    what += "older than this program's version " + std::to_string(ours) + ", and " + type +
            " has no `static void upgrade(nlohmann::json& state, int from_version)` to read it";
  throw error(errc::incompatible_version, what);
}

struct StoreCore::impl {
  impl(std::shared_ptr<Directory> dir, store_options options, std::uint32_t state_version)
      : persistence(std::move(dir), std::move(options)),
        path(persistence.directory().path()),
        state_version(state_version) {}

  Persistence persistence;
  const std::string path;
  const std::uint32_t state_version;  // recorded in every snapshot
  typed_hooks hooks;
  writer_preferring_mutex mutex;  // the state lock; guards the members below
  std::uint64_t last_applied = 0;
  std::int64_t last_timestamp_ns = 0;
  std::atomic<bool> state_valid{true};  // atomic: failed() reads it without the lock
  std::string invalid_reason;           // why a rebuild failed
  std::atomic<bool> closed{false};
  bool opened = false;  // open() succeeded: the journal exists
  store_meters meters;
  // Replication (issue 11): a replica's refusal, and a primary's replicas' durable marks.
  std::string read_only;  // non-empty: a replica; why commands are refused (set once)
  std::atomic<bool> is_replica{false};
  mutable std::mutex acks_mutex;
  std::condition_variable acks_cv;
  std::map<std::uint64_t, std::uint64_t> replica_durable;  // connection id -> durable seq
  // The highest seq that acks.replicas replicas have reported durable (the k-th highest mark;
  // never decreases: a replica that leaves keeps what it had made durable). Waiters wake only
  // when it moves, not at every acknowledgement.
  std::uint64_t replicated_through = 0;
  std::string fenced;  // non-empty: wait_replicated() fails with this (guarded by acks_mutex)
  std::optional<SnapshotScheduler> scheduler;  // last: its thread calls hooks.snapshot

  Journal& journal() { return persistence.journal(); }

  // Replaces the state with the one on disk through record `upto`. Exclusive lock held.
  void rebuild(std::uint64_t upto) {
    try {
      hooks.rebuild(upto);
    } catch (const std::exception& e) {
      state_valid = false;  // queries refuse rather than show a state that drifted
      invalid_reason = e.what();
      if (persistence.options().log)
        persistence.options().log("rebuilding the state from disk failed: " + invalid_reason);
    } catch (...) {
      state_valid = false;
      invalid_reason = "unknown exception";
    }
  }

  // After an I/O error: replaces the state with the durable prefix of the journal, so that
  // nothing a crash could undo stays visible. `applied_unwritten`: the state holds a command
  // that was never queued. Exclusive lock held; the journal has failed, so its durable mark
  // no longer moves.
  void roll_back_to_durable(bool applied_unwritten = false) {
    const std::uint64_t durable = journal().durable_seq();
    if (last_applied <= durable && !applied_unwritten) return;
    rebuild(std::min(durable, last_applied));
    last_applied = std::min(durable, last_applied);
  }

  void check_valid(const char* refused) const {
    if (!state_valid)
      throw error(errc::store_failed, std::string(refused) + " in " + path +
                                          ": its state could not be rebuilt from disk; reopen "
                                          "the store (" +
                                          invalid_reason + ")");
  }
};

StoreCore::StoreCore(std::shared_ptr<Directory> dir, store_options options,
                     std::uint32_t state_version)
    : impl_(std::make_unique<impl>(std::move(dir), std::move(options), state_version)) {}

StoreCore::~StoreCore() { close_quietly(); }

void StoreCore::close_quietly() noexcept {
  std::string failure;
  try {
    close();
    return;
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  try {
    if (impl_->persistence.options().log)
      impl_->persistence.options().log("store in " + impl_->path +
                                       " did not close cleanly, records may be lost: " + failure);
  } catch (...) {  // a destructor has nowhere else to report it
  }
}

void StoreCore::open(const snapshot_loader& load, const record_visitor& replay, typed_hooks hooks) {
  impl& s = *impl_;
  using steady = std::chrono::steady_clock;
  const auto started = steady::now();
  recovery_tracker progress(s.persistence.directory(),
                            s.persistence.options().on_recovery_progress);
  ReplayPipeline pipeline(replay,
                          [&s](const record_view& r) { s.last_timestamp_ns = r.timestamp_ns; });
  try {
    s.persistence.recover(
        [&](byte_view payload, const format::snapshot_header& h, const std::string& file) {
          load(payload, {h.codec, h.state_version, file, h.last_seq});
          s.last_timestamp_ns = h.timestamp_ns;
          s.meters.recovery_snapshot_ns = ns_between(started, steady::now());
          progress.snapshot_loaded(h.last_seq);
        },
        [&](const record_view& r) {
          pipeline.push(r);
          progress.record(r);
        },
        [&] { pipeline.settle(); });
  } catch (const error& e) {
    throw with_repair_hint(e, s.persistence.directory().path());
  }
  pipeline.settle();
  s.last_applied = s.journal().last_appended();
  release_freed_heap();
  s.meters.recovery_ns = ns_between(started, steady::now());
  progress.finish(s.journal().recovery().replayed);
  s.hooks = std::move(hooks);
  s.scheduler.emplace(s.persistence.options().snapshots, s.hooks.snapshot,
                      s.persistence.options().log);
  s.opened = true;
}

void StoreCore::close() {
  impl& s = *impl_;
  {
    // Under the state lock, where commands check it: a command between check_accepting()
    // and append() finishes queueing before the journal stops. Without the lock its append
    // failed with errc::closed and rolled the state back to a durable mark that the final
    // sync was still moving, hiding commands that were then acknowledged (issue 8).
    std::unique_lock lock(s.mutex);
    if (s.closed.exchange(true) || !s.opened) return;
  }
  std::exception_ptr first;
  // Join the snapshot thread first: it calls hooks.snapshot.
  if (s.scheduler) s.scheduler->stop();
  if (s.persistence.options().snapshots.on_close && !failed() && s.hooks.snapshot) {
    try {
      s.hooks.snapshot();
    } catch (...) {
      first = std::current_exception();
    }
  }
  try {
    s.journal().close();
  } catch (...) {
    if (!first) first = std::current_exception();
  }
  s.persistence.unlock_directory();  // the directory may be opened again
  if (first) std::rethrow_exception(first);
}

void StoreCore::lock() { impl_->mutex.lock(); }
bool StoreCore::try_lock() { return impl_->mutex.try_lock(); }
void StoreCore::unlock() { impl_->mutex.unlock(); }
void StoreCore::lock_shared() { impl_->mutex.lock_shared(); }
void StoreCore::unlock_shared() { impl_->mutex.unlock_shared(); }

void StoreCore::check_record_size(std::size_t payload_bytes) const {
  const auto max = impl_->persistence.options().max_record_bytes;
  if (payload_bytes > max)
    throw error(errc::record_too_large, "command encodes to " + std::to_string(payload_bytes) +
                                            " bytes, over max_record_bytes " + std::to_string(max));
}

void StoreCore::check_accepting() const {
  const impl& s = *impl_;
  if (s.closed) throw error(errc::closed, "store in " + s.path + " is closed");
  if (s.is_replica) throw error(errc::read_only_replica, s.read_only);
  s.check_valid("store stopped accepting commands");
  if (s.persistence.journal().failed())
    throw error(errc::store_failed, "store in " + s.path +
                                        " stopped accepting commands after an I/O error; "
                                        "reopen it to go on");
  const Journal& journal = s.persistence.journal();
  if (journal.epoch() < journal.last_epoch())
    // Refused before the command runs: the state is not touched (issue 11).
    throw error(errc::stale_epoch,
                "store in " + s.path + " writes with epoch " + std::to_string(journal.epoch()) +
                    " (store_options::epoch), but its journal holds records "
                    "of epoch " +
                    std::to_string(journal.last_epoch()) + ": epochs never decrease");
}

void StoreCore::set_read_only(std::string why) {
  std::unique_lock lock(impl_->mutex);
  impl_->read_only = std::move(why);
  impl_->is_replica = true;
}

void StoreCore::fence(std::string why) {
  set_read_only(why);
  {
    std::lock_guard g(impl_->acks_mutex);
    impl_->fenced = std::move(why);
  }
  impl_->acks_cv.notify_all();
}

void StoreCore::promote(std::uint64_t epoch) {
  impl& s = *impl_;
  std::unique_lock lock(s.mutex);
  s.journal().set_epoch(epoch);  // throws stale_epoch before anything changed
  s.read_only.clear();
  s.is_replica = false;
  std::lock_guard g(s.acks_mutex);
  s.fenced.clear();
  s.replica_durable.clear();
  s.replicated_through = 0;
}

std::vector<std::pair<std::uint64_t, std::uint64_t>> StoreCore::replica_marks() const {
  std::lock_guard g(impl_->acks_mutex);
  return {impl_->replica_durable.begin(), impl_->replica_durable.end()};
}

std::uint64_t StoreCore::apply_journal(const record_visitor& replay) {
  impl& s = *impl_;
  std::unique_lock lock(s.mutex);
  s.check_valid("replicated records not applied");
  const std::uint64_t to = s.journal().durable_seq();
  if (to <= s.last_applied) return s.last_applied;
  try {
    s.journal().for_each(s.last_applied + 1, to, [&](const record_view& r) {
      replay.one(r);
      s.last_applied = r.seq;
      s.last_timestamp_ns = std::max(s.last_timestamp_ns, r.timestamp_ns);
      if (s.scheduler) s.scheduler->note_command(format::framed_size(r.payload.size()));
    });
  } catch (const std::exception& e) {
    // The state may hold part of a record: no query may see it, and nothing more is applied.
    s.state_valid = false;
    s.invalid_reason = std::string("applying replicated records failed: ") + e.what();
    throw;
  }
  return s.last_applied;
}

std::uint64_t StoreCore::apply_records(const std::vector<raw_record>& batch,
                                       const record_visitor& replay) {
  impl& s = *impl_;
  std::unique_lock lock(s.mutex);
  s.check_valid("replicated records not applied");  // they stay on disk for a reopen
  auto applied = [&](const record_view& r) {
    replay.one(r);
    s.last_applied = r.seq;
    s.last_timestamp_ns = std::max(s.last_timestamp_ns, r.timestamp_ns);
    if (s.scheduler) s.scheduler->note_command(format::framed_size(r.payload.size()));
  };
  try {
    if (!batch.empty() && batch.front().seq > s.last_applied + 1)
      s.journal().for_each(s.last_applied + 1, batch.front().seq - 1, applied);
    s.journal().visit_raw(batch, s.last_applied, "replicated batch in " + s.path, applied);
  } catch (const std::exception& e) {
    s.state_valid = false;
    s.invalid_reason = std::string("applying replicated records failed: ") + e.what();
    throw;
  }
  return s.last_applied;
}

std::shared_ptr<Journal> StoreCore::journal_handle() {
  return std::shared_ptr<Journal>(std::shared_ptr<void>(), &impl_->journal());
}

void StoreCore::replica_acked(std::uint64_t id, std::uint64_t seq) {
  impl& s = *impl_;
  const unsigned k = s.persistence.options().acks.replicas;
  {
    std::lock_guard g(s.acks_mutex);
    auto& mark = s.replica_durable[id];
    mark = std::max(mark, seq);
    if (k == 0 || s.replica_durable.size() < k) return;
    std::vector<std::uint64_t> marks;
    marks.reserve(s.replica_durable.size());
    for (const auto& [replica, durable] : s.replica_durable) marks.push_back(durable);
    std::nth_element(marks.begin(), marks.begin() + (k - 1), marks.end(), std::greater<>());
    if (marks[k - 1] <= s.replicated_through) return;
    s.replicated_through = marks[k - 1];
  }
  s.acks_cv.notify_all();
}

void StoreCore::replica_gone(std::uint64_t id) {
  std::lock_guard g(impl_->acks_mutex);
  impl_->replica_durable.erase(id);
}

unsigned StoreCore::replicas_at(std::uint64_t seq) const {
  std::lock_guard g(impl_->acks_mutex);
  unsigned n = 0;
  for (const auto& [id, durable] : impl_->replica_durable) n += durable >= seq ? 1 : 0;
  return n;
}

void StoreCore::wait_replicated(std::uint64_t seq) {
  const ack_policy& acks = impl_->persistence.options().acks;
  if (acks.replicas == 0) return;
  wait_replicated(seq, std::chrono::steady_clock::now() + acks.timeout);
}

void StoreCore::wait_replicated(std::uint64_t seq, std::chrono::steady_clock::time_point deadline) {
  impl& s = *impl_;
  const ack_policy& acks = s.persistence.options().acks;
  if (acks.replicas == 0) return;
  auto count = [&] {
    unsigned n = 0;
    for (const auto& [id, durable] : s.replica_durable) n += durable >= seq ? 1 : 0;
    return n;
  };
  std::unique_lock g(s.acks_mutex);
  if (s.acks_cv.wait_until(g, deadline,
                           [&] { return s.replicated_through >= seq || !s.fenced.empty(); })) {
    if (s.replicated_through >= seq) return;
    throw error(errc::read_only_replica,
                "store in " + s.path + ": command " + std::to_string(seq) +
                    " is applied and durable on this node, which stopped acknowledging before " +
                    "enough replicas had it (" + s.fenced + "); it may or may not survive the " +
                    "failover");
  }
  const unsigned got = count();
  throw error(errc::replication_timeout,
              "store in " + s.path + ": command " + std::to_string(seq) + " was acknowledged by " +
                  std::to_string(got) + " of the " + std::to_string(acks.replicas) +
                  " replicas that acks = replicated(" + std::to_string(acks.replicas) +
                  ") needs within " + std::to_string(acks.timeout.count()) +
                  " ms; it is applied and durable on this primary, and may still reach the "
                  "replicas");
}

Context StoreCore::next_context() const { return next_context(std::chrono::system_clock::now()); }

Context StoreCore::next_context(std::chrono::system_clock::time_point read) const {
  // Timestamps never go backwards, even if the wall clock does.
  const auto now =
      std::chrono::duration_cast<std::chrono::nanoseconds>(read.time_since_epoch()).count();
  return Context(impl_->last_applied + 1, std::max<std::int64_t>(now, impl_->last_timestamp_ns));
}

void StoreCore::apply_failed() { impl_->rebuild(impl_->last_applied); }

std::uint64_t StoreCore::append(const Context& ctx, std::string payload) {
  impl& s = *impl_;
  const std::uint64_t framed = format::framed_size(payload.size());
  std::uint64_t seq;
  try {
    seq = s.journal().append(ctx.timestamp_ns(), std::move(payload));
  } catch (...) {
    s.roll_back_to_durable(true);  // the state must not show what was not written
    throw;
  }
  s.last_applied = seq;
  s.last_timestamp_ns = ctx.timestamp_ns();
  s.scheduler->note_command(framed);
  return seq;
}

void StoreCore::wait_safe(std::uint64_t seq) {
  try {
    impl_->journal().wait(seq);
  } catch (...) {
    std::unique_lock relock(impl_->mutex);
    impl_->roll_back_to_durable();
    throw;
  }
}

void StoreCore::on_safe(std::uint64_t seq, safe_callback done) {
  impl_->journal().on_safe(seq, std::move(done));
}

bool StoreCore::roll_back_after_failure() {
  if (!impl_->journal().failed()) return false;
  std::unique_lock relock(impl_->mutex);
  impl_->roll_back_to_durable();
  return true;
}

void StoreCore::check_state_valid() const { impl_->check_valid("query refused"); }

std::uint64_t StoreCore::last_applied() const { return impl_->last_applied; }

bool StoreCore::wait_visible(std::uint64_t seen, bool retried) const {
  impl& s = *impl_;
  try {
    s.journal().wait(seen);
    return true;
  } catch (const std::exception&) {
    if (retried || !s.journal().failed()) throw;
  }
  // Queries are const to callers; dropping what never became durable is not a change
  // they can see, and the store was opened mutable: the impl is not const.
  std::unique_lock relock(s.mutex);
  s.roll_back_to_durable();
  return false;
}

void StoreCore::on_visible(std::uint64_t seen, safe_callback done) const {
  // The same mark wait_visible() waits for.
  impl_->journal().on_safe(seen, std::move(done));
}

StoreCore::capture_point StoreCore::capture() const {
  const impl& s = *impl_;
  // A state that may hold a half-applied command never becomes a snapshot.
  s.check_valid("no snapshot");
  const auto totals = s.scheduler ? s.scheduler->totals() : SnapshotScheduler::counters{};
  return {s.last_applied, s.last_timestamp_ns, totals.commands, totals.journal_bytes,
          std::chrono::steady_clock::now()};
}

namespace {
// Runs a publish, counting its failure or recording its duration and the file's size (0: a
// newer snapshot was published meanwhile, nothing written).
template <class Publish>
void measured_publish(store_meters& m, const StoreCore::capture_point& at, Publish&& publish) {
  std::uint64_t bytes = 0;
  try {
    bytes = publish();
  } catch (...) {
    m.snapshot_failures.fetch_add(1, std::memory_order_relaxed);
    throw;
  }
  if (bytes == 0) return;
  m.snapshot_ns.record(ns_between(at.taken, std::chrono::steady_clock::now()));
  m.snapshot_bytes.record(bytes);
}
}  // namespace

void StoreCore::publish_snapshot(const capture_point& at, byte_view payload) {
  impl& s = *impl_;
  measured_publish(s.meters, at, [&] {
    return s.persistence.publish_snapshot(at.seq, at.timestamp_ns, payload, s.state_version);
  });
  if (s.scheduler) s.scheduler->snapshot_taken({at.commands, at.journal_bytes});
}

void StoreCore::publish_snapshot_streamed(const capture_point& at,
                                          const std::function<nlohmann::json()>& serialize) {
  impl& s = *impl_;
  measured_publish(s.meters, at, [&] {
    return s.persistence.publish_snapshot_streamed(
        at.seq, at.timestamp_ns,
        [&](const SnapshotStore::payload_sink& sink) {
          SnapshotWriter writer(s.persistence.options().snapshot_codec);
          writer.write(serialize, sink);
        },
        s.state_version);
  });
  if (s.scheduler) s.scheduler->snapshot_taken({at.commands, at.journal_bytes});
}

void StoreCore::command_queued(metrics_clock::time_point waited, metrics_clock::time_point locked,
                               metrics_clock::time_point queued) noexcept {
  store_meters& m = impl_->meters;
  m.applied.fetch_add(1, std::memory_order_relaxed);
  m.queue_ns.record(waited == metrics_clock::time_point{} ? 0 : ns_between(waited, locked));
  m.apply_ns.record(ns_between(locked, queued));
}

void StoreCore::command_refused(bool rejected) noexcept {
  (rejected ? impl_->meters.rejected : impl_->meters.failed)
      .fetch_add(1, std::memory_order_relaxed);
}

void StoreCore::command_safe(metrics_clock::time_point queued) noexcept {
  const bool waits = impl_->persistence.options().sync.mode() != sync_policy::kind::none;
  impl_->meters.durable_ns.record(waits ? ns_between(queued, metrics_clock::now()) : 0);
}

store_metrics StoreCore::metrics() const {
  const impl& s = *impl_;
  const store_meters& m = s.meters;
  const Journal& j = s.persistence.journal();
  constexpr double ns_per_second = 1e9;
  store_metrics out;
  out.commands_applied = m.applied.load(std::memory_order_relaxed);
  out.commands_rejected = m.rejected.load(std::memory_order_relaxed);
  out.commands_failed = m.failed.load(std::memory_order_relaxed);
  out.execute_queue_seconds = m.queue_ns.read(ns_per_second);
  out.execute_apply_seconds = m.apply_ns.read(ns_per_second);
  out.execute_durable_seconds = m.durable_ns.read(ns_per_second);
  out.journal_written_bytes = j.bytes_written();
  out.journal_syncs = j.meters().syncs.load(std::memory_order_relaxed);
  out.records_per_sync = j.meters().records_per_sync.read(1);
  out.journal_sync_seconds = j.meters().sync_ns.read(ns_per_second);
  out.journal_bytes = j.bytes_held();
  out.journal_segments = j.segment_count();
  out.written_sequence = j.written_seq();
  out.durable_sequence = j.durable_seq();
  out.snapshot_seconds = m.snapshot_ns.read(ns_per_second);
  out.snapshot_bytes = m.snapshot_bytes.read(1);
  out.snapshot_failures = m.snapshot_failures.load(std::memory_order_relaxed);
  out.recovery_seconds = static_cast<double>(m.recovery_ns) / ns_per_second;
  out.recovery_snapshot_seconds = static_cast<double>(m.recovery_snapshot_ns) / ns_per_second;
  const recovery_report& r = j.recovery();
  out.recovery_replayed_records = r.replayed;
  out.recovery_torn_tails = r.torn_file.empty() ? 0 : 1;
  out.recovery_torn_bytes = r.torn_bytes;
  out.failed = failed();
  return out;
}

void StoreCore::load_from_disk(std::uint64_t upto, const snapshot_loader& load,
                               const record_visitor& replay) const {
  impl& s = *impl_;
  std::int64_t timestamp = 0;
  ReplayPipeline pipeline(replay, [&](const record_view& r) { timestamp = r.timestamp_ns; });
  s.persistence.rebuild(
      [&](byte_view payload, const format::snapshot_header& h, const std::string& file) {
        load(payload, {h.codec, h.state_version, file, h.last_seq});
        timestamp = h.timestamp_ns;
      },
      [&](const record_view& r) { pipeline.push(r); }, upto, [&] { pipeline.settle(); });
  s.last_timestamp_ns = std::max(s.last_timestamp_ns, timestamp);
  release_freed_heap();
}

const store_options& StoreCore::options() const { return impl_->persistence.options(); }
const std::string& StoreCore::path() const { return impl_->path; }
bool StoreCore::failed() const {
  return impl_->persistence.journal().failed() || !impl_->state_valid;
}
std::uint64_t StoreCore::durable_sequence() const {
  return impl_->persistence.journal().durable_seq();
}
std::uint64_t StoreCore::written_sequence() const {
  return impl_->persistence.journal().written_seq();
}
const recovery_report& StoreCore::recovery() const {
  return impl_->persistence.journal().recovery();
}
std::vector<segment_info> StoreCore::segments() const {
  return impl_->persistence.journal().segments();
}

}  // namespace prevalent::detail

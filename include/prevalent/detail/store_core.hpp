// The compiled half of a Store: everything that does not depend on the user's State and
// command types. It owns the directory lock, the journal and the snapshots (behind a pointer:
// user code sees none of their locks, threads or buffers), the state lock, sequence numbers
// and timestamps, the failure policy (a failed journal or a failed rebuild stops commands),
// automatic snapshots, and close. Store<State, Commands...> (store.hpp) is the typed shell
// around it: it encodes, validates, applies and decodes commands, holds the state, and hands
// the core type-erased callbacks to load and replay it.
//
// Not an API of its own: only Store uses it, with the protocol its members describe. All
// members may be called from any thread unless a comment names a lock the caller must hold.
#pragma once

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "prevalent/bytes.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/command.hpp"
#include "prevalent/detail/replay_hooks.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/journal_info.hpp"
#include "prevalent/metrics.hpp"
#include "prevalent/options.hpp"

namespace prevalent {
class Journal;      // lib/include/prevalent/journal.hpp (internal)
struct raw_record;  // lib/include/prevalent/replication_log.hpp (internal)
}  // namespace prevalent

namespace prevalent::detail {

// Where a snapshot payload handed to the typed loader comes from: its codec and the state
// version it was written with, and for messages its file and sequence number.
struct snapshot_source {
  prevalent::codec codec = prevalent::codec::json;
  std::uint32_t state_version = 1;
  std::string file;
  std::uint64_t last_seq = 0;
};

// Throws errc::incompatible_version, naming the state type, both versions, the snapshot's file
// and sequence number, when a snapshot of state version `from.state_version` cannot be read by
// a program at version `ours`: it is newer, or older and the state has no upgrade(). Returns
// when it can be read. `state_type` is typeid(State).name().
void check_state_version(const snapshot_source& from, std::uint32_t ours, bool has_upgrade,
                         const char* state_type);

class StoreCore {
 public:
  // Decodes a verified snapshot payload into the typed state being loaded; throws if it does
  // not decode (the snapshot is then treated as damaged), or errc::incompatible_version when
  // its state version cannot be read (the open fails).
  using snapshot_loader = std::function<void(byte_view payload, const snapshot_source& from)>;
  // Decodes and applies journal records to the typed state being loaded (replay_hooks.hpp).
  using record_visitor = replay_hooks;
  // What the core calls back into. Both run under the conditions named; neither may call
  // back into the core except as described.
  struct typed_hooks {
    // Replaces the live state with one loaded through record `upto` by load_from_disk();
    // called with the exclusive lock held. Throws if it cannot.
    std::function<void(std::uint64_t upto)> rebuild;
    // Takes a snapshot (Store::snapshot), on the automatic snapshot thread or in close().
    std::function<void()> snapshot;
  };

  // Checks the options (check_options) and locks the directory (errc::directory_in_use).
  // Snapshots record `state_version` (State::version).
  StoreCore(std::shared_ptr<Directory> dir, store_options options, std::uint32_t state_version = 1);
  // Best-effort close(): errors go to options().log.
  ~StoreCore();
  StoreCore(const StoreCore&) = delete;
  StoreCore& operator=(const StoreCore&) = delete;

  // Loads the newest usable snapshot and replays the journal after it through the loaders
  // (a long journal tail through the replay pipeline: replay_pipeline.hpp), then starts
  // automatic snapshots with `hooks`.
  void open(const snapshot_loader& load, const record_visitor& replay, typed_hooks hooks);

  // Stops automatic snapshots, takes the closing snapshot if snapshots.on_close is set, then
  // writes and syncs everything queued and stops the journal. Throws the first error (the
  // closing snapshot's, or the journal's: then commands acknowledged under `none` may be
  // lost). Later calls do nothing; commands after close fail with errc::closed.
  void close();
  // close(), best effort: an error goes to options().log.
  void close_quietly() noexcept;

  // ---- the state lock (writer-preferring): std::unique_lock / std::shared_lock on the core.
  void lock();
  bool try_lock();
  void unlock();
  void lock_shared();
  void unlock_shared();

  // ---- a command; the caller holds the exclusive lock unless said otherwise ----
  // Throws errc::record_too_large if an encoded command is over max_record_bytes (no lock).
  void check_record_size(std::size_t payload_bytes) const;
  // Throws errc::store_failed (or errc::closed) if the store accepts no commands.
  void check_accepting() const;
  // The context of the next command: its sequence number and a timestamp that never goes
  // backwards, from the wall clock read `now` (or read here).
  Context next_context() const;
  Context next_context(std::chrono::system_clock::time_point now) const;
  // apply() threw: rebuilds the state from disk (the command was never journaled).
  void apply_failed();
  // Queues the record of the command applied under `ctx`; returns its sequence number. On
  // failure the state is rolled back to what is durable and the error rethrown.
  std::uint64_t append(const Context& ctx, std::string payload);
  // Without the lock: returns once `seq` is as safe as the sync policy promises. On an I/O
  // error, rolls the state back to what is durable (taking the lock) and rethrows.
  void wait_safe(std::uint64_t seq);
  // wait_safe() as a notification, for callers that may not block (asio.hpp): calls `done`
  // exactly once, with nullptr once `seq` is as safe as the sync policy promises, or with the
  // error that stopped it. It runs at once on the calling thread if that is already decided,
  // otherwise on the journal's committer thread (or the thread closing the store): it must be
  // cheap, must not block and must not throw. After an error the caller must call
  // roll_back_after_failure(), off the committer thread, before it reports the error.
  using safe_callback = std::function<void(std::exception_ptr)>;
  void on_safe(std::uint64_t seq, safe_callback done);
  // Without the lock, after on_safe() or on_visible() reported an error: if the journal has
  // failed, takes the exclusive lock and drops what never became durable (as wait_safe() and
  // wait_visible() do; it may read the journal from disk) and returns true.
  bool roll_back_after_failure();

  // ---- a query ----
  // Under the shared lock: throws errc::store_failed if the state could not be rebuilt.
  void check_state_valid() const;
  // Under either lock: the sequence number of the last applied command.
  std::uint64_t last_applied() const;
  // Without the lock: waits until what a query saw at `seen` may be handed out (durable
  // under `always`, written under `interval`). Returns false if an I/O error made the store
  // drop commands that never became durable (the query must run again on the rolled-back
  // state); throws if that happened on a `retried` query too.
  bool wait_visible(std::uint64_t seen, bool retried) const;
  // wait_visible() as a notification, under on_safe()'s rules: `done(nullptr)` once what a
  // query saw at `seen` may be handed out. On an error: if roll_back_after_failure() returns
  // true and the query was not retried yet, it must run again on the rolled-back state;
  // otherwise the error is the query's.
  void on_visible(std::uint64_t seen, safe_callback done) const;

  // ---- a snapshot ----
  struct capture_point {
    std::uint64_t seq = 0;
    std::int64_t timestamp_ns = 0;
    std::uint64_t commands = 0, journal_bytes = 0;  // totals, for automatic snapshots
    std::chrono::steady_clock::time_point taken{};  // when, for the snapshot's duration
  };
  // Under the shared lock, beside copying the state: what the snapshot will cover. Throws if
  // the state is invalid (it may hold a half-applied command).
  capture_point capture() const;
  // Without the lock: publishes an encoded snapshot of the state at `at`, durably, then drops
  // journal segments no kept snapshot needs.
  void publish_snapshot(const capture_point& at, byte_view payload);
  // publish_snapshot() that streams: `serialize` returns the state's tree and runs with a
  // snapshot writer current (detail/snapshot_parts.hpp), so large containers that opt in
  // return placeholders; it should release the captured state before it returns. The payload
  // is written with every large container's entries encoded in parallel, byte for byte what
  // encoding the whole tree would give.
  void publish_snapshot_streamed(const capture_point& at,
                                 const std::function<nlohmann::json()>& serialize);

  // ---- rebuilds: loads the state on disk through `upto` into a fresh state (hooks.rebuild)
  void load_from_disk(std::uint64_t upto, const snapshot_loader& load,
                      const record_visitor& replay) const;

  // ---- replication (issue 11, docs/REPLICATION.md) ----
  // A replica: from now on commands fail with errc::read_only_replica and `why` (which names
  // the primary). promote() undoes it.
  void set_read_only(std::string why);
  // Failover (include/prevalent/repl/replication_node.hpp): a primary that must stop acknowledging
  // (it lost its lease, or another node was elected). Commands fail with errc::read_only_replica
  // and `why`, and every caller waiting in wait_replicated() now or later fails with the same (its
  // command is applied and durable here and may or may not survive the failover).
  void fence(std::string why);
  // A replica (or a fenced primary) becomes the primary of `epoch`, without reopening: the
  // journal writes with `epoch` from the next record on (a new segment; errc::stale_epoch if
  // below its last record's), commands are accepted again, and the replicas' marks start
  // over (acknowledgements of an earlier term do not count for this one).
  void promote(std::uint64_t epoch);
  // The replicas' durable marks (connection id -> seq), for INFO replication.
  std::vector<std::pair<std::uint64_t, std::uint64_t>> replica_marks() const;
  // A replica, after records were appended to its journal (Journal::append_raw): applies the
  // durable records after last_applied() through `replay`, read back from disk exactly as
  // recovery reads them (the same decryption and decode), under the exclusive lock, so a
  // query sees either none or all of them. Returns last_applied(). Throws what a replay of the
  // records would (the store is then failed: its state would drift from its journal).
  std::uint64_t apply_journal(const record_visitor& replay);
  // apply_journal() for a batch just appended (Journal::append_raw): the records are decoded
  // from `batch` in memory (Journal::visit_raw: the same decryption and decode as recovery,
  // without reading back the segment, which for_each would scan from its start each time).
  // Records up to last_applied() are skipped; a gap before the batch is applied from disk
  // first.
  std::uint64_t apply_records(const std::vector<raw_record>& batch, const record_visitor& replay);
  // The journal, not owned: valid until close(). For the replication server and client.
  std::shared_ptr<Journal> journal_handle();
  // A primary under acks = replicated(k): replica `id` (one per connection) reported its
  // journal durable through `seq`; replica_gone() when its connection ended.
  void replica_acked(std::uint64_t id, std::uint64_t seq);
  void replica_gone(std::uint64_t id);
  // How many connected replicas reported `seq` durable.
  unsigned replicas_at(std::uint64_t seq) const;
  // Without the lock, after wait_safe(seq): under acks = replicated(k), returns once k
  // replicas reported `seq` durable; throws errc::replication_timeout (saying how many did)
  // when acks.timeout passes first. Returns at once under acks = local.
  void wait_replicated(std::uint64_t seq);
  // The same with a deadline of the caller's (AsyncStore's waiter thread: one thread waits for
  // every pending command in turn, each until its own deadline).
  void wait_replicated(std::uint64_t seq, std::chrono::steady_clock::time_point deadline);

  // ---- metrics (metrics.hpp); the members below never block ----
  // The wall clock that stamps commands: the read a command's timestamp comes from
  // (next_context(now)) is also when it got the lock, which saves a clock read per execute
  // (a read costs about 45 ns here). A step of the system clock during a command gives that
  // command one wrong sample (a negative one counts as 0).
  using metrics_clock = std::chrono::system_clock;
  // Under the exclusive lock, once a command's record is queued: counts it applied and
  // records its queue phase (asked for the lock at `waited` .. held it at `locked`; a
  // default `waited` means the lock was free: 0, without a clock read) and its apply phase
  // (.. queued at `queued`).
  void command_queued(metrics_clock::time_point waited, metrics_clock::time_point locked,
                      metrics_clock::time_point queued) noexcept;
  // A command that threw before its record was queued: rejected (its validate() threw) or
  // failed (anything else).
  void command_refused(bool rejected) noexcept;
  // A command queued at `queued` is as safe as the sync policy promises: records its durable
  // phase (0 under `none`, without reading the clock).
  void command_safe(metrics_clock::time_point queued) noexcept;
  // The counters as a value.
  store_metrics metrics() const;

  // ---- what the store tells ----
  const store_options& options() const;
  const std::string& path() const;  // the directory, for messages
  bool failed() const;              // an I/O error or a failed rebuild stopped commands
  std::uint64_t durable_sequence() const;
  std::uint64_t written_sequence() const;
  const recovery_report& recovery() const;
  std::vector<segment_info> segments() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace prevalent::detail

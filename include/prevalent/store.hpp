// Store<State, Commands...>: the whole state of a service as one C++ object in memory, changed
// only by the listed command types, each of which is journaled before execute() returns (and
// made durable first, under the default sync policy). Opening a store loads the newest snapshot
// and replays the journal after it.
//
//   prevalent::Store<Bank, Deposit, Transfer> store{"/var/lib/bank"};
//   store.execute(Deposit{"alice", 100});                 // durable when it returns
//   auto total = store.query([](const Bank& b) { return b.total(); });
//   store.snapshot();                                     // bounds the journal
//
// State must be default-constructible, copyable (or provide `capture() const` returning
// something nlohmann can serialize, for snapshots) and serializable with nlohmann_json;
// commands are described in command.hpp. All members may be called from any thread. A Store
// owns its directory exclusively while it lives (errc::directory_in_use for a second one).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "prevalent/codec.hpp"
#include "prevalent/command.hpp"
#include "prevalent/command_envelope.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/error.hpp"
#include "prevalent/options.hpp"
#include "prevalent/persistence.hpp"
#include "prevalent/snapshot_scheduler.hpp"
#include "prevalent/writer_preferring_mutex.hpp"

namespace prevalent {

// Tag for a store that lives only in memory (see Store's constructors).
struct in_memory_t {
  explicit in_memory_t() = default;
};
inline constexpr in_memory_t in_memory{};

// A State may offer a cheaper way to be captured for a snapshot than a full copy (for example
// a persistent data structure, or shared pointers to immutable parts): `capture() const`
// returning a value nlohmann can serialize exactly as it serializes the State.
template <class S>
concept custom_capture = requires(const S& s) {
  nlohmann::json(s.capture());
};

namespace detail {
template <class>
inline constexpr bool always_false = false;
}

template <class State, class... Commands>
class Store {
  static_assert(std::default_initializable<State>,
                "prevalent: State must be default-constructible (the state of an empty store)");
  static_assert(json_serializable<State>,
                "prevalent: State must be serializable with nlohmann_json (to_json/from_json or "
                "NLOHMANN_DEFINE_TYPE_*), for snapshots");
  static_assert(sizeof...(Commands) > 0, "prevalent: list the command types: Store<State, Cmd...>");
  static_assert(
      (named_command<Commands> && ...),
      "prevalent: every command needs `static constexpr std::string_view name = \"...\";`");
  static_assert((applicable_to<Commands, State> && ...),
                "prevalent: every command needs `apply(State&, const prevalent::Context&)`");
  static_assert((serializable_command<Commands> && ...),
                "prevalent: every command must be serializable with nlohmann_json "
                "(to_json/from_json or NLOHMANN_DEFINE_TYPE_*; a command with no fields needs "
                "neither)");
  static_assert(!duplicate_command_names<Commands...>(),
                "prevalent: two commands in the store's list have the same name; names are "
                "stored in the journal and must be unique");

 public:
  // Opens (creating if needed) the store in directory `path` on the real filesystem.
  explicit Store(const std::filesystem::path& path, store_options options = {})
      : Store(open_posix_directory(path), std::move(options)) {}

  // Opens the store on any Directory implementation.
  explicit Store(std::shared_ptr<Directory> dir, store_options options = {})
      : persistence_(std::move(dir), std::move(options)),
        verify_encoding_(persistence_.options().verify_encoding),
        codec_(persistence_.options().codec) {
    persistence_.recover(snapshot_loader(state_), replayer(state_));
    last_applied_ = persistence_.journal().last_appended();
    scheduler_.emplace(
        persistence_.options().snapshots, [this] { snapshot(); }, persistence_.options().log);
  }

  // A transient store: no disk at all. Commands still go through encoding and decoding, so
  // serialization mistakes show in unit tests of the commands.
  explicit Store(in_memory_t, store_options options = {})
      : Store(make_memory_directory(), (options.verify_encoding = true, std::move(options))) {}

  // Stops automatic snapshots, takes the closing snapshot if snapshots.on_close is set, then
  // writes and syncs everything still queued (under every sync policy).
  ~Store() {
    // Join the snapshot thread before disengaging the optional: that thread reads it.
    if (scheduler_) scheduler_->stop();
    scheduler_.reset();
    if (persistence_.options().snapshots.on_close && !failed()) {
      try {
        snapshot();
      } catch (const std::exception& e) {
        if (persistence_.options().log)
          persistence_.options().log(std::string("snapshot on close failed: ") + e.what());
      }
    }
  }

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs `command`: validate() (if any) then apply() under the exclusive lock, queues its
  // record for the journal in the same order, and returns apply()'s result once the record is
  // as safe as the sync policy promises. If validate() throws, nothing changes and nothing is
  // written. If apply() throws, the state is rebuilt from disk (the command was not
  // journaled) and the exception is rethrown. If the journal write or sync fails, the error is
  // thrown, the state falls back to what is durable, and the store accepts no more commands
  // (errc::store_failed).
  template <class C>
  auto execute(const C& command) {
    if constexpr (!(std::is_same_v<C, Commands> || ...)) {
      static_assert(detail::always_false<C>,
                    "prevalent: this command type is not in the store's command list "
                    "(add it to Store<State, Commands...>)");
    } else {
      using result_t = apply_result_t<C, State>;
      // The payload does not depend on the state: encode it before taking the lock, which
      // many writers queue for.
      std::string payload = encode_command(command, codec_);
      check_size(payload);  // before apply: a refused record must leave no trace
      std::unique_lock lock(mutex_);
      throw_if_failed();
      const Context ctx(last_applied_ + 1, next_timestamp());
      if constexpr (validated_against<C, State>) command.validate(std::as_const(state_), ctx);
      C to_apply = verify_encoding_ ? decode_own<C>(payload) : command;
      std::optional<std::conditional_t<std::is_void_v<result_t>, int, result_t>> result;
      try {
        if constexpr (std::is_void_v<result_t>)
          to_apply.apply(state_, ctx), result.emplace(0);
        else
          result.emplace(to_apply.apply(state_, ctx));
      } catch (...) {
        rebuild_from_disk(last_applied_);
        throw;
      }
      const std::uint64_t framed = format::framed_size(payload.size());
      std::uint64_t seq;
      try {
        seq = persistence_.journal().append(ctx.timestamp_ns(), std::move(payload));
      } catch (...) {
        roll_back_to_durable(true);  // the state must not show what was not written
        throw;
      }
      last_applied_ = seq;
      last_timestamp_ns_ = ctx.timestamp_ns();
      scheduler_->note_command(framed);
      lock.unlock();
      try {
        persistence_.journal().wait(seq);
      } catch (...) {
        std::unique_lock relock(mutex_);
        roll_back_to_durable();
        throw;
      }
      if constexpr (!std::is_void_v<result_t>) return std::move(*result);
    }
  }

  // Runs f(const State&) under the shared lock and returns its result (by value). Under
  // `always` the result is handed back only once every command it could have seen is durable
  // (under `interval`, written to the OS), so a query never reports what a crash could still
  // undo; readers never hold the lock while they wait. `f` must not call back into the store.
  // After an I/O error the store drops what never became durable and `f` runs again on that
  // state, so queries keep working on a failed store.
  template <class F>
  auto query(F&& f) const {
    for (bool retried = false;; retried = true) {
      std::shared_lock lock(mutex_);
      if (!state_valid_)
        throw error(errc::store_failed, "state could not be rebuilt from disk; reopen the store (" +
                                            invalid_reason_ + ")");
      const std::uint64_t seen = last_applied_;
      auto answer = [&] {
        lock.unlock();
        try {
          persistence_.journal().wait(seen);
          return true;
        } catch (const std::exception&) {
          if (retried || !persistence_.journal().failed()) throw;
        }
        std::unique_lock relock(mutex_);
        roll_back_to_durable();
        return false;
      };
      if constexpr (std::is_void_v<std::invoke_result_t<F, const State&>>) {
        f(std::as_const(state_));
        if (answer()) return;
      } else {
        std::decay_t<std::invoke_result_t<F, const State&>> result = f(std::as_const(state_));
        if (answer()) return result;
      }
    }
  }

  // Publishes a snapshot of the current state, then drops journal segments no kept snapshot
  // needs. Writers wait only while the state is captured (a copy, or State::capture()); the
  // serialization and the disk writes happen without any lock.
  void snapshot() {
    auto [captured, seq, ts, counters] = capture();
    std::string payload = encode(nlohmann::json(captured), persistence_.options().snapshot_codec);
    persistence_.publish_snapshot(seq, ts, as_bytes(payload));
    if (scheduler_) scheduler_->snapshot_taken(counters);
  }

  // Sequence number of the last applied command (0 for an empty store).
  std::uint64_t last_sequence() const {
    std::shared_lock lock(mutex_);
    return last_applied_;
  }

  // What recovery found when the store was opened (torn tail cut, records replayed).
  const recovery_report& recovery() const { return persistence_.journal().recovery(); }

  // Whether an I/O error, or a rebuild of the state from disk that failed, has stopped the
  // store from accepting commands.
  bool failed() const { return persistence_.journal().failed() || !state_valid_; }

  // The journal, for inspection (segments, durable and written marks).
  const Journal& journal() const { return persistence_.journal(); }

 private:
  auto capture() const {
    std::shared_lock lock(mutex_);
    if (!state_valid_)  // it may hold a half-applied command: never make it a snapshot
      throw error(errc::store_failed, "no snapshot: the state could not be rebuilt from disk (" +
                                          invalid_reason_ + ")");
    auto counters = scheduler_ ? scheduler_->totals() : SnapshotScheduler::counters{};
    if constexpr (custom_capture<State>)
      return std::tuple(state_.capture(), last_applied_, last_timestamp_ns_, counters);
    else
      return std::tuple(State(state_), last_applied_, last_timestamp_ns_, counters);
  }

  void check_size(const std::string& payload) const {
    const auto max = persistence_.options().max_record_bytes;
    if (payload.size() > max)
      throw error(errc::record_too_large, "command encodes to " + std::to_string(payload.size()) +
                                              " bytes, over max_record_bytes " +
                                              std::to_string(max));
  }

  // The command as replay will see it. Throws errc::bad_command_payload (nothing applied or
  // written) when its own encoding does not decode: replay would fail on the record.
  template <class C>
  C decode_own(const std::string& payload) const {
    auto fail = [this](const std::string& why) {
      return error(errc::bad_command_payload, "command \"" + std::string(C::name) +
                                                  "\" does not decode from its own encoding in " +
                                                  format::codec_name(codec_) + ": " + why);
    };
    auto envelope = decode(as_bytes(payload), codec_);
    if (!envelope) throw fail("the payload does not parse (check its to_json)");
    try {
      return decode_command_args<C>(envelope->at("args"), command_version<C>());
    } catch (const nlohmann::json::exception& e) {
      throw fail(e.what());
    }
  }

  Persistence::snapshot_loader snapshot_loader(State& target) const {
    return [this, &target](byte_view payload, const format::snapshot_header& h) {
      auto decoded = decode(payload, h.codec);
      if (!decoded)
        throw std::runtime_error(std::string("not valid ") + format::codec_name(h.codec));
      target = decoded->template get<State>();
      last_timestamp_ns_ = h.timestamp_ns;
    };
  }

  Journal::visitor replayer(State& target) const {
    return [this, &target](const record_view& r) {
      replay_command<State, Commands...>(target, r);
      last_timestamp_ns_ = r.timestamp_ns;
    };
  }

  // Replaces the state with the one on disk through record `upto`. Called with the exclusive
  // lock held, after apply() threw or the journal failed.
  void rebuild_from_disk(std::uint64_t upto) const {
    try {
      State fresh{};
      persistence_.rebuild(snapshot_loader(fresh), replayer(fresh), upto);
      state_ = std::move(fresh);
    } catch (const std::exception& e) {
      state_valid_ = false;  // queries refuse rather than show a state that drifted
      invalid_reason_ = e.what();
      if (persistence_.options().log)
        persistence_.options().log("rebuilding the state from disk failed: " + invalid_reason_);
    } catch (...) {
      state_valid_ = false;
      invalid_reason_ = "unknown exception";
    }
  }

  // After an I/O error: replaces the state with the durable prefix of the journal, so that
  // nothing a crash could undo stays visible. `applied_unwritten` says the state holds a
  // command that was never queued. Called with the exclusive lock held; the journal has
  // failed, so its durable mark no longer moves.
  void roll_back_to_durable(bool applied_unwritten = false) const {
    const std::uint64_t durable = persistence_.journal().durable_seq();
    if (last_applied_ <= durable && !applied_unwritten) return;
    rebuild_from_disk(std::min(durable, last_applied_));
    last_applied_ = std::min(durable, last_applied_);
  }

  void throw_if_failed() const {
    if (!state_valid_)
      throw error(errc::store_failed, "store in " + persistence_.directory().path() +
                                          " stopped accepting commands: its state could not be "
                                          "rebuilt from disk; reopen it to go on (" +
                                          invalid_reason_ + ")");
    if (persistence_.journal().failed())
      throw error(errc::store_failed, "store in " + persistence_.directory().path() +
                                          " stopped accepting commands after an I/O error; "
                                          "reopen it to go on");
  }

  // Timestamps never go backwards, even if the wall clock does.
  std::int64_t next_timestamp() const {
    auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    return std::max<std::int64_t>(now, last_timestamp_ns_);
  }

  mutable Persistence persistence_;
  const bool verify_encoding_;
  const codec codec_;
  mutable writer_preferring_mutex mutex_;  // guards the members below
  // mutable: a query() on a store whose journal failed drops the commands that never became
  // durable (roll_back_to_durable), so the const member changes them, legitimately also on a
  // const Store. Nothing else const touches them except under the shared lock, to read.
  mutable State state_{};
  mutable std::uint64_t last_applied_ = 0;
  mutable std::int64_t last_timestamp_ns_ = 0;
  mutable std::atomic<bool> state_valid_ = true;  // atomic: failed() reads it without the lock
  mutable std::string invalid_reason_;            // why the rebuild failed
  std::optional<SnapshotScheduler> scheduler_;    // last: its thread calls snapshot()
};

}  // namespace prevalent

// Store<State, Commands...>: the whole state of a service as one C++ object in memory, changed
// only by the listed command types, each of which is journaled and made durable before
// execute() returns. Opening a store loads the newest snapshot and replays the journal after it.
//
//   prevalent::Store<Bank, Deposit, Transfer> store{"/var/lib/bank"};
//   store.execute(Deposit{"alice", 100});                 // durable when it returns
//   auto total = store.query([](const Bank& b) { return b.total(); });
//   store.snapshot();                                     // bounds the journal
//
// State must be default-constructible and serializable with nlohmann_json; commands are
// described in command.hpp. All members may be called from any thread. A Store owns its
// directory exclusively while it lives (a second Store on it fails with errc::directory_in_use).
#pragma once

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "prevalent/command.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/error.hpp"
#include "prevalent/options.hpp"
#include "prevalent/persistence.hpp"
#include "prevalent/writer_preferring_mutex.hpp"

namespace prevalent {

// Tag for a store that lives only in memory (see Store's constructors).
struct in_memory_t {
  explicit in_memory_t() = default;
};
inline constexpr in_memory_t in_memory{};

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
  static_assert((json_serializable<Commands> && ...),
                "prevalent: every command must be serializable with nlohmann_json "
                "(to_json/from_json or NLOHMANN_DEFINE_TYPE_*)");

 public:
  // Opens (creating if needed) the store in directory `path` on the real filesystem.
  explicit Store(const std::filesystem::path& path, store_options options = {})
      : Store(open_posix_directory(path), std::move(options)) {}

  // Opens the store on any Directory implementation.
  explicit Store(std::shared_ptr<Directory> dir, store_options options = {})
      : persistence_(std::move(dir), std::move(options)),
        verify_encoding_(persistence_.options().verify_encoding) {
    persistence_.recover(snapshot_loader(state_), replayer(state_));
    last_applied_ = persistence_.journal().last_appended();
  }

  // A transient store: no disk at all. Commands still go through encoding and decoding, so
  // serialization mistakes show in unit tests of the commands.
  explicit Store(in_memory_t, store_options options = {})
      : Store(make_memory_directory(), (options.verify_encoding = true, std::move(options))) {}

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Runs `command`: validate() (if any) then apply() under the exclusive lock, journals it,
  // and returns apply()'s result once the record is durable. If validate() throws, nothing
  // changes and nothing is written. If apply() throws, the state is rebuilt from disk (the
  // command was not journaled) and the exception is rethrown. If the journal write or sync
  // fails, the error is thrown and the store accepts no more commands (errc::store_failed).
  template <class C>
  auto execute(const C& command) {
    if constexpr (!(std::is_same_v<C, Commands> || ...)) {
      static_assert(detail::always_false<C>,
                    "prevalent: this command type is not in the store's command list "
                    "(add it to Store<State, Commands...>)");
    } else {
      using result_t = apply_result_t<C, State>;
      std::unique_lock lock(mutex_);
      throw_if_failed();
      const Context ctx(last_applied_ + 1, next_timestamp());
      if constexpr (validated_against<C, State>) command.validate(std::as_const(state_), ctx);
      const std::string payload = encode(command);
      C to_apply =
          verify_encoding_ ? decode<C>(nlohmann::json::parse(payload).at("args"), 0, 0) : command;
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
      std::uint64_t seq;
      try {
        seq = persistence_.append(ctx.timestamp_ns(), as_bytes(payload));
      } catch (...) {
        roll_back_to_durable(true);  // the state must not show what was not written
        throw;
      }
      last_applied_ = seq;
      last_timestamp_ns_ = ctx.timestamp_ns();
      lock.unlock();
      try {
        persistence_.sync_through(seq);
      } catch (...) {
        std::unique_lock relock(mutex_);
        roll_back_to_durable();
        throw;
      }
      if constexpr (!std::is_void_v<result_t>) return std::move(*result);
    }
  }

  // Runs f(const State&) under the shared lock and returns its result (by value). The result
  // is handed back only once every command it could have seen is durable, so a query never
  // reports what a crash could still undo. `f` must not call back into the store. After an
  // I/O error the store drops what never became durable and `f` runs again on that state, so
  // queries keep working on a failed store.
  template <class F>
  auto query(F&& f) const {
    for (bool retried = false;; retried = true) {
      std::shared_lock lock(mutex_);
      if (!state_valid_)
        throw error(errc::store_failed,
                    "state could not be rebuilt after an I/O error; reopen the store");
      const std::uint64_t seen = last_applied_;
      auto answer = [&] {
        lock.unlock();
        try {
          persistence_.sync_through(seen);
          return true;
        } catch (const std::exception&) {
          if (retried || !persistence_.journal().failed()) throw;
        }
        std::unique_lock relock(mutex_);
        // Queries are const to callers; dropping undurable commands is not a change they see.
        const_cast<Store*>(this)->roll_back_to_durable();
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

  // Publishes a snapshot of the current state and drops journal segments it makes
  // unnecessary. Writers wait while the state is serialized.
  void snapshot() {
    std::lock_guard one_at_a_time(snapshot_mutex_);
    std::string payload;
    std::uint64_t seq;
    std::int64_t ts;
    {
      std::shared_lock lock(mutex_);
      payload = nlohmann::json(state_).dump();
      seq = last_applied_;
      ts = last_timestamp_ns_;
    }
    persistence_.sync_through(seq);  // a snapshot never covers what is not durable
    persistence_.publish_snapshot(seq, ts, as_bytes(payload));
  }

  // Sequence number of the last applied command (0 for an empty store).
  std::uint64_t last_sequence() const {
    std::shared_lock lock(mutex_);
    return last_applied_;
  }

  // What recovery found when the store was opened (torn tail cut, records replayed).
  const recovery_report& recovery() const { return persistence_.journal().recovery(); }

  // Whether an I/O error has stopped the store from accepting commands.
  bool failed() const { return persistence_.journal().failed(); }

 private:
  static std::string encode(const auto& command) {
    using C = std::decay_t<decltype(command)>;
    // Written by hand rather than through a json object so the name comes first and no
    // intermediate tree is built: {"cmd":"<name>","v":<version>,"args":<command>}.
    std::string out = "{\"cmd\":";
    out += nlohmann::json(std::string_view(C::name)).dump();
    out += ",\"v\":" + std::to_string(command_version<C>()) + ",\"args\":";
    out += nlohmann::json(command).dump();
    out += '}';
    return out;
  }

  template <class C>
  static C decode(nlohmann::json args, int version, std::uint64_t) {
    if constexpr (upgradable<C>) {
      if (version != 0 && version < command_version<C>()) C::upgrade(args, version);
    }
    return args.get<C>();
  }

  static std::string where(const record_view& r) {
    return r.file + " at offset " + std::to_string(r.offset) + ": record " + std::to_string(r.seq);
  }

  // Applies one journal record to `state`: decodes the envelope and dispatches on the name.
  static void replay_record(State& state, const record_view& r) {
    nlohmann::json envelope = nlohmann::json::parse(as_chars(r.payload), nullptr, false);
    if (envelope.is_discarded() || !envelope.is_object() || !envelope.contains("cmd") ||
        !envelope["cmd"].is_string() || !envelope.contains("args"))
      throw error(errc::bad_command_payload,
                  where(r) + ": payload is not a command envelope {\"cmd\", \"v\", \"args\"}");
    const std::string name = envelope["cmd"].get<std::string>();
    const int version = envelope.value("v", 1);
    const Context ctx(r.seq, r.timestamp_ns);
    bool known = (try_replay<Commands>(state, name, version, envelope["args"], ctx, r) || ...);
    if (!known)
      throw error(errc::unknown_command, where(r) + ": unknown command \"" + name +
                                             "\" (this store knows: " + known_names() + ")");
  }

  template <class C>
  static bool try_replay(State& state, const std::string& name, int version,
                         const nlohmann::json& args, const Context& ctx, const record_view& r) {
    if (name != std::string_view(C::name)) return false;
    if (version > command_version<C>())
      throw error(errc::bad_command_payload,
                  where(r) + ": command \"" + name + "\" has version " + std::to_string(version) +
                      ", newer than this program's " + std::to_string(command_version<C>()));
    C command = [&] {
      try {
        return decode<C>(args, version, r.seq);
      } catch (const nlohmann::json::exception& e) {
        throw error(errc::bad_command_payload,
                    where(r) + ": arguments of \"" + name + "\" do not decode: " + e.what());
      }
    }();
    command.apply(state, ctx);
    return true;
  }

  static std::string known_names() {
    std::string out;
    ((out += (out.empty() ? "" : ", ") + std::string(Commands::name)), ...);
    return out;
  }

  Persistence::snapshot_loader snapshot_loader(State& target) {
    return [this, &target](byte_view payload, std::uint64_t, std::int64_t ts) {
      target = nlohmann::json::parse(as_chars(payload)).get<State>();
      last_timestamp_ns_ = ts;
    };
  }

  Journal::visitor replayer(State& target) {
    return [this, &target](const record_view& r) {
      replay_record(target, r);
      last_timestamp_ns_ = r.timestamp_ns;
    };
  }

  // Replaces the state with the one on disk through record `upto`. Called with the exclusive
  // lock held, after apply() threw or the journal failed.
  void rebuild_from_disk(std::uint64_t upto) {
    try {
      State fresh{};
      persistence_.rebuild(snapshot_loader(fresh), replayer(fresh), upto);
      state_ = std::move(fresh);
    } catch (...) {
      state_valid_ = false;  // queries refuse rather than show a state that drifted
    }
  }

  // After an I/O error: replaces the state with the durable prefix of the journal, so that
  // nothing a crash could undo stays visible. `applied_unwritten` says the state holds a
  // command that was never journaled. Called with the exclusive lock held.
  void roll_back_to_durable(bool applied_unwritten = false) {
    // Wait for a sync in flight: it may still make (and acknowledge) more commands durable.
    const std::uint64_t durable = persistence_.journal().settled_durable_seq();
    if (last_applied_ <= durable && !applied_unwritten) return;
    rebuild_from_disk(durable);
    last_applied_ = durable;
  }

  void throw_if_failed() const {
    if (persistence_.journal().failed() || !state_valid_)
      throw error(errc::store_failed,
                  "store in " + const_cast<Persistence&>(persistence_).directory().path() +
                      " stopped accepting commands after an I/O error; reopen it to go on");
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
  mutable writer_preferring_mutex mutex_;  // guards everything below
  State state_{};
  std::uint64_t last_applied_ = 0;
  std::int64_t last_timestamp_ns_ = 0;
  bool state_valid_ = true;
  std::mutex snapshot_mutex_;
};

}  // namespace prevalent

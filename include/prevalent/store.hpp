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
// It is movable (a service can hold one in a member and hand it over); a moved-from Store may
// only be destroyed or assigned to. The work that does not depend on State lives in compiled
// code (store_core.hpp); this header is the typed shell.
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
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <variant>

#include <nlohmann/json.hpp>

#include "prevalent/codec.hpp"
#include "prevalent/command.hpp"
#include "prevalent/detail/command_envelope.hpp"
#include "prevalent/detail/snapshot_load.hpp"
#include "prevalent/detail/store_core.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/error.hpp"
#include "prevalent/metrics.hpp"
#include "prevalent/options.hpp"
#include "prevalent/state.hpp"

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

// The step of a command that threw, for callers that report failures by error code
// (asio.hpp): `prepare` is encoding and the checks before the lock, `accept` the store's own
// checks under it (closed, failed), `validate` and `apply` the command's, `queue` the append.
enum class command_step { prepare, accept, validate, apply, queue };

// apply()'s result as a value: std::monostate for a command that returns nothing.
template <class R>
using result_slot = std::conditional_t<std::is_void_v<R>, std::monostate, R>;
}  // namespace detail

// The Asio adapter (asio.hpp, opt-in) drives a Store through its internals.
template <class State, class... Commands>
class AsyncStore;
// A read-only view of a past state (time_travel.hpp).
template <class State, class... Commands>
class StoreView;
namespace detail {
// How time travel and the determinism check load and replay a state exactly as a Store does
// (detail/store_access.hpp).
template <class State, class... Commands>
struct store_access;
}  // namespace detail

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
  static_assert((well_formed_aliases<Commands> && ...),
                "prevalent: a command's `aliases` must be a constant array of its earlier names, "
                "e.g. static constexpr std::array<std::string_view, 1> aliases{\"old_name\"};");
  static_assert(!duplicate_command_names<Commands...>(),
                "prevalent: two commands in the store's list have the same name (or a name and "
                "an alias are equal); names are stored in the journal and replay must find one "
                "command for each");

  struct impl;
  template <class, class...>
  friend class AsyncStore;
  template <class, class...>
  friend struct detail::store_access;

 public:
  // A past state of such a store, read-only (time travel: time_travel.hpp, included by
  // prevalent.hpp): `Store<S, C...>::view then(path, prevalent::as_of{.seq = 42});`
  using view = StoreView<State, Commands...>;

  // Opens (creating if needed) the store in directory `path` on the real filesystem, with the
  // file modes of `options` (options is copied, not moved: the arguments' order is unspecified).
  explicit Store(const std::filesystem::path& path, store_options options = {})
      : Store(open_posix_directory(path, modes_of(options)), options) {}

  // Opens the store on any Directory implementation.
  explicit Store(std::shared_ptr<Directory> dir, store_options options = {})
      : impl_(std::make_unique<impl>(std::move(dir), std::move(options))) {
    impl_->open();
  }

  // A transient store: no disk at all. Commands still go through encoding and decoding, so
  // serialization mistakes show in unit tests of the commands.
  explicit Store(in_memory_t, store_options options = {})
      : Store(make_memory_directory(), (options.verify_encoding = true, std::move(options))) {}

  // close(), best effort: an error goes to store_options::log.
  ~Store() = default;
  Store(Store&&) noexcept = default;
  Store& operator=(Store&&) noexcept = default;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Stops automatic snapshots, takes the closing snapshot if snapshots.on_close is set, then
  // writes and syncs everything still queued (under every sync policy) and releases the
  // directory's journal. Throws what failed (the closing snapshot, or the final sync: then
  // commands acknowledged under `none` may be lost). Later calls do nothing; execute() after
  // close() fails with errc::closed. Queries still answer.
  void close() { impl_->core.close(); }

  // Runs `command`: validate() (if any) then apply() under the exclusive lock, queues its
  // record for the journal in the same order, and returns apply()'s result once the record is
  // as safe as the sync policy promises (and, under store_options::acks = replicated(k), on k
  // replicas: errc::replication_timeout otherwise, the command applied and durable locally). If
  // validate() throws, nothing changes and nothing is written. If apply() throws, the state is
  // rebuilt from disk (the command was not journaled) and the exception is rethrown. If the journal
  // write or sync fails, the error is thrown, the state falls back to what is durable, and the
  // store accepts no more commands (errc::store_failed).
  template <class C>
  auto execute(const C& command) {
    if constexpr (!(std::is_same_v<C, Commands> || ...)) {
      static_assert(detail::always_false<C>,
                    "prevalent: this command type is not in the store's command list "
                    "(add it to Store<State, Commands...>)");
    } else {
      return impl_->execute(command);
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
    return impl_->query(std::forward<F>(f));
  }

  // Publishes a snapshot of the current state, then drops journal segments no kept snapshot
  // needs. Writers wait only while the state is captured (a copy, or State::capture()); the
  // serialization and the disk writes happen without any lock.
  void snapshot() { impl_->snapshot(); }

  // Sequence number of the last applied command (0 for an empty store).
  std::uint64_t last_sequence() const {
    std::shared_lock lock(impl_->core);
    return impl_->core.last_applied();
  }
  // The highest sequence number on stable storage, and the highest written to the OS.
  std::uint64_t durable_sequence() const { return impl_->core.durable_sequence(); }
  std::uint64_t written_sequence() const { return impl_->core.written_sequence(); }

  // What recovery found when the store was opened (torn tail cut, records replayed).
  const recovery_report& recovery() const { return impl_->core.recovery(); }
  // The journal's segments on disk, oldest first.
  std::vector<segment_info> segments() const { return impl_->core.segments(); }
  // The options the store was opened with.
  const store_options& options() const { return impl_->core.options(); }

  // Whether an I/O error, or a rebuild of the state from disk that failed, has stopped the
  // store from accepting commands.
  bool failed() const { return impl_->core.failed(); }

  // Counters and histograms of what the store did since it opened (metrics.hpp): read from
  // relaxed atomics, without the state lock, so it never waits for a command or the disk.
  store_metrics metrics() const { return impl_->core.metrics(); }

 private:
  // Everything lives behind one pointer, at a fixed address: the core's callbacks point into
  // it, so the Store itself can move.
  struct impl {
    detail::StoreCore core;
    const bool verify_encoding;
    const codec journal_codec;
    State state{};

    impl(std::shared_ptr<Directory> dir, store_options options)
        : core(std::move(dir), std::move(options), state_version<State>()),
          verify_encoding(core.options().verify_encoding),
          journal_codec(core.options().codec) {}
    // The core's closing snapshot reads `state`: close (best effort, errors to the log) while
    // it is still there.
    ~impl() { core.close_quietly(); }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    void open() {
      core.open(loader(state), replayer(state),
                {[this](std::uint64_t upto) { rebuild(upto); }, [this] { snapshot(); }});
    }

    template <class C>
    auto execute(const C& command) {
      detail::command_step at{};
      detail::StoreCore::metrics_clock::time_point queued;
      auto [seq, result] = apply_and_queue(command, at, queued);
      core.wait_safe(seq);
      core.command_safe(queued);
      core.wait_replicated(seq);  // acks = replicated(k); at once under local
      if constexpr (!std::is_void_v<apply_result_t<C, State>>) return std::move(*result);
    }

    // execute() up to the wait: validates and applies `command` under the exclusive lock and
    // queues its record; returns its sequence number and apply()'s result, and sets `queued`
    // to when the record was queued. `at` tells which step threw, if one did (the exceptions
    // are execute()'s). Counts the command in the metrics as applied, rejected or failed.
    template <class C>
    auto apply_and_queue(const C& command, detail::command_step& at,
                         detail::StoreCore::metrics_clock::time_point& queued)
        -> std::pair<std::uint64_t, std::optional<detail::result_slot<apply_result_t<C, State>>>> {
      try {
        return apply_and_queue_counted(command, at, queued);
      } catch (...) {
        core.command_refused(at == detail::command_step::validate);
        throw;
      }
    }

    template <class C>
    auto apply_and_queue_counted(const C& command, detail::command_step& at,
                                 detail::StoreCore::metrics_clock::time_point& queued)
        -> std::pair<std::uint64_t, std::optional<detail::result_slot<apply_result_t<C, State>>>> {
      using result_t = apply_result_t<C, State>;
      using metrics_clock = detail::StoreCore::metrics_clock;
      at = detail::command_step::prepare;
      // The payload does not depend on the state: encode it before taking the lock, which
      // many writers queue for.
      std::string payload = encode_command(command, journal_codec);
      core.check_record_size(payload.size());  // before apply: a refused record leaves no trace
      // Clock reads for the metrics: none for the queue phase when the lock is free, and the
      // one after the lock is also the command's timestamp.
      std::unique_lock lock(core, std::try_to_lock);
      metrics_clock::time_point waited{};
      if (!lock.owns_lock()) {
        waited = metrics_clock::now();
        lock.lock();
      }
      const auto locked = metrics_clock::now();
      at = detail::command_step::accept;
      core.check_accepting();
      const Context ctx = core.next_context(locked);
      at = detail::command_step::validate;
      if constexpr (validated_against<C, State>) command.validate(std::as_const(state), ctx);
      at = detail::command_step::prepare;
      C to_apply = verify_encoding ? decode_own<C>(payload) : command;
      std::optional<detail::result_slot<result_t>> result;
      at = detail::command_step::apply;
      try {
        if constexpr (std::is_void_v<result_t>)
          to_apply.apply(state, ctx), result.emplace();
        else
          result.emplace(to_apply.apply(state, ctx));
      } catch (...) {
        // The state may be half-changed: rebuild it from disk, unless the command promised
        // that a throwing apply() changes nothing (atomic_apply in command.hpp).
        if constexpr (!atomic_apply<C>()) core.apply_failed();
        throw;
      }
      at = detail::command_step::queue;
      const std::uint64_t seq = core.append(ctx, std::move(payload));
      queued = metrics_clock::now();
      core.command_queued(waited, locked, queued);
      return {seq, std::move(result)};
    }

    template <class F>
    auto query(F&& f) {
      for (bool retried = false;; retried = true) {
        std::shared_lock lock(core);
        core.check_state_valid();
        const std::uint64_t seen = core.last_applied();
        if constexpr (std::is_void_v<std::invoke_result_t<F, const State&>>) {
          f(std::as_const(state));
          lock.unlock();
          if (core.wait_visible(seen, retried)) return;
        } else {
          std::decay_t<std::invoke_result_t<F, const State&>> result = f(std::as_const(state));
          lock.unlock();
          if (core.wait_visible(seen, retried)) return result;
        }
      }
    }

    // The captured state becomes a tree (large containers that opt in leave placeholders,
    // detail/snapshot_parts.hpp) and is released at once; the writer streams the payload.
    void snapshot() {
      auto captured = capture();
      std::optional<typename decltype(captured)::first_type> held(std::move(captured.first));
      core.publish_snapshot_streamed(captured.second, [&held] {
        nlohmann::json tree(*held);
        held.reset();
        return tree;
      });
    }

    auto capture() {
      std::shared_lock lock(core);
      const auto at = core.capture();
      if constexpr (custom_capture<State>)
        return std::pair(state.capture(), at);
      else
        return std::pair(State(state), at);
    }

    // The command as replay will see it. Throws errc::bad_command_payload (nothing applied or
    // written) when its own encoding does not decode: replay would fail on the record.
    template <class C>
    C decode_own(const std::string& payload) const {
      auto fail = [this](const std::string& why) {
        return error(errc::bad_command_payload, "command \"" + std::string(C::name) +
                                                    "\" does not decode from its own encoding in " +
                                                    codec_name(journal_codec) + ": " + why);
      };
      auto envelope = decode(as_bytes(payload), journal_codec);
      if (!envelope) throw fail("the payload does not parse (check its to_json)");
      try {
        return decode_command_args<C>(envelope->at("args"), command_version<C>());
      } catch (const nlohmann::json::exception& e) {
        throw fail(e.what());
      }
    }

    // Decodes a snapshot into `target`: streamed when it has this program's state version;
    // an older one as one tree, through State::upgrade (state.hpp).
    static detail::StoreCore::snapshot_loader loader(State& target) {
      return [&target](byte_view payload, const detail::snapshot_source& from) {
        constexpr std::uint32_t ours = state_version<State>();
        if (from.state_version == ours) {
          detail::load_snapshot_payload(payload, from.codec, [&target](const nlohmann::json& tree) {
            target = tree.get<State>();
          });
          return;
        }
        detail::check_state_version(from, ours, upgradable_state<State>, typeid(State).name());
        if constexpr (upgradable_state<State>) {
          nlohmann::json tree = detail::decode_snapshot_tree(payload, from.codec);
          State::upgrade(tree, static_cast<int>(from.state_version));
          target = tree.get<State>();
        }
      };
    }

    // Decodes and applies journal records to `target`: one at a time, or in batches through
    // the replay pipeline (decoded_slots, command_envelope.hpp).
    static detail::StoreCore::record_visitor replayer(State& target) {
      return {[&target](const record_view& r) { replay_command<State, Commands...>(target, r); },
              [&target]() -> std::unique_ptr<detail::command_slots> {
                return std::make_unique<decoded_slots<State, Commands...>>(target);
              }};
    }

    // The core's rebuild hook: a fresh state loaded from disk replaces the live one.
    void rebuild(std::uint64_t upto) {
      State fresh{};
      core.load_from_disk(upto, loader(fresh), replayer(fresh));
      state = std::move(fresh);
    }
  };

  std::unique_ptr<impl> impl_;
};

}  // namespace prevalent

// What a command is. A command is a plain struct that nlohmann_json can serialize, with
//
//   static constexpr std::string_view name = "create_session";  // stable, stored in the journal
//   static constexpr std::array<std::string_view, 1> aliases{"start_session"};  // optional:
//                                                       // earlier names, read by replay
//   static constexpr int version = 1;                            // optional, defaults to 1
//   R apply(State&, const prevalent::Context&);                   // R may be void
//   void validate(const State&, const prevalent::Context&) const; // optional; throw to reject
//   static void upgrade(nlohmann::json& args, int from_version);  // for records of older versions
//   static constexpr bool atomic_apply = true;                    // optional; see below
//
// apply() must be deterministic: everything it needs comes from the command's fields, the
// state and the Context (never the clock, a random generator or the environment), so that
// replaying the journal rebuilds exactly the state the live store had.
//
// Records keep the name and version they were written with. Replay finds a record's command by
// its name or one of the command's aliases (a renamed command lists its earlier names), and
// passes the arguments of an older version through upgrade() before from_json. A record of a
// newer version than the command's, or of an older one when the command has no upgrade(),
// fails the open with errc::incompatible_version (README, "Changing a command or the state").
#pragma once

#include <array>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace prevalent {

// Facts fixed when a command is accepted and stored with it in the journal, so that replay
// sees the same values as the live execution.
class Context {
 public:
  Context(std::uint64_t sequence, std::int64_t timestamp_ns) noexcept
      : sequence_(sequence), timestamp_ns_(timestamp_ns) {}

  // The command's journal sequence number (1, 2, 3, ... without gaps).
  std::uint64_t sequence() const noexcept { return sequence_; }
  // When the command was accepted. Use this instead of reading the clock.
  std::chrono::system_clock::time_point now() const noexcept {
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(
            std::chrono::nanoseconds(timestamp_ns_)));
  }
  std::int64_t timestamp_ns() const noexcept { return timestamp_ns_; }

 private:
  std::uint64_t sequence_;
  std::int64_t timestamp_ns_;
};

template <class C>
concept named_command = requires {
  { C::name } -> std::convertible_to<std::string_view>;
};

template <class C, class State>
concept applicable_to = requires(C& c, State& s, const Context& ctx) {
  c.apply(s, ctx);
};

template <class C>
concept json_serializable = std::copy_constructible<C> && requires(nlohmann::json& j, const C& c) {
  nlohmann::json(c);
  j.get<C>();
};

template <class C, class State>
concept validated_against = requires(const C& c, const State& s, const Context& ctx) {
  c.validate(s, ctx);
};

template <class C>
concept upgradable = requires(nlohmann::json& args, int v) {
  C::upgrade(args, v);
};

template <class C>
concept json_encodable = requires(const C& c) {
  nlohmann::json(c);
};

// A command with no fields needs no serialization code: without a to_json of its own, its
// arguments are encoded as the empty object {} and decoded from any object.
template <class C>
concept empty_command = std::is_empty_v<C> && std::default_initializable<C> &&
    std::copy_constructible<C> && !json_encodable<C>;

template <class C>
concept serializable_command = json_serializable<C> || empty_command<C>;

// A type Store<State, ...> accepts as a command.
template <class C, class State>
concept command_for = named_command<C> && applicable_to<C, State> && serializable_command<C>;

// A command that declares `aliases`, a constant array of its earlier names.
template <class C>
concept aliased_command = requires {
  std::size(C::aliases);
  { C::aliases[0] } -> std::convertible_to<std::string_view>;
};

// A command without `aliases`, or with a well-formed one.
template <class C>
concept declares_aliases = requires {
  C::aliases;
};
template <class C>
concept well_formed_aliases = !declares_aliases<C> || aliased_command<C>;

// How many earlier names command C lists (0 without `aliases`).
template <class C>
constexpr std::size_t alias_count() {
  if constexpr (aliased_command<C>)
    return std::size(C::aliases);
  else
    return 0;
}

// Whether `stored` (a record's command name) is C's name or one of its aliases.
template <class C>
constexpr bool command_answers_to(std::string_view stored) {
  if (stored == std::string_view(C::name)) return true;
  if constexpr (aliased_command<C>) {
    for (const auto& alias : C::aliases)
      if (stored == std::string_view(alias)) return true;
  }
  return false;
}

// Whether two of the commands share a name or an alias, or a command lists its own name as an
// alias (names are what the journal stores, so replay must find exactly one command for each).
// False when some command has no name: that is reported on its own.
template <class... Commands>
constexpr bool duplicate_command_names() {
  if constexpr ((named_command<Commands> && ...)) {
    std::array<std::string_view, (std::size_t{0} + ... + (1 + alias_count<Commands>()))> names{};
    std::size_t n = 0;
    auto add = [&]<class C>(C*) {
      names[n++] = std::string_view(C::name);
      if constexpr (aliased_command<C>)
        for (const auto& alias : C::aliases) names[n++] = std::string_view(alias);
    };
    (add(static_cast<Commands*>(nullptr)), ...);
    for (std::size_t i = 0; i < names.size(); ++i)
      for (std::size_t j = i + 1; j < names.size(); ++j)
        if (names[i] == names[j]) return true;
  }
  return false;
}

// A command may promise that its apply() leaves the state exactly as it was when it throws
// (it checks everything before it changes anything):
//   static constexpr bool atomic_apply = true;
// The store then skips the rebuild from disk that otherwise follows a throwing apply(): that
// rebuild holds the exclusive lock for as long as opening the store takes (bench/ section
// "rebuild": 2.6 s from a journal of 1,000,000 sessions, 3.9 s from their JSON snapshot).
// A command that breaks the promise leaves its partial change in the live state.
template <class C>
constexpr bool atomic_apply() {
  if constexpr (requires { C::atomic_apply; })
    return C::atomic_apply;
  else
    return false;
}

template <class C>
constexpr int command_version() {
  if constexpr (requires { C::version; })
    return C::version;
  else
    return 1;
}

template <class C, class State>
using apply_result_t =
    decltype(std::declval<C&>().apply(std::declval<State&>(), std::declval<const Context&>()));

}  // namespace prevalent

// What a State may declare besides being serializable (store.hpp has the rest):
//
//   static constexpr int version = 2;                             // optional, defaults to 1
//   static void upgrade(nlohmann::json& state, int from_version); // optional; older snapshots
//
// Every snapshot records the state version it was written with. Opening a store whose newest
// snapshot has an older version decodes it as one JSON tree, passes it to upgrade() with that
// version, and only then to from_json; a snapshot of a newer version than the program's, or an
// older one when there is no upgrade(), fails the open with errc::incompatible_version. README,
// "Changing a command or the state", has the steps.
#pragma once

#include <cstdint>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace prevalent {

// The version a State declares with `static constexpr int version` (a static member, so a
// state with a data member called `version` is not mistaken for one), or 1.
template <class S>
constexpr std::uint32_t state_version() {
  if constexpr (requires { S::version; }) {
    if constexpr (!std::is_member_pointer_v<decltype(&S::version)>) {
      static_assert(
          std::is_integral_v<std::remove_cvref_t<decltype(S::version)>> && S::version >= 1,
          "prevalent: State::version must be an integer constant of at least 1");
      return static_cast<std::uint32_t>(S::version);
    } else {
      return 1;
    }
  } else {
    return 1;
  }
}

// A State with `static void upgrade(nlohmann::json&, int from_version)`.
template <class S>
concept upgradable_state = requires(nlohmann::json& j, int v) {
  S::upgrade(j, v);
};

}  // namespace prevalent

// What time travel (time_travel.hpp) and the determinism check (determinism.hpp) borrow from
// Store<State, Commands...>: loading a snapshot payload into a state and replaying journal
// records onto it exactly as the store's own open does, and serializing a state exactly as
// Store::snapshot() does. Naming it instantiates the Store, so its checks of State and
// Commands apply. Not an API of its own.
#pragma once

#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "prevalent/codec.hpp"
#include "prevalent/detail/history_core.hpp"
#include "prevalent/store.hpp"

namespace prevalent::detail {

template <class State, class... Commands>
struct store_access {
  using impl = typename Store<State, Commands...>::impl;

  static StoreCore::snapshot_loader loader(State& target) { return impl::loader(target); }
  static StoreCore::record_visitor replayer(State& target) { return impl::replayer(target); }
  // A store's compiled half and live state (replication: include/prevalent/repl/replica.hpp).
  static StoreCore& core(Store<State, Commands...>& s) { return s.impl_->core; }
  static State& state(Store<State, Commands...>& s) { return s.impl_->state; }

  // The snapshot payload of `state` in codec `c`, as Store::snapshot() would write it: the
  // state is captured (State::capture(), or a copy) and serialized with a snapshot writer
  // current, so large containers are written in parts.
  static bytes serialize(const State& state, codec c) {
    auto captured = [&] {
      if constexpr (custom_capture<State>)
        return state.capture();
      else
        return State(state);
    }();
    std::optional<decltype(captured)> held(std::move(captured));
    bytes out;
    serialize_state(
        c,
        [&held] {
          nlohmann::json tree(*held);
          held.reset();
          return tree;
        },
        [&out](byte_view piece) { out.insert(out.end(), piece.begin(), piece.end()); });
    return out;
  }
};

}  // namespace prevalent::detail

// `prevalent snapshot-dump DIR [--seq N]`: the state a snapshot holds, as JSON (the newest
// snapshot by default, or the one whose last sequence number is N).
#include <unistd.h>

#include "commands.hpp"
#include "common.hpp"
#include "prevalent/codec.hpp"

namespace prevalent::tool {

nlohmann::json snapshot_state(const StoreDir& store, const store_file& s) {
  const auto loaded = store.load_snapshot(s);
  auto state = prevalent::decode(loaded.payload, loaded.header.codec);
  if (!state)
    throw tool_error(exit_damaged, store.describe(s.name) + ": the state does not decode as " +
                                       codec_name(loaded.header.codec));
  return std::move(*state);
}

int run_snapshot_dump(const snapshot_dump_args& a) {
  const StoreDir store(a.dir, a.key_file);
  const auto& snaps = store.snapshots();
  if (snaps.empty()) throw tool_error(exit_usage, a.dir + ": the store holds no snapshot");
  const store_file* which = &snaps.back();
  if (a.seq) {
    which = nullptr;
    std::string held;
    for (const auto& s : snaps) {
      if (s.seq == *a.seq) which = &s;
      held += (held.empty() ? "" : ", ") + std::to_string(s.seq);
    }
    if (which == nullptr)
      throw tool_error(exit_usage, "no snapshot with last sequence number " +
                                       std::to_string(*a.seq) + " (snapshots: " + held + ")");
  }
  const auto state = snapshot_state(store, *which);
  print_line(::isatty(STDOUT_FILENO) == 1
                 ? state.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                 : state.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  finish_output();
  return exit_ok;
}

}  // namespace prevalent::tool

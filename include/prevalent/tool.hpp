// The `prevalent` command-line tool with your own types (docs/TOOL.md). The installed
// `prevalent` program reads any store without its types (info, verify, dump, snapshot-dump,
// at, repair, stats); what needs the commands applied, such as `compact`, needs a build with
// your store type. One line gives you that tool:
//
//   int main(int argc, char** argv) { return prevalent::tool_main<MyStore>(argc, argv); }
//
// linked with the library prevalent-tool (pkg-config `prevalent-tool`, meson
// dependency('prevalent-tool')) besides prevalent. MyStore is your prevalent::Store<State,
// Commands...>. The typed subcommands added:
//   compact DIR [--keep N]   open the store offline (takes the directory lock), take a
//                            snapshot, let retention drop the journal and snapshots it covers
//   state DIR [--seq N]      the state after record N (default: the last), rebuilt read-only
//                            with the types (time_travel.hpp), as one JSON document
//   check-determinism DIR    replay from the second newest snapshot to the newest and compare
//                            the state digests (determinism.hpp); exit 1 on a mismatch, naming
//                            the first diverging command when it can
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "prevalent/determinism.hpp"
#include "prevalent/history.hpp"
#include "prevalent/options.hpp"
#include "prevalent/store.hpp"
#include "prevalent/time_travel.hpp"

namespace prevalent {
namespace tool {

// What a typed subcommand gets from the command line. `dir` holds a store when it runs (the
// tool checked: it exists, with journal segments or snapshots).
struct typed_request {
  std::filesystem::path dir;
  std::optional<std::uint64_t> seq;
  std::string key_file;  // empty: no key
  unsigned keep = 1;
  bool json = false;
  bool quiet = false;  // -q: no progress output (the typed subcommands draw none today)
};

struct typed_command {
  std::string name;
  std::string description;
  bool takes_seq = false;   // --seq N
  bool takes_keep = false;  // --keep N
  // Returns the exit code; what it throws is reported with the tool's exit codes.
  std::function<int(const typed_request&)> run;
};

// Runs the tool on main's arguments with `typed` subcommands added (one named like a built-in
// subcommand, such as compact, replaces it). Returns the process's exit code.
int run(int argc, char** argv, std::vector<typed_command> typed = {});

// Options to open the store in `r.dir` offline as it was written: the codec of its last
// segment, the codec and compression of its newest snapshot, the key from r.key_file,
// keep_snapshots = r.keep, recovery messages on stderr.
store_options offline_options(const typed_request& r);

// Files and bytes of a store directory, for before/after reports.
struct directory_usage {
  std::size_t segments = 0;
  std::size_t snapshots = 0;
  std::uint64_t bytes = 0;
};
directory_usage usage_of(const std::filesystem::path& dir);

// Prints what compact did (text, or one JSON line with r.json).
void report_compact(const typed_request& r, const directory_usage& before,
                    const directory_usage& after, std::uint64_t last_seq);

// Prints a state as JSON (one line with r.json, else indented) with the record it is after.
void report_state(const typed_request& r, std::uint64_t seq, const nlohmann::json& state);

// Prints a determinism report (its summary, or one JSON line with r.json); returns the exit
// code: 0 consistent or nothing to compare, 1 a mismatch.
int report_determinism(const typed_request& r, const determinism_report& report);

}  // namespace tool

// The tool with the typed subcommands of StoreType (a prevalent::Store<State, Commands...>).
template <class StoreType>
int tool_main(int argc, char** argv) {
  tool::typed_command compact{
      "compact",
      "Open the store offline, take a snapshot of its newest state and let retention drop the "
      "journal segments and snapshots it covers (needs the store's types: this tool has them)",
      false, true, [](const tool::typed_request& r) {
        const auto before = tool::usage_of(r.dir);
        StoreType store(r.dir, tool::offline_options(r));
        store.snapshot();
        const std::uint64_t last = store.last_sequence();
        store.close();
        tool::report_compact(r, before, tool::usage_of(r.dir), last);
        return 0;
      }};
  tool::typed_command state{
      "state",
      "Print the state after record N (default: the last record), rebuilt read-only from the "
      "snapshots and journal with the store's types, without the directory lock",
      true, false, [](const tool::typed_request& r) {
        const store_options options = tool::offline_options(r);
        const std::uint64_t seq = r.seq ? *r.seq : reachable_sequences(r.dir, options).last;
        typename StoreType::view then(r.dir, as_of{.seq = seq}, options);
        tool::report_state(r, then.sequence(),
                           then.query([](const auto& s) { return nlohmann::json(s); }));
        return 0;
      }};
  tool::typed_command determinism{
      "check-determinism",
      "Replay the journal from the second newest snapshot to the newest and compare the state "
      "digests; on a mismatch, name the first command whose replay diverges",
      false, false, [](const tool::typed_request& r) {
        return tool::report_determinism(
            r, check_determinism<StoreType>(r.dir, {}, tool::offline_options(r)));
      }};
  std::vector<tool::typed_command> typed;
  typed.push_back(std::move(compact));
  typed.push_back(std::move(state));
  typed.push_back(std::move(determinism));
  return tool::run(argc, argv, std::move(typed));
}

}  // namespace prevalent

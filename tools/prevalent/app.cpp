// The command line of the `prevalent` tool (CLI11): one subcommand per file of this
// directory, each with --help; typed subcommands from include/prevalent/tool.hpp are added
// here too. The only file that includes CLI11.
#include <csignal>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "prevalent/tool.hpp"

#ifndef PREVALENT_VERSION
#define PREVALENT_VERSION "unknown"
#endif
#include "tool_doc_path.hpp"  // PREVALENT_DOC: where TOOL.md is installed (meson.build)

namespace prevalent::tool {
namespace {

constexpr const char* exit_codes =
    "Exit codes: 0 ok, 1 damaged store, 2 bad arguments or I/O error or key problem, 3 no such "
    "directory or not a store, 4 store in use.\nThe manual, with examples: " PREVALENT_DOC;

void add_dir(CLI::App* sub, common_args& c) {
  sub->add_option("DIR", c.dir, "The store directory")->required();
  sub->add_option("--key-file", c.key_file,
                  "File holding the store's encryption key (64 hex digits), for an encrypted "
                  "store");
  sub->add_flag("-q,--quiet", c.quiet, "No progress bar on a terminal");
}

void add_json(CLI::App* sub, common_args& c, const char* what) {
  sub->add_flag("--json", c.json, what);
}

}  // namespace

int run(int argc, char** argv, std::vector<typed_command> typed) {
  // A closed pipe (jq, head) shows as EPIPE on write, and the tool stops quietly.
  (void)std::signal(SIGPIPE, SIG_IGN);
  // A typed tool (tool_main) is named after its own program and says what it adds.
  const std::string name = typed.empty() || argc < 1
                               ? std::string("prevalent")
                               : std::filesystem::path(argv[0]).filename().string();
  CLI::App app{typed.empty()
                   ? "Look inside, verify and repair a prevalent store directory, without its "
                     "types."
                   : "Look inside, verify and repair a prevalent store directory; built with the "
                     "store's types, so it also has the typed subcommands (compact, state, ...).",
               name};
  app.footer(exit_codes);
  app.require_subcommand(1);
  app.set_version_flag("--version", PREVALENT_VERSION);
  int code = exit_ok;

  common_args info;
  auto* info_cmd = app.add_subcommand(
      "info",
      "Segments, snapshots, sizes, codecs, format version, lock holder, and the range of "
      "sequence numbers reachable for time travel");
  add_dir(info_cmd, info);
  add_json(info_cmd, info, "One JSON object instead of text");
  info_cmd->callback([&] { code = run_info(info); });

  common_args verify;
  auto* verify_cmd = app.add_subcommand(
      "verify",
      "Check every segment header, record checksum, sequence number and snapshot; exit "
      "0 healthy (a torn tail is reported but healthy), 1 damaged (the first problem "
      "with file and offset)");
  add_dir(verify_cmd, verify);
  add_json(verify_cmd, verify, "One JSON object instead of text");
  verify_cmd->callback([&] { code = run_verify(verify); });

  dump_args dump;
  auto* dump_cmd = app.add_subcommand(
      "dump", "The journal's records as JSON lines {seq, time, cmd, v, args}, for jq");
  add_dir(dump_cmd, dump);
  dump_cmd->add_option("--from", dump.from,
                       "First record: a sequence number, or an ISO 8601 time (inclusive)");
  dump_cmd->add_option("--to", dump.to,
                       "Last record: a sequence number, or an ISO 8601 time (inclusive)");
  dump_cmd->add_option("-c,--command", dump.commands, "Only records of this command (repeatable)");
  dump_cmd->callback([&] { code = run_dump(dump); });

  snapshot_dump_args snap;
  auto* snap_cmd = app.add_subcommand(
      "snapshot-dump", "The state a snapshot holds, as JSON (the newest snapshot by default)");
  add_dir(snap_cmd, snap);
  std::uint64_t snap_seq = 0;
  auto* snap_seq_opt =
      snap_cmd->add_option("--seq", snap_seq, "The snapshot whose last sequence number is N");
  snap_cmd->callback([&] {
    if (snap_seq_opt->count() > 0) snap.seq = snap_seq;
    code = run_snapshot_dump(snap);
  });

  at_args at;
  auto* at_cmd = app.add_subcommand(
      "at",
      "Time travel without types: the newest snapshot at or before a sequence number or "
      "time, and the records after it up to there, as one JSON object");
  add_dir(at_cmd, at);
  std::uint64_t at_seq_value = 0;
  auto* at_seq = at_cmd->add_option("--seq", at_seq_value, "The sequence number to travel to");
  auto* at_time =
      at_cmd->add_option("--time", at.time, "The time to travel to (ISO 8601): its last record");
  at_seq->excludes(at_time);
  at_cmd->callback([&] {
    if (at_seq->count() > 0) at.seq = at_seq_value;
    if (!at.seq && at.time.empty()) throw tool_error(exit_usage, "at needs --seq N or --time T");
    code = run_at(at);
  });

  repair_args repair;
  auto* repair_cmd = app.add_subcommand(
      "repair",
      "Cut a torn tail (what recovery would cut); with --salvage cut at the first "
      "corrupt record and drop everything after it. Backs up what it removes first; "
      "refuses a store in use");
  add_dir(repair_cmd, repair);
  add_json(repair_cmd, repair, "One JSON object instead of text");
  repair_cmd->add_flag("--salvage", repair.salvage,
                       "Also cut damage: everything from the first corrupt record on is removed");
  repair_cmd->add_flag("-n,--dry-run", repair.dry_run, "Only say what would be done");
  repair_cmd->add_option("--backup", repair.backup,
                         "Where to copy what is removed (default DIR/repair-backup-<time>/)");
  repair_cmd->callback([&] { code = run_repair(repair); });

  stats_args stats;
  auto* stats_cmd =
      app.add_subcommand("stats", "Commands by name (records, bytes) and records over time");
  add_dir(stats_cmd, stats);
  add_json(stats_cmd, stats, "One JSON object instead of text");
  stats_cmd->add_option("--per", stats.per, "Rate buckets: minute or hour")
      ->check(CLI::IsMember({"minute", "hour"}));
  stats_cmd->callback([&] { code = run_stats(stats); });

  // Typed subcommands, and the types-free compact that says how to get one.
  std::vector<typed_request> requests(typed.size());
  std::vector<std::uint64_t> seq_values(typed.size());
  std::vector<CLI::Option*> seq_options(typed.size(), nullptr);
  bool typed_compact = false;
  for (std::size_t i = 0; i < typed.size(); ++i) {
    typed_compact = typed_compact || typed[i].name == "compact";
    auto* sub = app.add_subcommand(typed[i].name, typed[i].description);
    auto& r = requests[i];
    sub->add_option("DIR", r.dir, "The store directory")->required();
    sub->add_option("--key-file", r.key_file, "File holding the store's encryption key");
    sub->add_flag("--json", r.json, "One JSON object instead of text");
    sub->add_flag("-q,--quiet", r.quiet, "No progress bar on a terminal");
    if (typed[i].takes_seq)
      seq_options[i] =
          sub->add_option("--seq", seq_values[i], "Sequence number (default: the last record)");
    if (typed[i].takes_keep)
      sub->add_option("--keep", r.keep, "Snapshots to keep (default 1)")
          ->check(CLI::PositiveNumber);
    sub->callback([&, i] {
      if (seq_options[i] != nullptr && seq_options[i]->count() > 0) requests[i].seq = seq_values[i];
      const StoreDir check(requests[i].dir, requests[i].key_file);  // exists, is a store
      code = typed[i].run(requests[i]);
    });
  }
  common_args compact;
  if (!typed_compact) {
    auto* compact_cmd = app.add_subcommand(
        "compact", "Needs the store's types: build a typed tool (prevalent/tool.hpp)");
    compact_cmd->add_option("DIR", compact.dir, "The store directory");
    compact_cmd->allow_extras();
    compact_cmd->callback([&] {
      (void)std::fprintf(
          stderr,
          "prevalent: compact needs the store's types (it applies the commands to take "
          "a snapshot), and this program has none. Build a typed tool with one line:\n"
          "  #include <prevalent/tool.hpp>\n"
          "  int main(int argc, char** argv) { return prevalent::tool_main<MyStore>(argc, "
          "argv); }\n"
          "linked with prevalent-tool (pkg-config prevalent-tool); see docs/TOOL.md.\n");
      code = exit_usage;
    });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int r = app.exit(e);
    return r == 0 ? exit_ok : exit_usage;
  } catch (const std::exception& e) {
    return report(e);
  }
  return code;
}

}  // namespace prevalent::tool

// The subcommands of the `prevalent` tool, one file each, and the arguments CLI11 fills in
// for them (app.cpp). Each returns the process's exit code (common.hpp) or throws.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace prevalent::tool {

struct common_args {
  std::string dir;
  std::string key_file;
  bool json = false;
  bool quiet = false;  // no progress bar
};

struct dump_args : common_args {
  std::string from, to;               // sequence numbers or ISO 8601 times
  std::vector<std::string> commands;  // only these command names
};

struct snapshot_dump_args : common_args {
  std::optional<std::uint64_t> seq;  // the snapshot with this last_seq (default: the newest)
};

struct at_args : common_args {
  std::optional<std::uint64_t> seq;
  std::string time;
};

struct repair_args : common_args {
  bool salvage = false;
  bool dry_run = false;
  std::string backup;  // default: DIR/repair-backup-<time>
};

struct stats_args : common_args {
  std::string per = "hour";  // "minute" or "hour"
};

int run_info(const common_args& a);
int run_verify(const common_args& a);
int run_dump(const dump_args& a);
int run_snapshot_dump(const snapshot_dump_args& a);
int run_at(const at_args& a);
int run_repair(const repair_args& a);
int run_stats(const stats_args& a);

}  // namespace prevalent::tool

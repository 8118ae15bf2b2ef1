// What the subcommands of the `prevalent` tool share: exit codes, the store directory as the
// tool sees it (files sorted by kind, an optional key), a walk over the journal that reports
// the first problem instead of throwing, and JSON and time helpers. The tool reads stores with
// the library's own readers (segment_reader, SnapshotStore, format) and never their types.
#pragma once

#include "prevalent/iso_time.hpp"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "prevalent/cipher.hpp"
#include "prevalent/directory.hpp"
#include "prevalent/format.hpp"
#include "prevalent/journal_info.hpp"
#include "prevalent/snapshot_store.hpp"

namespace prevalent::tool {

class Progress;

// Exit codes of every subcommand (docs/TOOL.md).
enum exit_code : int {
  exit_ok = 0,
  exit_damaged = 1,      // the store is damaged (verify, or a read that met the damage)
  exit_usage = 2,        // bad arguments, I/O error, missing or wrong key
  exit_not_a_store = 3,  // no such directory, or no segment or snapshot in it
  exit_in_use = 4,       // a store holds the directory lock (repair, compact)
};

// A failure the tool reports on stderr and exits with.
struct tool_error : std::runtime_error {
  tool_error(int code, const std::string& what) : std::runtime_error(what), code(code) {}
  int code;
};

// Maps an exception to an exit code and prints "prevalent: <what>" on stderr.
int report(const std::exception& e);

struct store_file {
  std::string name;
  std::uint64_t seq = 0;  // from the name: a segment's first, a snapshot's last sequence number
  std::uint64_t bytes = 0;
};

// A store directory opened for reading. Never creates anything and never takes the lock.
class StoreDir {
 public:
  // Throws tool_error: exit_not_a_store when `path` is missing, not a directory, or holds no
  // segment and no snapshot (naming what it holds instead); exit_usage for a bad key file.
  StoreDir(const std::filesystem::path& path, const std::string& key_file);

  const std::filesystem::path& path() const { return path_; }
  Directory& dir() const { return *dir_; }
  const std::shared_ptr<Directory>& shared_dir() const { return dir_; }
  const std::vector<store_file>& segments() const { return segments_; }    // by sequence
  const std::vector<store_file>& snapshots() const { return snapshots_; }  // oldest first
  const std::vector<std::string>& temp_files() const { return temp_files_; }
  const std::vector<std::string>& other_files() const { return other_files_; }
  const std::shared_ptr<const detail::payload_cipher>& cipher() const { return cipher_; }
  std::string describe(const std::string& name) const { return dir_->describe(name); }

  // The header of a segment or snapshot, without reading further (no key needed); nullopt
  // with `why` when it does not verify.
  std::optional<format::segment_header> segment_header(const store_file& s, std::string& why) const;
  std::optional<format::snapshot_header> snapshot_header(const store_file& s,
                                                         std::string& why) const;

  // Loads and verifies a snapshot (decompressed, decrypted). Throws what SnapshotStore throws.
  loaded_snapshot load_snapshot(const store_file& s) const;

 private:
  std::filesystem::path path_;
  std::shared_ptr<Directory> dir_;
  std::vector<store_file> segments_, snapshots_;
  std::vector<std::string> temp_files_, other_files_;
  std::shared_ptr<const detail::payload_cipher> cipher_;
};

// The key in `key_file`: its first word, 64 hex digits (the sessions example's format).
std::shared_ptr<const detail::payload_cipher> read_key_file(const std::string& key_file);

// Whether a process holds the directory lock, and which one (from /proc/locks).
struct lock_holder {
  bool held = false;
  long pid = 0;  // 0: unknown
};
lock_holder probe_lock(const std::filesystem::path& dir);

// The first problem a walk over the journal found.
struct damage {
  std::string file;              // full path
  std::size_t segment = 0;       // index into StoreDir::segments()
  std::uint64_t offset = 0;      // where the problem is
  std::uint64_t cut_offset = 0;  // end of the last good record of that segment (0: cut the file)
  std::uint64_t last_good_seq = 0;
  std::string what;  // the reader's message
};

struct walk_result {
  std::uint64_t first_seq = 0;  // 0 when the journal holds no record
  std::uint64_t last_seq = 0;
  std::uint64_t records = 0;
  std::vector<format::segment_header> headers;  // of the segments read
  std::vector<std::uint64_t> last_seqs;         // of the segments read
  std::vector<std::uint64_t> used_bytes;        // of the segments read: end of the last record
  // A torn tail of the last segment: what recovery would cut.
  std::string torn_file, torn_reason;
  std::uint64_t torn_offset = 0, torn_bytes = 0;
  bool unfinished_last = false;  // the last segment's creation never finished: removed on open
  // The first `leftovers` segments are leftovers of an interrupted drop (a gap after them, and
  // a snapshot covers them): the next open removes them. Records counts only those after.
  std::size_t leftovers = 0;
  std::optional<damage> damaged;
};

// Visits every good record in order until the first problem, which goes into the result (the
// walk stops there). `visit` may throw stop_walk to end early.
struct stop_walk {};
walk_result walk_journal(const StoreDir& store,
                         const std::function<void(const record_view&)>& visit,
                         Progress* progress = nullptr, std::uint64_t from_seq = 0);

// The sequence numbers a types-free time travel (`at`) can reach: from the oldest snapshot the
// journal still reaches back to (0, the empty state, when the journal starts at 1) up to the
// last record or the newest snapshot.
struct reachable_range {
  bool any = false;
  std::uint64_t from = 0, to = 0;
};
reachable_range reachable(const StoreDir& store, const walk_result& walk);

// Why a snapshot does not verify as an open needs it (header, checksums, decompression,
// authentication, a state that decodes), or nullopt when it does. Rethrows a key problem
// (errc::encryption_mismatch): that is not damage.
std::optional<std::string> snapshot_problem(const StoreDir& store, const store_file& s);

// ---- time and JSON ---------------------------------------------------------------------------
// ISO 8601 UTC with nanoseconds: 2026-11-23T01:00:00.000000000Z (shared with the library).
using prevalent::detail::iso_time;
// Parses 2026-11-23, 2026-11-23T01:00, ...T01:00:00, ...T01:00:00.5, with Z or +hh:mm / -hh:mm
// (UTC when none). A date alone is midnight at the start of that day, or with `end_of_day` the
// last nanosecond of it. Throws tool_error(exit_usage) naming the text.
std::int64_t parse_iso_time(const std::string& text, bool end_of_day = false);

// A sequence number or a time, as --from/--to take them: digits only is a sequence number.
struct position {
  std::optional<std::uint64_t> seq;
  std::optional<std::int64_t> time_ns;
};
// A date alone means the start of that day, or with `end_of_day` (--to) its end: inclusive.
position parse_position(const std::string& text, const char* option, bool end_of_day = false);

// Decodes a record payload to {"cmd","v","args"}; throws tool_error(exit_damaged) naming it.
nlohmann::json decode_record(const record_view& r);

// The state a snapshot holds, decoded from its codec (snapshot_dump.cpp); throws
// tool_error(exit_damaged) or what StoreDir::load_snapshot throws.
nlohmann::json snapshot_state(const StoreDir& store, const store_file& s);

// "1 segment", "2 segments": a count and a noun, plural unless the count is 1.
std::string plural(std::uint64_t n, const std::string& noun);

// Prints a line on stdout; returns false once the reader has gone (EPIPE): stop quietly.
bool print_line(const std::string& line);
// Flushes stdout; false on EPIPE.
bool finish_output();

}  // namespace prevalent::tool

// `prevalent info DIR`: what a store directory holds. Reads every record (to know each
// segment's last sequence number), never changes anything and never takes the lock.
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "prevalent/error.hpp"
#include "progress.hpp"

namespace prevalent::tool {
namespace {

using ordered = nlohmann::ordered_json;

std::uint64_t total_bytes(const std::vector<store_file>& files) {
  std::uint64_t n = 0;
  for (const auto& f : files) n += f.bytes;
  return n;
}

// The figures that need the records, which an encrypted store without its key cannot read.
const char* const needs_key[] = {"journal.last_seq",
                                 "journal.records",
                                 "journal.used_bytes",
                                 "journal.preallocated_bytes",
                                 "journal.segments[].last_seq",
                                 "journal.segments[].used_bytes",
                                 "journal.segments[].preallocated_bytes",
                                 "reachable",
                                 "total_used_bytes"};

ordered describe(const StoreDir& store, const walk_result& walk, bool sealed) {
  ordered out;
  out["dir"] = store.path().string();
  std::uint32_t version = 0;
  bool encrypted = false;

  const auto lock = probe_lock(store.path());
  out["lock"] = {{"held", lock.held}};
  if (lock.held && lock.pid != 0) out["lock"]["pid"] = lock.pid;

  ordered segments = ordered::array();
  const auto& segs = store.segments();
  std::uint64_t used = 0, preallocated = 0;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    ordered s;
    s["file"] = segs[i].name;
    s["first_seq"] = segs[i].seq;
    if (i < walk.last_seqs.size())
      s["last_seq"] = walk.last_seqs[i];
    else
      s["last_seq"] = nullptr;  // not read: after the damage, or an unfinished segment
    s["bytes"] = segs[i].bytes;
    if (i < walk.used_bytes.size()) {
      s["used_bytes"] = walk.used_bytes[i];
      s["preallocated_bytes"] = segs[i].bytes - walk.used_bytes[i];
      used += walk.used_bytes[i];
      preallocated += segs[i].bytes - walk.used_bytes[i];
    } else {
      s["used_bytes"] = nullptr;  // not read: sealed, after the damage, or unfinished
      s["preallocated_bytes"] = nullptr;
      used += segs[i].bytes;
    }
    std::string why;
    if (auto h = store.segment_header(segs[i], why)) {
      s["codec"] = format::codec_name(h->codec);
      s["version"] = h->version;
      s["epoch"] = h->epoch;  // of the primary that wrote it (0: not replicated)
      s["encrypted"] = h->encrypted();
      version = std::max(version, h->version);
      encrypted = encrypted || h->encrypted();
    } else {
      s["header_problem"] = why;
    }
    segments.push_back(std::move(s));
  }
  ordered journal;
  if (sealed) {
    // Only the file names and headers are readable: the first sequence number is the first
    // segment's name.
    journal["first_seq"] = segs.empty() ? ordered(nullptr) : ordered(segs.front().seq);
    journal["last_seq"] = nullptr;
    journal["records"] = nullptr;
  } else {
    journal["first_seq"] = walk.first_seq;
    journal["last_seq"] = walk.last_seq;
    journal["records"] = walk.records;
  }
  journal["bytes"] = total_bytes(segs);
  journal["used_bytes"] = sealed ? ordered(nullptr) : ordered(used);
  journal["preallocated_bytes"] = sealed ? ordered(nullptr) : ordered(preallocated);
  journal["segments"] = std::move(segments);

  ordered snapshots = ordered::array();
  for (const auto& f : store.snapshots()) {
    ordered s;
    s["file"] = f.name;
    s["last_seq"] = f.seq;
    s["bytes"] = f.bytes;
    std::string why;
    if (auto h = store.snapshot_header(f, why)) {
      s["time"] = h->timestamp_ns != 0 ? ordered(iso_time(h->timestamp_ns)) : ordered(nullptr);
      s["codec"] = format::codec_name(h->codec);
      s["compression"] = h->compression == format::compression::zstd ? "zstd" : "none";
      s["version"] = h->version;              // of the file format
      s["state_version"] = h->state_version;  // State::version of the program that wrote it
      s["encrypted"] = h->encrypted();
      version = std::max(version, h->version);
      encrypted = encrypted || h->encrypted();
    } else {
      s["header_problem"] = why;
    }
    snapshots.push_back(std::move(s));
  }
  out["format_version"] = version;
  out["encrypted"] = encrypted;
  out["sealed"] = sealed;
  if (sealed) out["needs_key"] = needs_key;
  out["journal"] = std::move(journal);
  out["snapshots"] = std::move(snapshots);
  const auto range = reachable(store, walk);
  if (range.any && !sealed)
    out["reachable"] = {{"from", range.from}, {"to", range.to}};
  else
    out["reachable"] = nullptr;
  out["total_bytes"] = total_bytes(segs) + total_bytes(store.snapshots());
  out["total_used_bytes"] =
      sealed ? ordered(nullptr) : ordered(used + total_bytes(store.snapshots()));
  out["temp_files"] = store.temp_files();
  out["other_files"] = store.other_files();
  if (walk.damaged)
    out["problem"] = walk.damaged->what + " (see: prevalent verify)";
  else if (!walk.torn_reason.empty())
    out["problem"] = "torn tail in " + walk.torn_file + " at offset " +
                     std::to_string(walk.torn_offset) + " (" + std::to_string(walk.torn_bytes) +
                     " bytes): " + walk.torn_reason + "; the next open cuts it";
  else
    out["problem"] = nullptr;
  return out;
}

std::string str(const ordered& j) { return j.is_string() ? j.get<std::string>() : j.dump(); }

// "2008 bytes", or "120 bytes in use + 4194184 preallocated" when the zero fill is there.
std::string sizes(const ordered& used, const ordered& preallocated) {
  if (preallocated.get<std::uint64_t>() == 0) return used.dump() + " bytes";
  return used.dump() + " bytes in use + " + preallocated.dump() + " preallocated";
}

void print_text(const ordered& d) {
  std::printf("store      %s\n", str(d["dir"]).c_str());
  std::printf("format     version %s%s\n", d["format_version"].dump().c_str(),
              d["encrypted"].get<bool>() ? " (encrypted)" : "");
  if (d["lock"]["held"].get<bool>())
    std::printf("lock       held%s\n",
                d["lock"].contains("pid") ? (" by pid " + d["lock"]["pid"].dump()).c_str() : "");
  else
    std::printf("lock       not held\n");
  const auto& j = d["journal"];
  const bool sealed = d["sealed"].get<bool>();
  const std::string segments = plural(j["segments"].size(), "segment");
  if (sealed) {
    std::printf(
        "journal    sealed: the records are encrypted; %s, %s bytes, from sequence number %s. "
        "The record count, the last sequence number, the bytes in use and the reachable range "
        "need the key (--key-file FILE)\n",
        segments.c_str(), j["bytes"].dump().c_str(), j["first_seq"].dump().c_str());
  } else {
    std::printf("journal    %s, sequence %s..%s, %s, %s\n",
                plural(j["records"].get<std::uint64_t>(), "record").c_str(),
                j["first_seq"].dump().c_str(), j["last_seq"].dump().c_str(), segments.c_str(),
                sizes(j["used_bytes"], j["preallocated_bytes"]).c_str());
  }
  if (sealed)
    std::printf("time travel  needs the key\n");
  else if (d["reachable"].is_null())
    std::printf("time travel  nothing reachable\n");
  else
    std::printf("time travel  sequence %s..%s reachable\n", d["reachable"]["from"].dump().c_str(),
                d["reachable"]["to"].dump().c_str());
  if (sealed || d["total_used_bytes"] == d["total_bytes"])
    std::printf("total      %s bytes\n", d["total_bytes"].dump().c_str());
  else
    std::printf("total      %s bytes in use, %s on disk (with the preallocated zero fill)\n",
                d["total_used_bytes"].dump().c_str(), d["total_bytes"].dump().c_str());
  std::printf("\nsegments\n");
  for (const auto& s : j["segments"]) {
    if (s.contains("header_problem")) {
      std::printf("  %s  %s bytes  damaged header: %s\n", str(s["file"]).c_str(),
                  s["bytes"].dump().c_str(), str(s["header_problem"]).c_str());
      continue;
    }
    const std::string last =
        s["last_seq"].is_null() ? (sealed ? "? (sealed)" : "? (not read)") : s["last_seq"].dump();
    const std::string size = s["used_bytes"].is_null()
                                 ? s["bytes"].dump() + " bytes"
                                 : sizes(s["used_bytes"], s["preallocated_bytes"]);
    std::printf("  %s  seq %s..%s  %s  %s  v%s  epoch %s%s\n", str(s["file"]).c_str(),
                s["first_seq"].dump().c_str(), last.c_str(), size.c_str(), str(s["codec"]).c_str(),
                s["version"].dump().c_str(), s["epoch"].dump().c_str(),
                s["encrypted"].get<bool>() ? "  encrypted" : "");
  }
  std::printf("\nsnapshots\n");
  if (d["snapshots"].empty()) std::printf("  (none)\n");
  for (const auto& s : d["snapshots"]) {
    if (s.contains("header_problem")) {
      std::printf("  %s  %s bytes  damaged header: %s\n", str(s["file"]).c_str(),
                  s["bytes"].dump().c_str(), str(s["header_problem"]).c_str());
      continue;
    }
    std::printf("  %s  last_seq %s  %s  %s bytes  %s  %s  v%s  state v%s%s\n",
                str(s["file"]).c_str(), s["last_seq"].dump().c_str(), str(s["time"]).c_str(),
                s["bytes"].dump().c_str(), str(s["codec"]).c_str(), str(s["compression"]).c_str(),
                s["version"].dump().c_str(), s["state_version"].dump().c_str(),
                s["encrypted"].get<bool>() ? "  encrypted" : "");
  }
  for (const auto& f : d["temp_files"])
    std::printf("temporary file %s (a snapshot being written, or left by a crash)\n",
                str(f).c_str());
  for (const auto& f : d["other_files"])
    std::printf("other file %s (not the store's; ignored)\n", str(f).c_str());
  if (!d["problem"].is_null()) std::printf("\nproblem: %s\n", str(d["problem"]).c_str());
}

}  // namespace

int run_info(const common_args& a) {
  const StoreDir store(a.dir, a.key_file);
  std::uint64_t bytes = 0;
  for (const auto& s : store.segments()) bytes += s.bytes;
  Progress progress("reading journal", bytes, !a.quiet);
  walk_result walk;
  bool sealed = false;
  try {
    walk = walk_journal(store, {}, &progress);
  } catch (const prevalent::error& e) {
    if (e.code() != errc::encryption_mismatch) throw;
    // No key (or a store that needs none given one): the headers say what they can.
    if (!a.key_file.empty()) throw;
    sealed = true;
  }
  auto d = describe(store, walk, sealed);
  if (a.json)
    print_line(d.dump());
  else
    print_text(d);
  finish_output();
  return exit_ok;
}

}  // namespace prevalent::tool

// `prevalent verify DIR`: every segment header, record checksum, sequence number and command
// envelope, every snapshot (checksums, decompression, authentication, decoding), and that the
// journal and the snapshots fit together as an open needs them to. Exit 0 healthy (a torn
// tail is reported, and is healthy: the next open cuts it), 1 damaged.
#include <cstdio>
#include <filesystem>
#include <regex>

#include "commands.hpp"
#include "common.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/error.hpp"
#include "progress.hpp"

namespace prevalent::tool {
namespace {

using ordered = nlohmann::ordered_json;

struct problem {
  std::string file;  // relative to the store directory; empty: the store as a whole
  std::optional<std::uint64_t> offset;
  std::string what;  // the full sentence, which may name the file and offset
};

// `what` without the "<path> at offset N: " or "<path>: " it starts with (JSON has them as
// fields); `offset` gets N if it has no value yet.
std::string description(const StoreDir& store, const problem& p,
                        std::optional<std::uint64_t>& offset) {
  std::string w = p.what;
  for (const auto& prefix : {store.describe(p.file), p.file}) {
    if (p.file.empty() || !w.starts_with(prefix)) continue;
    w.erase(0, prefix.size());
    static const std::regex at(R"(^ at offset [0-9]+)");
    std::smatch m;
    if (std::regex_search(w, m, at)) {
      if (!offset) offset = std::stoull(m.str(0).substr(11));
      w.erase(0, static_cast<std::size_t>(m.length(0)));
    }
    if (w.starts_with(": ")) w.erase(0, 2);
    break;
  }
  return w;
}

std::string name_of(const std::string& path) {
  return std::filesystem::path(path).filename().string();
}

}  // namespace

int run_verify(const common_args& a) {
  const StoreDir store(a.dir, a.key_file);
  std::vector<problem> problems;
  std::uint64_t bytes = 0;
  for (const auto& s : store.segments()) bytes += s.bytes;
  Progress progress("verifying journal", bytes, !a.quiet);
  std::optional<problem> bad_envelope;
  const auto walk = walk_journal(
      store,
      [&](const record_view& r) {
        if (bad_envelope) return;
        auto j = prevalent::decode(r.payload, r.codec);
        if (!j || !j->is_object() || !j->contains("cmd") || !(*j)["cmd"].is_string() ||
            !j->contains("v") || !(*j)["v"].is_number_integer() || !j->contains("args"))
          bad_envelope = problem{name_of(r.file), r.offset,
                                 "record " + std::to_string(r.seq) +
                                     ": checksums match but the payload is not a " +
                                     codec_name(r.codec) + " command envelope {cmd, v, args}"};
      },
      &progress);
  if (walk.damaged)
    problems.push_back(
        {store.segments()[walk.damaged->segment].name, walk.damaged->offset, walk.damaged->what});
  if (bad_envelope) problems.push_back(*bad_envelope);

  // Snapshots, newest first as an open tries them.
  std::optional<std::uint64_t> newest_good;
  const auto& snaps = store.snapshots();
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    if (auto why = snapshot_problem(store, *it))
      problems.push_back({it->name, std::nullopt, *why});
    else if (!newest_good)
      newest_good = it->seq;
  }

  // The journal and the snapshots together (docs/FORMAT.md, the open sequence).
  const auto& segs = store.segments();
  if (!walk.damaged && !segs.empty()) {
    const std::uint64_t start = segs[std::min(walk.leftovers, segs.size() - 1)].seq;
    if (start > 1 && (!newest_good || *newest_good + 1 < start))
      problems.push_back({segs[std::min(walk.leftovers, segs.size() - 1)].name, 0,
                          "the journal starts at sequence number " + std::to_string(start) +
                              " but no usable snapshot covers the records before it"});
    const std::uint64_t journal_end = walk.records > 0 ? walk.last_seq : start - 1;
    if (newest_good && journal_end < *newest_good)
      problems.push_back({segs.back().name, std::nullopt,
                          "the journal ends at sequence number " + std::to_string(journal_end) +
                              " but the newest snapshot covers up to " +
                              std::to_string(*newest_good) + ": journal records are missing"});
  }
  if (segs.empty() && !newest_good && !snaps.empty())
    problems.push_back(
        {"", std::nullopt, "no journal segment and no usable snapshot: nothing to open"});

  const bool healthy = problems.empty();
  if (a.json) {
    ordered out;
    out["healthy"] = healthy;
    out["records"] = walk.records;
    out["first_seq"] = walk.first_seq;
    out["last_seq"] = walk.last_seq;
    out["segments"] = segs.size();
    out["snapshots"] = snaps.size();
    out["leftover_segments"] = walk.leftovers;
    if (walk.torn_reason.empty())
      out["torn_tail"] = nullptr;
    else
      out["torn_tail"] = {{"file", name_of(walk.torn_file)},
                          {"offset", walk.torn_offset},
                          {"bytes", walk.torn_bytes},
                          {"reason", walk.torn_reason}};
    out["problems"] = ordered::array();
    for (const auto& p : problems) {
      ordered j{{"file", p.file.empty() ? ordered(nullptr) : ordered(p.file)}};
      std::optional<std::uint64_t> offset = p.offset;
      const std::string what = description(store, p, offset);
      j["offset"] = offset ? ordered(*offset) : ordered(nullptr);
      j["what"] = what;
      out["problems"].push_back(std::move(j));
    }
    print_line(out.dump());
  } else {
    if (!walk.torn_reason.empty())
      std::printf(
          "torn tail: %s at offset %llu, %llu bytes (%s): read as an unfinished last write, "
          "which the next open (or prevalent repair) cuts; a damaged last record looks the "
          "same\n",
          walk.torn_file.c_str(), static_cast<unsigned long long>(walk.torn_offset),
          static_cast<unsigned long long>(walk.torn_bytes), walk.torn_reason.c_str());
    if (walk.leftovers > 0)
      std::printf(
          "leftovers: the first %s, up to %s, %s a gap and a snapshot covers %s: an "
          "interrupted drop, which the next open (or prevalent repair) finishes\n",
          walk.leftovers == 1 ? "segment" : plural(walk.leftovers, "segment").c_str(),
          segs[walk.leftovers - 1].name.c_str(), walk.leftovers == 1 ? "precedes" : "precede",
          walk.leftovers == 1 ? "it" : "them");
    for (const auto& p : problems) {
      const std::string where = p.file.empty() ? store.path().string() : store.describe(p.file);
      std::printf("damaged: %s\n", p.what.find(p.file.empty() ? where : p.file) == std::string::npos
                                       ? (where + ": " + p.what).c_str()
                                       : p.what.c_str());
    }
    if (healthy)
      std::printf("ok: %s (sequence %llu..%llu) in %s, %s\n",
                  plural(walk.records, "record").c_str(),
                  static_cast<unsigned long long>(walk.first_seq),
                  static_cast<unsigned long long>(walk.last_seq),
                  plural(segs.size(), "segment").c_str(), plural(snaps.size(), "snapshot").c_str());
  }
  finish_output();
  if (!healthy && !a.json)
    (void)std::fprintf(stderr, "prevalent: %s is damaged (first problem: %s)\n",
                       store.path().c_str(), problems.front().what.c_str());
  return healthy ? exit_ok : exit_damaged;
}

}  // namespace prevalent::tool

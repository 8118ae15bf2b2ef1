// `prevalent verify DIR`: every segment header, record checksum, sequence number and command
// envelope, every snapshot (checksums, decompression, authentication, decoding), and that the
// journal and the snapshots fit together as an open needs them to. Exit 0 healthy (a torn
// tail is reported, and is healthy: the next open cuts it), 1 damaged.
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "prevalent/codec.hpp"
#include "prevalent/error.hpp"
#include "progress.hpp"

namespace prevalent::tool {
namespace {

using ordered = nlohmann::ordered_json;

struct problem {
  std::string file;
  std::optional<std::uint64_t> offset;
  std::string what;
};

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
          bad_envelope = problem{r.file, r.offset,
                                 "record " + std::to_string(r.seq) +
                                     ": checksums match but the payload is not a " +
                                     codec_name(r.codec) + " command envelope {cmd, v, args}"};
      },
      &progress);
  if (walk.damaged)
    problems.push_back({walk.damaged->file, walk.damaged->offset, walk.damaged->what});
  if (bad_envelope) problems.push_back(*bad_envelope);

  // Snapshots, newest first as an open tries them.
  std::optional<std::uint64_t> newest_good;
  const auto& snaps = store.snapshots();
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    if (auto why = snapshot_problem(store, *it))
      problems.push_back({store.describe(it->name), std::nullopt, *why});
    else if (!newest_good)
      newest_good = it->seq;
  }

  // The journal and the snapshots together (docs/FORMAT.md, the open sequence).
  const auto& segs = store.segments();
  if (!walk.damaged && !segs.empty()) {
    const std::uint64_t start = segs[std::min(walk.leftovers, segs.size() - 1)].seq;
    if (start > 1 && (!newest_good || *newest_good + 1 < start))
      problems.push_back({store.describe(segs[std::min(walk.leftovers, segs.size() - 1)].name), 0,
                          "the journal starts at sequence number " + std::to_string(start) +
                              " but no usable snapshot covers the records before it"});
    const std::uint64_t journal_end = walk.records > 0 ? walk.last_seq : start - 1;
    if (newest_good && journal_end < *newest_good)
      problems.push_back({store.describe(segs.back().name), std::nullopt,
                          "the journal ends at sequence number " + std::to_string(journal_end) +
                              " but the newest snapshot covers up to " +
                              std::to_string(*newest_good) + ": journal records are missing"});
  }
  if (segs.empty() && !newest_good && !snaps.empty())
    problems.push_back({store.path().string(), std::nullopt,
                        "no journal segment and no usable snapshot: nothing to open"});

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
      out["torn_tail"] = {{"file", walk.torn_file},
                          {"offset", walk.torn_offset},
                          {"bytes", walk.torn_bytes},
                          {"reason", walk.torn_reason}};
    out["problems"] = ordered::array();
    for (const auto& p : problems) {
      ordered j{{"file", p.file}};
      j["offset"] = p.offset ? ordered(*p.offset) : ordered(nullptr);
      j["what"] = p.what;
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
          "leftovers: the first %zu segment(s), up to %s, precede a gap and a snapshot covers "
          "them: an interrupted drop, which the next open (or prevalent repair) finishes\n",
          walk.leftovers, segs[walk.leftovers - 1].name.c_str());
    for (const auto& p : problems)
      std::printf("damaged: %s\n", p.what.find(p.file) == std::string::npos
                                       ? (p.file + ": " + p.what).c_str()
                                       : p.what.c_str());
    if (healthy)
      std::printf("ok: %llu records (sequence %llu..%llu) in %zu segments, %zu snapshots\n",
                  static_cast<unsigned long long>(walk.records),
                  static_cast<unsigned long long>(walk.first_seq),
                  static_cast<unsigned long long>(walk.last_seq), segs.size(), snaps.size());
  }
  finish_output();
  if (!healthy && !a.json)
    (void)std::fprintf(stderr, "prevalent: %s is damaged (first problem: %s)\n",
                       store.path().c_str(), problems.front().what.c_str());
  return healthy ? exit_ok : exit_damaged;
}

}  // namespace prevalent::tool

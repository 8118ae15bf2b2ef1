// The helpers of include/prevalent/tool.hpp's typed subcommands: options to open a store
// offline as it was written, and the before/after report of compact.
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common.hpp"
#include "prevalent/tool.hpp"

namespace prevalent::tool {

store_options offline_options(const typed_request& r) {
  const StoreDir store(r.dir, r.key_file);
  store_options o;
  std::string why;
  if (!store.segments().empty())
    if (auto h = store.segment_header(store.segments().back(), why)) o.codec = h->codec;
  if (!store.snapshots().empty()) {
    if (auto h = store.snapshot_header(store.snapshots().back(), why)) {
      o.snapshot_codec = h->codec;
      o.compress_snapshots = h->compression == format::compression::zstd;
    }
  }
  if (!r.key_file.empty()) {
    std::ifstream in(r.key_file);
    std::string hex;
    in >> hex;
    o.encryption_key = encryption_key::from_hex(hex);
  }
  o.keep_snapshots = r.keep;
  o.insecure_modes = modes_policy::ignore;  // the store's modes are not the tool's business
  o.log = [](const std::string& line) {
    (void)std::fprintf(stderr, "prevalent: %s\n", line.c_str());
  };
  return o;
}

directory_usage usage_of(const std::filesystem::path& dir) {
  const StoreDir store(dir, "");
  directory_usage u;
  u.segments = store.segments().size();
  u.snapshots = store.snapshots().size();
  for (const auto& s : store.segments()) u.bytes += s.bytes;
  for (const auto& s : store.snapshots()) u.bytes += s.bytes;
  return u;
}

void report_compact(const typed_request& r, const directory_usage& before,
                    const directory_usage& after, std::uint64_t last_seq) {
  if (r.json) {
    auto side = [](const directory_usage& u) {
      return nlohmann::ordered_json{
          {"segments", u.segments}, {"snapshots", u.snapshots}, {"bytes", u.bytes}};
    };
    nlohmann::ordered_json out;
    out["snapshot_seq"] = last_seq;
    out["before"] = side(before);
    out["after"] = side(after);
    print_line(out.dump());
  } else {
    auto side = [](const directory_usage& u) {
      return plural(u.segments, "segment") + ", " + plural(u.snapshots, "snapshot") + ", " +
             plural(u.bytes, "byte");
    };
    std::printf("compacted %s: snapshot at sequence number %llu; %s before; %s after\n",
                r.dir.c_str(), static_cast<unsigned long long>(last_seq), side(before).c_str(),
                side(after).c_str());
  }
  finish_output();
}

void report_state(const typed_request& r, std::uint64_t seq, const nlohmann::json& state) {
  nlohmann::ordered_json out;
  out["seq"] = seq;
  out["state"] = state;
  print_line(r.json ? out.dump() : out.dump(2));
  finish_output();
}

int report_determinism(const typed_request& r, const determinism_report& report) {
  const bool mismatch = report.checked && !report.consistent;
  if (r.json) {
    nlohmann::ordered_json out;
    out["checked"] = report.checked;
    out["consistent"] = report.consistent;
    out["from_seq"] = report.from_seq;
    out["to_seq"] = report.to_seq;
    out["replayed"] = report.replayed;
    out["expected_digest"] = report.expected_digest;
    out["replayed_digest"] = report.replayed_digest;
    if (report.first_divergence) {
      const auto& d = *report.first_divergence;
      out["first_divergence"] = {{"seq", d.seq},
                                 {"command", d.name},
                                 {"version", d.version},
                                 {"args", d.args},
                                 {"file", std::filesystem::path(d.file).filename().string()},
                                 {"offset", d.offset},
                                 {"difference", d.patch},
                                 {"difference_operations", d.patch_operations}};
    }
    if (report.non_canonical_after) out["non_canonical_after"] = *report.non_canonical_after;
    out["summary"] = report.summary;
    print_line(out.dump());
  } else {
    print_line(report.summary);
  }
  finish_output();
  return mismatch ? 1 : 0;
}

}  // namespace prevalent::tool

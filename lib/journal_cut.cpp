// cut_journal (replication_log.hpp): a replica's journal cut back to a sequence number for a
// failover, the cut records moved aside, never deleted.
#include <algorithm>

#include "prevalent/cipher.hpp"
#include "prevalent/error.hpp"
#include "prevalent/replication_log.hpp"
#include "segment_reader.hpp"

namespace prevalent {
namespace {

std::string aside_name(const std::string& name, std::uint64_t keep_through) {
  return name + ".cut-" + std::to_string(keep_through);
}

// Copies `from` whole to `to` durably: a temporary file, synced, renamed, the directory synced.
void copy_durably(Directory& dir, const std::string& from, const std::string& to) {
  const auto in = dir.open(from, Directory::open_mode::read);
  const std::string tmp = to + format::temp_suffix;
  try {
    dir.remove(tmp);
  } catch (const error&) {
  }
  auto out = dir.open(tmp, Directory::open_mode::create_new);
  bytes buf(1u << 20);
  for (std::uint64_t at = 0;;) {
    buf.resize(1u << 20);
    buf.resize(in->read_at(at, buf));
    if (buf.empty()) break;
    out->append(buf);
    at += buf.size();
  }
  out->sync();
  dir.rename(tmp, to);
  dir.sync();
}

}  // namespace

cut_report cut_journal(const std::shared_ptr<Directory>& dir, std::uint64_t keep_through,
                       const journal_options& options) {
  const auto lock = dir->lock(format::lock_file_name);
  std::vector<std::pair<std::uint64_t, std::string>> segs, snaps;
  for (const auto& name : dir->list()) {
    if (auto s = format::parse_segment_file_name(name)) segs.emplace_back(*s, name);
    if (auto s = format::parse_snapshot_file_name(name)) snaps.emplace_back(*s, name);
  }
  std::sort(segs.begin(), segs.end());
  std::sort(snaps.begin(), snaps.end());
  cut_report report;

  // Where record keep_through + 1 starts, and where the journal ends (reads every segment
  // from the one holding keep_through + 1 on, verifying as an open does).
  const auto cipher = options.encryption_key
                          ? std::make_unique<detail::payload_cipher>(*options.encryption_key)
                          : nullptr;
  std::optional<std::size_t> cut_segment;  // index into segs
  std::uint64_t cut_offset = 0, last_seq = 0;
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const bool last = i + 1 == segs.size();
    if (!last && segs[i + 1].first <= keep_through + 1) continue;  // wholly kept
    const auto file = dir->open(segs[i].second, Directory::open_mode::read);
    detail::segment_reader reader(*file, file->size(), dir->describe(segs[i].second),
                                  options.max_record_bytes, cipher.get(), true);
    if (last && reader.unfinished()) break;
    const auto scan = reader.scan(last, [&](const record_view& r) {
      if (r.seq == keep_through + 1) {
        cut_segment = i;
        cut_offset = r.offset;
      }
      if (r.seq > keep_through) ++report.records_cut;
    });
    last_seq = scan.records > 0 ? scan.last_seq : std::max(last_seq, scan.header.first_seq - 1);
  }
  if (keep_through > last_seq)
    throw error(errc::invalid_option, "journal in " + dir->path() + " ends at " +
                                          std::to_string(last_seq) + ": cannot cut it back to " +
                                          std::to_string(keep_through));
  // Something must rebuild the state at keep_through: the journal from 1, or a snapshot at or
  // before keep_through that the journal reaches.
  const std::uint64_t journal_start = segs.empty() ? keep_through + 1 : segs.front().first;
  const bool rebuildable =
      journal_start == 1 || std::any_of(snaps.begin(), snaps.end(), [&](const auto& s) {
        return s.first <= keep_through && s.first + 1 >= journal_start;
      });
  if (!rebuildable)
    throw error(errc::no_usable_snapshot,
                "journal in " + dir->path() + " cannot be cut back to " +
                    std::to_string(keep_through) + ": it starts at " +
                    std::to_string(journal_start) +
                    " and no snapshot at or before that record is left; copy a snapshot from "
                    "the primary instead");

  // 1. Snapshots of later records, newest first: from here on an open uses an older one.
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    if (it->first <= keep_through) continue;
    dir->rename(it->second, aside_name(it->second, keep_through));
    report.moved.push_back(aside_name(it->second, keep_through));
  }
  dir->sync();
  // 2. Segments wholly after keep_through, newest first: the journal left is always a prefix.
  bool renamed = false;
  for (auto it = segs.rbegin(); it != segs.rend(); ++it) {
    if (it->first <= keep_through) break;
    dir->rename(it->second, aside_name(it->second, keep_through));
    report.moved.push_back(aside_name(it->second, keep_through));
    renamed = true;
  }
  if (renamed) dir->sync();
  // 3. The segment holding keep_through + 1 after records to keep: copied whole, then cut.
  if (cut_segment && segs[*cut_segment].first <= keep_through) {
    const std::string& name = segs[*cut_segment].second;
    copy_durably(*dir, name, aside_name(name, keep_through));
    report.moved.push_back(aside_name(name, keep_through));
    auto f = dir->open(name, Directory::open_mode::write);
    f->truncate(cut_offset);
    f->sync();
  }
  return report;
}

}  // namespace prevalent

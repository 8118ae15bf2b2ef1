// Journal: opening and recovery (verifying segments with segment_reader, then handing them to
// segment_writer), reading back, and the accessors. (Appending and the committer thread are in
// journal_committer.cpp.)
#include "prevalent/journal.hpp"

#include <algorithm>

#include "commit_queue.hpp"
#include "prevalent/error.hpp"
#include "prevalent/format.hpp"
#include "segment_reader.hpp"
#include "segment_writer.hpp"

namespace prevalent {
namespace {

// Segment names and their first sequence numbers, sorted.
std::vector<std::pair<std::uint64_t, std::string>> list_segments(const Directory& dir) {
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (auto& name : dir.list())
    if (auto seq = format::parse_segment_file_name(name)) found.emplace_back(*seq, name);
  std::sort(found.begin(), found.end());
  return found;
}

// How many bytes of [from, end) a write reached: up to the last nonzero byte (the rest is the
// writer's zero fill), so the recovery log tells an unfinished write from preallocated space.
std::uint64_t written_bytes_after(const File& f, std::uint64_t from, std::uint64_t end) {
  std::vector<std::uint8_t> buf(1u << 16);
  std::uint64_t last_nonzero = from;
  for (std::uint64_t at = from; at < end;) {
    const std::size_t want =
        static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), end - at));
    const std::size_t got = f.read_at(at, std::span(buf.data(), want));
    if (got == 0) break;
    for (std::size_t i = got; i-- > 0;)
      if (buf[i] != 0) {
        last_nonzero = at + i + 1;
        break;
      }
    at += got;
  }
  return last_nonzero - from;
}

}  // namespace

Journal::Journal(std::shared_ptr<Directory> dir, journal_options options)
    : dir_(std::move(dir)),
      options_(options),
      cipher_(options_.encryption_key
                  ? std::make_shared<const detail::payload_cipher>(*options_.encryption_key)
                  : nullptr),
      queue_(std::make_unique<detail::commit_queue>(options.sync.mode(), options.max_queued_bytes,
                                                    "journal in " + dir_->path())),
      writer_(std::make_unique<detail::segment_writer>(dir_, options_, cipher_)) {
  queue_->set_epoch(options_.epoch);
}

std::optional<std::uint64_t> Journal::first_seq_on_disk(const Directory& dir) {
  auto found = list_segments(dir);
  if (found.empty()) return std::nullopt;
  return found.front().first;
}

std::unique_ptr<Journal> Journal::open(std::shared_ptr<Directory> dir, journal_options options,
                                       std::uint64_t start_seq, std::uint64_t deliver_from,
                                       const visitor& visit, const log_function& log,
                                       const settler& settle) {
  check_options(options);
  std::unique_ptr<Journal> j(new Journal(std::move(dir), options));
  j->recover(start_seq, deliver_from, visit, log, settle);
  j->log_ = log;
  j->last_sync_ = std::chrono::steady_clock::now();
  j->committer_ = std::thread([raw = j.get()] { raw->run_committer(); });
  return j;
}

void Journal::recover(std::uint64_t start_seq, std::uint64_t deliver_from, const visitor& visit,
                      const log_function& log, const settler& settle) {
  auto found = list_segments(*dir_);
  if (!found.empty() && found.front().first > deliver_from)
    throw error(errc::no_usable_snapshot,
                "journal in " + dir_->path() + " starts at sequence number " +
                    std::to_string(found.front().first) + " (" + found.front().second +
                    "), but records from " + std::to_string(deliver_from) + " on are needed");

  auto deliver = [&](const record_view& r) {
    if (r.seq >= deliver_from && visit) {
      visit(r);
      ++report_.replayed;
    }
  };
  std::vector<detail::segment_state> verified;
  std::uint64_t expected = found.empty() ? start_seq : found.front().first;
  for (std::size_t i = 0; i < found.size(); ++i) {
    const auto& [name_seq, name] = found[i];
    const bool last = i + 1 == found.size();
    const std::string path = dir_->describe(name);
    const std::unique_ptr<File> file = dir_->open(name, Directory::open_mode::read);
    detail::segment_reader reader(*file, file->size(), path, options_.max_record_bytes,
                                  cipher_.get(), options_.accept_unencrypted);

    if (last && reader.unfinished()) {
      // Its creation never finished, so no record in it was ever acknowledged.
      dir_->remove(name);
      dir_->sync();
      report_.torn_file = path;
      report_.torn_bytes = reader.end();
      report_.torn_reason = "removed unfinished segment";
      if (log) log("journal recovery: removed unfinished segment " + path);
      break;
    }
    // Settled before anything else is checked or changed: a record visited before the
    // corruption or gap found here, or before a torn tail is cut, reports its error first.
    auto scan = [&] {
      try {
        return reader.scan(last, deliver);
      } catch (...) {
        if (settle) settle();
        throw;
      }
    }();
    if (settle) settle();
    if (scan.header.first_seq != name_seq)
      throw error(errc::corrupt_segment, path + " at offset 0: header says first sequence number " +
                                             std::to_string(scan.header.first_seq) +
                                             " but the file name says " + std::to_string(name_seq));
    if (scan.header.first_seq != expected && scan.header.first_seq <= deliver_from &&
        !verified.empty()) {
      // The segments before the gap hold only records the snapshot covers: leftovers of a
      // drop that a power cut interrupted after some of its unlinks reached the disk and not
      // others (a file system may persist directory changes in any order until the directory
      // is synced; found by the power-loss test). Finish the drop.
      for (const auto& leftover : verified) {
        dir_->remove(leftover.file);
        if (log)
          log("journal recovery: removed " + dir_->describe(leftover.file) +
              ", left over from an interrupted drop (the snapshot covers it; the journal resumes "
              "at " +
              std::to_string(scan.header.first_seq) + ")");
      }
      dir_->sync();
      verified.clear();
      report_.records = 0;
      expected = scan.header.first_seq;
    }
    if (!verified.empty() && scan.header.epoch < verified.back().epoch)
      throw error(errc::corrupt_segment,
                  path + " at offset 0: segment is of epoch " + std::to_string(scan.header.epoch) +
                      ", below the epoch of the segment before it (" + verified.back().file +
                      ", epoch " + std::to_string(verified.back().epoch) +
                      "): epochs never decrease along the journal");
    if (scan.header.first_seq != expected)
      throw error(errc::sequence_gap, path + " at offset 0: segment starts at sequence number " +
                                          std::to_string(scan.header.first_seq) +
                                          ", but the journal before it ends at " +
                                          std::to_string(expected - 1));
    std::uint64_t allocated = scan.valid_end;
    if (last && !scan.torn_reason.empty()) {
      // Cut the unfinished write so appends continue right after the last good record.
      auto f = dir_->open(name, Directory::open_mode::write);
      const std::uint64_t written = written_bytes_after(*f, scan.valid_end, reader.end());
      f->truncate(scan.valid_end);
      f->sync();
      report_.torn_file = path;
      report_.torn_offset = scan.valid_end;
      report_.torn_bytes = reader.end() - scan.valid_end;
      report_.torn_reason = scan.torn_reason;
      if (log)
        log("journal recovery: cut torn tail of " + path + " at offset " +
            std::to_string(scan.valid_end) + " (" + scan.torn_reason + "; " +
            std::to_string(written) + " bytes of an unfinished write, " +
            std::to_string(report_.torn_bytes - written) + " bytes of zero fill)");
    } else if (last) {
      allocated = reader.end();  // zero-filled space preallocated earlier: write into it
    }
    verified.push_back({name, scan.header.first_seq, scan.last_seq, scan.header.salt,
                        scan.valid_end, allocated, scan.header.codec, scan.header.encrypted(),
                        scan.header.epoch});
    report_.records += scan.records;
    expected = scan.last_seq + 1;
  }
  report_.segments = verified.size();

  if (expected < start_seq && !verified.empty())
    throw error(errc::sequence_gap, "journal in " + dir_->path() + " ends at sequence number " +
                                        std::to_string(expected - 1) + " (" + verified.back().file +
                                        "), but the snapshot covers up to " +
                                        std::to_string(start_seq - 1) +
                                        ": journal records are missing");
  if (verified.empty() && start_seq > 1 && (found.empty() || expected < start_seq)) {
    // No segment left (or only one whose creation never finished), though the snapshot covers
    // records up to start_seq - 1: the segment that held them was deleted, and with it any
    // record after them, which nothing on disk can tell. Going on from the snapshot is a
    // consistent state (as after a restore from a snapshot alone); say what may be lost.
    // (The one crash that leaves this without loss: a reopen with another codec replacing an
    // empty only segment, cut between the removal and the creation.)
    report_.segments_missing = true;
    if (log)
      log("journal recovery: no journal segment in " + dir_->path() + " reaches sequence number " +
          std::to_string(start_seq - 1) +
          ", the last one the snapshot covers: a segment was deleted, and any records after " +
          std::to_string(start_seq - 1) + " are lost; going on from the snapshot");
  }
  const std::uint64_t last_appended = std::max(expected, start_seq) - 1;
  queue_->reset(last_appended, verified.empty() ? 0 : verified.back().epoch);
  writer_->adopt(std::move(verified), last_appended + 1);
}

void Journal::for_each(std::uint64_t from, std::uint64_t to, const visitor& visit) const {
  to = std::min(to, written_seq());  // queued records are not on disk yet
  from = std::max<std::uint64_t>(from, 1);
  if (from > to) return;
  // Every record from..to must come, once and in order: a segment dropped or cut short while
  // this ran (or before) would otherwise just leave records out, and a rebuild would give a
  // state that silently differs from the one on disk.
  const auto range = [&] { return std::to_string(from) + ".." + std::to_string(to); };
  const auto held = segments();
  std::uint64_t next = from;  // the record that must come next
  for (const auto& seg : held) {
    if (seg.last_seq < from || seg.first_seq > to || seg.last_seq < seg.first_seq) continue;
    const std::unique_ptr<File> file = dir_->open(seg.file, Directory::open_mode::read);
    // Only what this journal wrote: the committer may be appending past seg.bytes meanwhile.
    detail::segment_reader reader(*file, std::min(file->size(), seg.bytes),
                                  dir_->describe(seg.file), options_.max_record_bytes,
                                  cipher_.get(), options_.accept_unencrypted);
    reader.scan(true, [&](const record_view& r) {
      if (r.seq < from || r.seq > to) return;
      if (r.seq != next)
        throw error(errc::sequence_gap, r.file + " at offset " + std::to_string(r.offset) +
                                            ": record " + std::to_string(r.seq) + " where " +
                                            std::to_string(next) + " was expected, reading " +
                                            "records " + range() + " of the journal in " +
                                            dir_->path());
      visit(r);
      ++next;
    });
  }
  if (next != to + 1) {
    const std::string where = held.empty()       ? std::string("no segment")
                              : held.size() == 1 ? "only " + held.front().file
                                                 : held.front().file + " to " + held.back().file;
    throw error(errc::sequence_gap, "journal in " + dir_->path() + ": reading records " + range() +
                                        (next == from ? std::string(" found none of them")
                                                      : " found only " + std::to_string(from) +
                                                            ".." + std::to_string(next - 1)) +
                                        "; record " + std::to_string(next) +
                                        " is missing (the journal holds " + where + ")");
  }
}

std::optional<Journal::stored_record> Journal::read(std::uint64_t seq) const {
  if (seq == 0 || seq > written_seq() || seq < first_seq()) return std::nullopt;
  std::optional<stored_record> out;
  for_each(seq, seq, [&](const record_view& r) {
    out = stored_record{r.timestamp_ns, bytes(r.payload.begin(), r.payload.end())};
  });
  return out;
}

void Journal::drop_below(std::uint64_t seq, const retire_hook& before_remove) {
  writer_->drop_below(seq, before_remove);
}

std::uint64_t Journal::next_seq() const { return last_appended() + 1; }

std::uint64_t Journal::last_appended() const { return queue_->last_appended(); }

std::uint64_t Journal::first_seq() const { return writer_->first_seq(); }

std::vector<segment_info> Journal::segments() const { return writer_->segments(); }

}  // namespace prevalent

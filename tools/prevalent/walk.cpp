// walk_journal: every segment in order through the library's segment_reader, with the checks
// journal recovery makes between segments (name against header, sequence continuity); the
// first problem is returned, not thrown, so that verify and repair can say what it is.
#include <regex>

#include "common.hpp"
#include "prevalent/error.hpp"
#include "progress.hpp"
#include "segment_reader.hpp"

namespace prevalent::tool {
namespace {

// The reader names the offset in its message: "<file> at offset N: ...".
std::uint64_t offset_in(const std::string& what, std::uint64_t fallback) {
  static const std::regex at(" at offset ([0-9]+)");
  std::smatch m;
  if (std::regex_search(what, m, at)) return std::stoull(m[1].str());
  return fallback;
}

// Whether a snapshot (by its name) covers every record before `first_seq`.
bool covered(const StoreDir& store, std::uint64_t first_seq) {
  for (const auto& s : store.snapshots())
    if (s.seq + 1 >= first_seq) return true;
  return false;
}

}  // namespace

walk_result walk_journal(const StoreDir& store,
                         const std::function<void(const record_view&)>& visit, Progress* progress,
                         std::uint64_t from_seq) {
  walk_result out;
  const auto& segs = store.segments();
  std::uint64_t done_before = 0;
  std::uint64_t expected = 0;  // 0: the first segment sets it
  for (std::size_t i = 0; i < segs.size(); ++i) {
    const auto& seg = segs[i];
    const bool last = i + 1 == segs.size();
    const std::string path = store.describe(seg.name);
    // Segments wholly before from_seq are not read (dump --from).
    if (from_seq > 0 && !last && segs[i + 1].seq <= from_seq && expected == 0) {
      done_before += seg.bytes;
      continue;
    }
    const auto file = store.dir().open(seg.name, Directory::open_mode::read);
    detail::segment_reader reader(*file, file->size(), path, format::max_payload_limit,
                                  store.cipher().get(), true);
    auto fail = [&](std::uint64_t offset, std::uint64_t cut, const std::string& what) {
      // Before any good record, the last good one is the one before the journal's start.
      const std::uint64_t good =
          out.records > 0 ? out.last_seq : (expected != 0 ? expected - 1 : seg.seq - 1);
      out.damaged = damage{path, i, offset, cut, good, what};
    };
    if (last && reader.unfinished()) {
      out.unfinished_last = true;
      out.torn_file = path;
      out.torn_bytes = reader.end();
      out.torn_reason = "the segment's creation never finished (recovery removes the file)";
      break;
    }
    bytes head(format::max_segment_header_size);
    head.resize(file->read_at(0, head));
    std::string why;
    const auto header = format::decode_segment_header(head, why);
    if (!header) {
      fail(0, 0, path + " at offset 0: damaged segment header: " + why);
      break;
    }
    if (header->first_seq != seg.seq) {
      fail(0, 0,
           path + " at offset 0: header says first sequence number " +
               std::to_string(header->first_seq) + " but the file name says " +
               std::to_string(seg.seq));
      break;
    }
    if (expected != 0 && header->first_seq != expected && covered(store, header->first_seq)) {
      // The segments before the gap hold only records a snapshot covers: leftovers of a drop
      // that a power cut interrupted, which the next open removes (as journal recovery does).
      out.leftovers = i;
      out.records = 0;
      out.first_seq = 0;
      expected = header->first_seq;
    }
    if (!out.headers.empty() && header->epoch < out.headers.back().epoch) {
      fail(0, 0,
           path + " at offset 0: segment is of epoch " + std::to_string(header->epoch) +
               ", below the epoch of the segment before it (" +
               std::to_string(out.headers.back().epoch) +
               "): epochs never decrease along the journal");
      break;
    }
    if (expected != 0 && header->first_seq != expected) {
      fail(0, 0,
           path + " at offset 0: segment starts at sequence number " +
               std::to_string(header->first_seq) + ", but the journal before it ends at " +
               std::to_string(expected - 1));
      break;
    }
    const std::size_t overhead = header->encrypted() ? format::sealed_overhead : 0;
    std::uint64_t good_end = header->size();  // end of the last good record
    try {
      const auto scan = reader.scan(last, [&](const record_view& r) {
        good_end = r.offset + format::framed_size(r.payload.size() + overhead);
        if (out.first_seq == 0) out.first_seq = r.seq;
        out.last_seq = r.seq;
        ++out.records;
        if (progress != nullptr) progress->update(done_before + r.offset);
        if (visit && r.seq >= from_seq) visit(r);
      });
      out.headers.push_back(scan.header);
      out.last_seqs.push_back(scan.last_seq);
      out.used_bytes.push_back(scan.valid_end);
      if (!scan.torn_reason.empty()) {
        out.torn_file = path;
        out.torn_offset = scan.valid_end;
        out.torn_bytes = reader.end() - scan.valid_end;
        out.torn_reason = scan.torn_reason;
      }
      expected = scan.last_seq + 1;
    } catch (const stop_walk&) {
      return out;
    } catch (const prevalent::error& e) {
      if (e.code() == errc::encryption_mismatch) throw;  // a key problem, not damage
      fail(offset_in(e.what(), good_end), good_end, e.what());
      break;
    }
    done_before += seg.bytes;
  }
  if (progress != nullptr) progress->done();
  return out;
}

reachable_range reachable(const StoreDir& store, const walk_result& walk) {
  reachable_range r;
  const auto& segs = store.segments();
  std::optional<std::uint64_t> from;
  const std::uint64_t start = walk.leftovers < segs.size() ? segs[walk.leftovers].seq : 0;
  if (start == 1) from = 0;
  for (const auto& s : store.snapshots()) {
    // The journal must hold the records after the snapshot (or be gone only up to it).
    const bool reaches = start == 0 || start <= s.seq + 1;
    if (reaches && (!from || s.seq < *from)) from = s.seq;
  }
  if (!from) return r;
  r.any = true;
  r.from = *from;
  r.to = walk.last_seq;
  if (!store.snapshots().empty()) r.to = std::max(r.to, store.snapshots().back().seq);
  r.to = std::max(r.to, r.from);
  return r;
}

}  // namespace prevalent::tool

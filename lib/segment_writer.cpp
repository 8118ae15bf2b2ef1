#include "segment_writer.hpp"

#include <algorithm>
#include <random>

#include "prevalent/format.hpp"

namespace prevalent::detail {
namespace {

std::uint32_t random_salt() {
  static thread_local std::mt19937 gen{std::random_device{}()};
  std::uint32_t s;
  do s = static_cast<std::uint32_t>(gen());
  while (s == 0);
  return s;
}

}  // namespace

format::segment_header header_of(const segment_state& s) {
  format::segment_header h;
  h.codec = s.codec;
  h.first_seq = s.first_seq;
  h.salt = s.salt;
  h.epoch = s.epoch;
  if (s.encrypted) h.cipher = format::cipher::xchacha20poly1305;
  return h;
}

segment_writer::segment_writer(std::shared_ptr<Directory> dir, const journal_options& options,
                               std::shared_ptr<const payload_cipher> cipher)
    : dir_(std::move(dir)), options_(options), cipher_(std::move(cipher)) {}

void segment_writer::adopt(std::vector<segment_state> verified, std::uint64_t next_seq) {
  std::lock_guard g(mutex_);
  segments_ = std::move(verified);
  last_written_ = next_seq - 1;
  run_start_ = next_seq;  // everything on disk now is synced or was cut
  const bool encrypting = cipher_ != nullptr;
  // Epochs never decrease along the journal: a store opened with a lower epoch than the last
  // segment's writes nothing of its own (Journal refuses it), so new segments keep the higher.
  const std::uint64_t epoch =
      segments_.empty() ? options_.epoch : std::max(options_.epoch, segments_.back().epoch);
  if (!segments_.empty() &&
      (segments_.back().codec != options_.codec || segments_.back().encrypted != encrypting ||
       segments_.back().epoch != epoch)) {
    // The store now writes another codec or epoch, or turned encryption on (off is possible
    // only for segments nobody can read without the key): records of one segment share one
    // codec, one epoch and one header, so the next record starts a new segment. An empty
    // segment is replaced.
    const segment_state& last = segments_.back();
    if (last.last_seq < last.first_seq) {
      dir_->remove(last.file);
      dir_->sync();
      segments_.pop_back();
    } else if (last.allocated > last.bytes) {
      auto f = dir_->open(last.file, Directory::open_mode::write);
      f->truncate(last.bytes);
      f->sync();
    }
    start_segment(next_seq, epoch, options_.codec);
  } else if (segments_.empty()) {
    start_segment(next_seq, epoch, options_.codec);
  } else {
    active_ = dir_->open(segments_.back().file, Directory::open_mode::write);
    // What an earlier process wrote may still be only in the page cache (a process crash
    // under `interval` or `none`). Sync it before appending: records written from now on
    // start a new run, and recovery may cut only the last unsynced run.
    active_->sync();
  }
  publish_sizes();
}

void segment_writer::drop_empty_active() {
  active_.reset();
  dir_->remove(segments_.back().file);
  dir_->sync();
  segments_.pop_back();
  publish_sizes();
}

void segment_writer::publish_sizes() {
  std::uint64_t held = 0;
  for (const auto& s : segments_) held += s.bytes;
  bytes_held_.store(held, std::memory_order_relaxed);
  segment_count_.store(segments_.size(), std::memory_order_relaxed);
}

void segment_writer::start_segment(std::uint64_t first_seq, std::uint64_t epoch,
                                   format::codec codec) {
  // Rule R2 (docs/RELIABILITY.md): the new file's header is synced and so is the directory entry
  // before any record in it can be acknowledged.
  format::segment_header h;
  h.first_seq = first_seq;
  h.salt = random_salt();
  h.codec = codec;
  h.epoch = epoch;
  if (cipher_) {
    h.cipher = format::cipher::xchacha20poly1305;
    h.key_check = cipher_->key_check();
  }
  std::string name = format::segment_file_name(first_seq);
  std::shared_ptr<File> f = dir_->open(name, Directory::open_mode::create_new);
  f->append(format::encode_segment_header(h));
  f->sync();
  dir_->sync();
  segments_.push_back({name, first_seq, first_seq - 1, h.salt, h.size(), h.size(), h.codec,
                       h.encrypted(), h.epoch});
  active_ = std::move(f);
  run_start_ = first_seq;
  publish_sizes();
}

void segment_writer::write(const std::vector<pending_record>& batch) {
  std::lock_guard g(mutex_);
  segment_state* active = &segments_.back();
  std::uint64_t framed_last_seq = 0;
  auto write_frame = [&] {
    if (frame_.empty()) return;
    preallocate(*active, active->bytes + frame_.size());
    active_->write_at(active->bytes, frame_);
    active->bytes += frame_.size();
    active->last_seq = framed_last_seq;
    bytes_written_ += frame_.size();
    bytes_held_.fetch_add(frame_.size(), std::memory_order_relaxed);
    frame_.clear();
  };
  frame_.clear();
  const std::size_t overhead = cipher_ ? format::sealed_overhead : 0;
  if (cipher_) {
    // One draw from the OS for the whole batch: a fresh random nonce per record.
    nonces_.resize(batch.size() * format::nonce_size);
    random_bytes(nonces_.data(), nonces_.size());
  }
  std::size_t index = 0;
  for (const auto& rec : batch) {
    const std::size_t size = format::framed_size(rec.payload.size() + (rec.sealed ? 0 : overhead));
    const format::codec codec = rec.raw ? rec.codec : options_.codec;
    const bool holds_records = active->last_seq >= active->first_seq || !frame_.empty();
    const bool other_kind = rec.epoch != active->epoch || codec != active->codec;
    if (other_kind && !holds_records) {
      // Nothing in it yet: replace it by a segment of the record's epoch and codec.
      drop_empty_active();
      start_segment(rec.seq, rec.epoch, codec);
      active = &segments_.back();
    } else if (holds_records &&
               (other_kind || active->bytes + frame_.size() + size > options_.segment_bytes)) {
      // The roll: the closing segment's records are durable, and its zero fill gone, before
      // the new segment exists.
      write_frame();
      if (active->allocated > active->bytes) active_->truncate(active->bytes);
      active_->sync();
      start_segment(rec.seq, rec.epoch, codec);
      active = &segments_.back();
    }
    if (rec.seq - run_start_ > UINT32_MAX) {
      // The run index has 32 bits; 4 billion records without a sync (under policy `none`)
      // end the run with one.
      write_frame();
      active_->sync();
      run_start_ = rec.seq;
    }
    const auto run_index = static_cast<std::uint32_t>(rec.seq - run_start_);
    byte_view payload = as_bytes(rec.payload);
    if (cipher_ && !rec.sealed) {
      // The active segment is encrypted (adopt() and start_segment() see to it).
      sealed_.clear();
      const auto ad = format::record_ad(header_of(*active), rec.seq, rec.timestamp_ns, run_index);
      cipher_->seal(payload_cipher::purpose::record, payload, ad, sealed_,
                    &nonces_[index * format::nonce_size]);
      payload = sealed_;
    }
    ++index;
    format::append_record(frame_, active->salt, rec.seq, rec.timestamp_ns, payload, run_index);
    framed_last_seq = rec.seq;
  }
  write_frame();
  if (!batch.empty()) last_written_ = batch.back().seq;
}

void segment_writer::preallocate(segment_state& active, std::uint64_t needed_end) {
  if (needed_end <= active.allocated) return;
  std::uint64_t target = needed_end;
  if (options_.preallocate_bytes > 0)
    target = std::max(needed_end, std::min(active.allocated + options_.preallocate_bytes,
                                           options_.segment_bytes));
  static const bytes zeros(1u << 20, 0);
  // Zero-fill [allocated, target) except the part the caller is about to write anyway.
  for (std::uint64_t at = std::max(active.allocated, needed_end); at < target;) {
    const std::uint64_t n = std::min<std::uint64_t>(zeros.size(), target - at);
    active_->write_at(at, byte_view(zeros).first(n));
    at += n;
  }
  active.allocated = target;
}

void segment_writer::sync() {
  std::shared_ptr<File> file;
  {
    std::lock_guard g(mutex_);
    file = active_;
  }
  file->sync();  // outside the lock: readers of segments() need not wait for the disk
  run_start_ = last_written_ + 1;
}

std::vector<segment_info> segment_writer::segments() const {
  std::lock_guard g(mutex_);
  std::vector<segment_info> out;
  for (const auto& s : segments_)
    out.push_back({s.file, s.first_seq, s.last_seq, s.bytes, s.epoch});
  return out;
}

std::uint64_t segment_writer::first_seq() const {
  std::lock_guard g(mutex_);
  return segments_.front().first_seq;
}

void segment_writer::drop_below(std::uint64_t seq,
                                const std::function<void(const std::string&)>& before_remove) {
  // Oldest first, and each segment leaves the list only once its file is gone: if a removal
  // fails, the segments left on disk still form a gap-free journal. (Found by the error-path
  // test: dropping the list entries first left an old segment on disk that a later drop
  // skipped over, and the next open saw a sequence gap.)
  bool removed = false;
  for (;;) {
    std::string name;
    {
      std::lock_guard g(mutex_);
      if (segments_.size() < 2 || segments_[1].first_seq > seq) break;
      name = segments_.front().file;
    }
    if (before_remove) before_remove(name);
    dir_->remove(name);
    removed = true;
    std::lock_guard g(mutex_);
    segments_.erase(segments_.begin());
    publish_sizes();
  }
  if (removed) dir_->sync();
}

}  // namespace prevalent::detail

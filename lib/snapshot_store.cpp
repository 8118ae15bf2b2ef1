#include "prevalent/snapshot_store.hpp"

#include <algorithm>

#include "compression.hpp"
#include "prevalent/checksum.hpp"
#include "prevalent/cipher.hpp"
#include "prevalent/error.hpp"

namespace prevalent {

// A verified zstd frame could still claim any size; refuse to allocate past this.
static constexpr std::uint64_t max_decompressed_bytes = 64ull << 30;

namespace {
// Creates the temporary file of a publish, removing one left over from an interrupted publish
// of the same sequence number first.
std::unique_ptr<File> create_temp(Directory& dir, const std::string& temp) {
  try {
    dir.remove(temp);
  } catch (const error& e) {
    if (e.code() != std::errc::no_such_file_or_directory) throw;  // EIO must not be lost
  }
  return dir.open(temp, Directory::open_mode::create_new);
}
}  // namespace

SnapshotStore::SnapshotStore(std::shared_ptr<Directory> dir, unsigned keep,
                             std::shared_ptr<const detail::payload_cipher> cipher,
                             bool accept_unencrypted)
    : dir_(std::move(dir)),
      keep_(keep),
      cipher_(std::move(cipher)),
      accept_unencrypted_(accept_unencrypted) {
  if (keep_ == 0) throw error(errc::invalid_option, "keep_snapshots must be at least 1");
}

std::string SnapshotStore::publish(std::uint64_t last_seq, std::int64_t timestamp_ns,
                                   byte_view payload, format::codec codec,
                                   format::compression compression) {
  std::string name = install(last_seq, timestamp_ns, payload, codec, compression);
  remove_old();
  return name;
}

std::string SnapshotStore::install(std::uint64_t last_seq, std::int64_t timestamp_ns,
                                   byte_view payload, format::codec codec,
                                   format::compression compression) {
  bytes compressed;
  if (compression == format::compression::zstd) {
    compressed = detail::zstd_compress(payload);
    payload = compressed;
  }
  format::snapshot_header h;
  h.codec = codec;
  h.compression = compression;
  h.last_seq = last_seq;
  h.timestamp_ns = timestamp_ns;
  bytes sealed;
  if (cipher_) {
    // The associated data binds the sealed bytes to this header: sequence number, timestamp,
    // codec and compression.
    h.cipher = format::cipher::xchacha20poly1305;
    h.key_check = cipher_->key_check();
    cipher_->seal(detail::payload_cipher::purpose::snapshot, payload, format::snapshot_ad(h),
                  sealed);
    payload = sealed;
  }
  h.payload_length = payload.size();
  h.payload_crc = crc32c(payload);

  const std::string name = format::snapshot_file_name(last_seq);
  const std::string temp = name + format::temp_suffix;
  {
    auto f = create_temp(*dir_, temp);
    f->append(format::encode_snapshot_header(h));
    f->append(payload);
    f->sync();
  }
  dir_->rename(temp, name);
  dir_->sync();
  return name;
}

std::string SnapshotStore::install_streamed(std::uint64_t last_seq, std::int64_t timestamp_ns,
                                            const std::function<void(const payload_sink&)>& produce,
                                            format::codec codec, format::compression compression) {
  if (cipher_ || compression != format::compression::none) {
    bytes whole;
    produce([&](byte_view piece) { whole.insert(whole.end(), piece.begin(), piece.end()); });
    return install(last_seq, timestamp_ns, whole, codec, compression);
  }
  format::snapshot_header h;
  h.codec = codec;
  h.compression = compression;
  h.last_seq = last_seq;
  h.timestamp_ns = timestamp_ns;
  const std::string name = format::snapshot_file_name(last_seq);
  const std::string temp = name + format::temp_suffix;
  {
    auto f = create_temp(*dir_, temp);
    // Room for the header, which is written once the payload's length and checksum are known.
    f->append(format::encode_snapshot_header(h));
    static constexpr std::size_t flush_bytes = 1 << 20;
    bytes buffer;
    buffer.reserve(flush_bytes);
    std::uint32_t crc = 0;
    std::uint64_t length = 0;
    auto flush = [&] {
      if (buffer.empty()) return;
      crc = crc32c(buffer, crc);
      length += buffer.size();
      f->append(buffer);
      buffer.clear();
    };
    produce([&](byte_view piece) {
      if (buffer.size() + piece.size() > flush_bytes) flush();
      if (piece.size() >= flush_bytes) {
        crc = crc32c(piece, crc);
        length += piece.size();
        f->append(piece);
      } else {
        buffer.insert(buffer.end(), piece.begin(), piece.end());
      }
    });
    flush();
    h.payload_length = length;
    h.payload_crc = crc;
    f->write_at(0, format::encode_snapshot_header(h));
    f->sync();
  }
  dir_->rename(temp, name);
  dir_->sync();
  return name;
}

void SnapshotStore::remove_old() {
  auto all = list();
  bool removed = false;
  for (std::size_t i = keep_; i < all.size(); ++i) {
    dir_->remove(all[i].file);
    removed = true;
  }
  if (removed) dir_->sync();
}

std::vector<snapshot_info> SnapshotStore::list() const {
  std::vector<snapshot_info> out;
  for (auto& name : dir_->list())
    if (auto seq = format::parse_snapshot_file_name(name)) out.push_back({name, *seq});
  std::sort(out.begin(), out.end(),
            [](const snapshot_info& a, const snapshot_info& b) { return a.last_seq > b.last_seq; });
  return out;
}

loaded_snapshot SnapshotStore::load(const snapshot_info& which) const {
  const std::string path = dir_->describe(which.file);
  auto bad = [&](std::uint64_t offset, const std::string& what) {
    return error(errc::corrupt_snapshot,
                 path + " at offset " + std::to_string(offset) + ": " + what);
  };
  auto file = dir_->open(which.file, Directory::open_mode::read);
  bytes head(format::encrypted_snapshot_header_size);
  head.resize(file->read_at(0, head));
  std::string why;
  auto h = format::decode_snapshot_header(head, why);
  if (!h) throw bad(0, why);
  if (h->encrypted() && !cipher_)
    throw error(errc::encryption_mismatch,
                path +
                    ": the snapshot is encrypted, but the store was opened without an "
                    "encryption key (store_options::encryption_key)");
  if (h->encrypted() && h->key_check != cipher_->key_check())
    throw error(errc::encryption_mismatch,
                path +
                    ": the snapshot was written with another encryption key (its key check "
                    "value differs from the key given)");
  if (!h->encrypted() && cipher_ && !accept_unencrypted_)
    throw error(errc::encryption_mismatch,
                path +
                    ": the snapshot is not encrypted, but an encryption key was given; set "
                    "accept_unencrypted to read a store written before encryption was "
                    "turned on");
  const std::uint64_t header_size = h->size();
  if (h->last_seq != which.last_seq)
    throw bad(0, "header covers sequence number " + std::to_string(h->last_seq) +
                     " but the file name says " + std::to_string(which.last_seq));
  const std::uint64_t available = file->size() - std::min(file->size(), header_size);
  if (h->payload_length != available)  // checked before allocating anything
    throw bad(header_size, "header says " + std::to_string(h->payload_length) +
                               " payload bytes, file has " + std::to_string(available));
  loaded_snapshot out{which.file, *h, bytes(h->payload_length)};
  if (file->read_at(header_size, out.payload) != out.payload.size())
    throw bad(header_size, "file shrank while reading");
  if (crc32c(out.payload) != h->payload_crc) throw bad(header_size, "payload checksum mismatch");
  if (h->encrypted()) {
    bytes plain;
    if (!cipher_->open(detail::payload_cipher::purpose::snapshot, out.payload,
                       format::snapshot_ad(*h), plain))
      throw error(errc::authentication_failed,
                  path + " at offset " + std::to_string(header_size) +
                      ": the snapshot (sequence number " + std::to_string(h->last_seq) +
                      ") does not authenticate (its checksums match, so it is not damage by "
                      "accident: it was changed or renamed by someone without the key)");
    out.payload = std::move(plain);
  }
  if (h->compression == format::compression::zstd)
    out.payload = detail::zstd_decompress(out.payload, max_decompressed_bytes, path);
  return out;
}

void SnapshotStore::remove_leftovers() {
  bool removed = false;
  for (auto& name : dir_->list()) {
    auto stem = name.size() > 4 ? name.substr(0, name.size() - 4) : std::string();
    if (name.ends_with(format::temp_suffix) && format::parse_snapshot_file_name(stem)) {
      dir_->remove(name);
      removed = true;
    }
  }
  if (removed) dir_->sync();
}

}  // namespace prevalent

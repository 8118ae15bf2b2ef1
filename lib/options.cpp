// All option checks in one place: a store's open calls check_options(store_options), a journal
// opened on its own checks its part.
#include "prevalent/options.hpp"

#include <string>
#include <utility>

#include "compression.hpp"
#include "prevalent/cipher.hpp"
#include "prevalent/error.hpp"
#include "prevalent/format.hpp"

namespace prevalent {
namespace {

[[noreturn]] void invalid(const std::string& what) { throw error(errc::invalid_option, what); }

// A mode as chmod takes it: 0600.
std::string octal(unsigned mode) {
  std::string digits;
  do {
    digits.insert(digits.begin(), static_cast<char>('0' + (mode & 7u)));
    mode >>= 3;
  } while (mode != 0);
  return "0" + digits;
}

// Permission bits only (no setuid, setgid or sticky), with at least `owner` for the owner and
// no write for others.
void check_mode(const char* name, unsigned mode, unsigned owner) {
  if ((mode & ~0777u) != 0)
    invalid(std::string(name) + " " + octal(mode) + " has bits beyond the permissions (0777)");
  if ((mode & owner) != owner)
    invalid(std::string(name) + " " + octal(mode) + " must give the owner " + octal(owner));
  if ((mode & 0002u) != 0)
    invalid(std::string(name) + " " + octal(mode) + " must not let others write");
}

}  // namespace

void check_options(const journal_options& o) {
  constexpr std::uint64_t min_segment =
      format::segment_header_size + format::record_header_size + format::alignment;
  if (o.segment_bytes < min_segment)
    invalid("segment_bytes " + std::to_string(o.segment_bytes) + " is too small (minimum " +
            std::to_string(min_segment) + ")");
  if (o.max_record_bytes == 0 || o.max_record_bytes > format::max_payload_limit)
    invalid("max_record_bytes " + std::to_string(o.max_record_bytes) +
            " is out of range (1 .. 1 GiB)");
  if (o.sync.mode() == sync_policy::kind::interval && o.sync.period().count() <= 0)
    invalid("sync interval must be positive, got " + std::to_string(o.sync.period().count()) +
            " ns");
  if (o.max_queued_bytes == 0) invalid("max_queued_bytes must be positive");
  if (!known_codec(o.codec))
    invalid("codec " + std::to_string(static_cast<std::uint32_t>(o.codec)) +
            " is not a known codec (json, cbor or msgpack)");
  if (o.encryption_key && !detail::cipher_available())
    invalid(
        "encryption_key needs libsodium; prevalent was built without it (install "
        "libsodium-dev and rebuild, or open the store without a key)");
  if (o.encryption_key && o.max_record_bytes > format::max_payload_limit - format::sealed_overhead)
    invalid("max_record_bytes " + std::to_string(o.max_record_bytes) +
            " leaves no room for the encryption overhead (at most 1 GiB - " +
            std::to_string(format::sealed_overhead) + " with encryption_key)");
}

void check_options(const store_options& o) {
  check_options(static_cast<const journal_options&>(o));
  if (o.keep_snapshots == 0) invalid("keep_snapshots must be at least 1");
  if (o.snapshots.every.count() < 0) invalid("snapshots.every must not be negative");
  if (!known_codec(o.snapshot_codec))
    invalid("snapshot_codec " + std::to_string(static_cast<std::uint32_t>(o.snapshot_codec)) +
            " is not a known codec (json, cbor or msgpack)");
  if (o.compress_snapshots && !detail::zstd_available())
    invalid("compress_snapshots needs zstd; prevalent was built without libzstd");
  if (o.acks.replicas > 0 && o.acks.timeout.count() <= 0)
    invalid("acks.timeout must be positive with acks = replicated(" +
            std::to_string(o.acks.replicas) + ")");
  check_options(modes_of(o));
}

void check_options(const posix_modes& m) {
  check_mode("file_mode", m.file, 0600);
  check_mode("directory_mode", m.directory, 0700);
  if (m.insecure != modes_policy::warn && m.insecure != modes_policy::refuse &&
      m.insecure != modes_policy::ignore)
    invalid("insecure_modes " + std::to_string(static_cast<int>(m.insecure)) +
            " is not a known policy (warn, refuse or ignore)");
}

}  // namespace prevalent

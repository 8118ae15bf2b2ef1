// The digest of a serialized state, as snapshot headers record it (docs/FORMAT.md, snapshot
// header version 3): XXH3-128 of the state's bytes in the snapshot's codec, uncompressed and
// unencrypted. nlohmann writes a state canonically (object keys sorted), so two equal states
// serialized with the same codec have the same digest: a determinism check compares the
// digest of a replayed state with the one a snapshot recorded. Not a cryptographic hash: it
// finds accidental differences (a command that replays differently), not forged ones, which
// the snapshot's CRC-32C and, with an encryption key, its authentication tag are for.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "prevalent/bytes.hpp"

namespace prevalent {

// The 128-bit digest in XXH3's canonical byte order (big-endian): its hex form is what
// `xxh128sum` (Debian package xxhash) prints for the same bytes.
using digest128 = std::array<std::uint8_t, 16>;

// The digest of one serialized state.
digest128 state_digest(byte_view payload);

// Lowercase hex, 32 digits.
std::string to_hex(const digest128& d);

// The same digest over bytes that arrive in pieces: update() with each piece in order, then
// digest(). Not thread-safe; not copyable.
class StateHasher {
 public:
  StateHasher();
  ~StateHasher();
  StateHasher(const StateHasher&) = delete;
  StateHasher& operator=(const StateHasher&) = delete;

  void update(byte_view piece);
  // The digest of everything passed to update() so far (may be called more than once).
  digest128 digest() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace prevalent

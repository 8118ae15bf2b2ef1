// The state digest (state_digest.hpp): XXH3-128 from libxxhash.
#include "prevalent/state_digest.hpp"

#include <new>

#include <xxhash.h>

namespace prevalent {

namespace {
digest128 canonical(XXH128_hash_t h) {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, h);
  digest128 out;
  static_assert(sizeof(c.digest) == out.size());
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = c.digest[i];
  return out;
}
}  // namespace

digest128 state_digest(byte_view payload) {
  return canonical(XXH3_128bits(payload.data(), payload.size()));
}

std::string to_hex(const digest128& d) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * d.size());
  for (std::uint8_t b : d) {
    out += hex[b >> 4];
    out += hex[b & 0xf];
  }
  return out;
}

struct StateHasher::impl {
  XXH3_state_t* state = XXH3_createState();
  impl() {
    if (!state || XXH3_128bits_reset(state) != XXH_OK) {
      XXH3_freeState(state);
      throw std::bad_alloc();
    }
  }
  ~impl() { XXH3_freeState(state); }
  impl(const impl&) = delete;
  impl& operator=(const impl&) = delete;
};

StateHasher::StateHasher() : impl_(std::make_unique<impl>()) {}
StateHasher::~StateHasher() = default;

void StateHasher::update(byte_view piece) {
  if (!piece.empty()) XXH3_128bits_update(impl_->state, piece.data(), piece.size());
}

digest128 StateHasher::digest() const { return canonical(XXH3_128bits_digest(impl_->state)); }

}  // namespace prevalent

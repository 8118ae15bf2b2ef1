// Authenticated encryption of record and snapshot payloads at rest (docs/FORMAT.md,
// "Encryption"): XChaCha20-Poly1305 from libsodium, with subkeys derived from the application's
// key, a fresh random nonce per payload, and a key check value for the headers. Built only with
// libsodium; without it, constructing a cipher throws errc::invalid_option saying why.
//
// Threads: a cipher is immutable after construction; seal() and open() may run concurrently.
#pragma once

#include <array>
#include <cstdint>

#include "prevalent/bytes.hpp"
#include "prevalent/encryption_key.hpp"
#include "prevalent/format.hpp"

namespace prevalent::detail {

// Whether this build has libsodium (and so can encrypt).
bool cipher_available();

// Fills `out` from the operating system's cryptographic random source.
void random_bytes(std::uint8_t* out, std::size_t n);

class payload_cipher {
 public:
  // What a payload is: records and snapshots are sealed with different subkeys.
  enum class purpose { record, snapshot };

  explicit payload_cipher(const encryption_key& key);
  ~payload_cipher();  // zeroes the subkeys
  payload_cipher(const payload_cipher&) = delete;
  payload_cipher& operator=(const payload_cipher&) = delete;

  // Stored in encrypted headers; equal for equal keys, reveals nothing about the key.
  const format::key_check_value& key_check() const { return key_check_; }

  // Appends nonce || ciphertext || tag (plain.size() + format::sealed_overhead bytes) to `out`,
  // with `nonce` (format::nonce_size random bytes) or a fresh random one when null.
  void seal(purpose p, byte_view plain, byte_view ad, bytes& out,
            const std::uint8_t* nonce = nullptr) const;
  // Replaces `out` with the plaintext of `sealed`; false (and `out` empty) if it does not
  // authenticate with this key and `ad`.
  bool open(purpose p, byte_view sealed, byte_view ad, bytes& out) const;

 private:
  const std::uint8_t* key(purpose p) const {
    return p == purpose::record ? record_key_.data() : snapshot_key_.data();
  }
  std::array<std::uint8_t, 32> record_key_{};
  std::array<std::uint8_t, 32> snapshot_key_{};
  format::key_check_value key_check_{};
};

}  // namespace prevalent::detail

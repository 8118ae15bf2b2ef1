// XChaCha20-Poly1305 sealing of payloads and the key derivation of docs/FORMAT.md, "Encryption".
#include "prevalent/cipher.hpp"

#include <string>

#include "prevalent/error.hpp"

#ifdef PREVALENT_HAVE_SODIUM
#include <sodium.h>
#endif

namespace prevalent::detail {

#ifdef PREVALENT_HAVE_SODIUM

namespace {

// Labels of the keyed BLAKE2b derivations (the application's key is the BLAKE2b key).
constexpr std::string_view record_label = "prevalent journal record key v1";
constexpr std::string_view snapshot_label = "prevalent snapshot key v1";
constexpr std::string_view check_label = "prevalent key check v1";

static_assert(format::nonce_size == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
static_assert(format::tag_size == crypto_aead_xchacha20poly1305_ietf_ABYTES);

void init_sodium() {
  static const int ready = sodium_init();
  if (ready < 0) throw error(errc::invalid_option, "libsodium failed to initialize");
}

void derive(std::uint8_t* out, std::size_t n, std::string_view label, const encryption_key& key) {
  crypto_generichash(out, n, reinterpret_cast<const unsigned char*>(label.data()), label.size(),
                     key.bytes().data(), key.bytes().size());
}

}  // namespace

bool cipher_available() { return true; }

void random_bytes(std::uint8_t* out, std::size_t n) {
  init_sodium();
  randombytes_buf(out, n);
}

payload_cipher::payload_cipher(const encryption_key& key) {
  init_sodium();
  derive(record_key_.data(), record_key_.size(), record_label, key);
  derive(snapshot_key_.data(), snapshot_key_.size(), snapshot_label, key);
  derive(key_check_.data(), key_check_.size(), check_label, key);
}

payload_cipher::~payload_cipher() {
  sodium_memzero(record_key_.data(), record_key_.size());
  sodium_memzero(snapshot_key_.data(), snapshot_key_.size());
}

void payload_cipher::seal(purpose p, byte_view plain, byte_view ad, bytes& out,
                          const std::uint8_t* nonce) const {
  const std::size_t at = out.size();
  out.resize(at + plain.size() + format::sealed_overhead);
  std::uint8_t* n = &out[at];
  if (nonce)
    std::copy(nonce, nonce + format::nonce_size, n);
  else
    randombytes_buf(n, format::nonce_size);
  std::uint8_t* ct = n + format::nonce_size;
  crypto_aead_xchacha20poly1305_ietf_encrypt_detached(ct, ct + plain.size(), nullptr, plain.data(),
                                                      plain.size(), ad.data(), ad.size(), nullptr,
                                                      n, key(p));
}

bool payload_cipher::open(purpose p, byte_view sealed, byte_view ad, bytes& out) const {
  out.clear();
  if (sealed.size() < format::sealed_overhead) return false;
  const std::size_t len = sealed.size() - format::sealed_overhead;
  out.resize(len);
  const std::uint8_t* n = sealed.data();
  const std::uint8_t* ct = n + format::nonce_size;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(out.data(), nullptr, ct, len, ct + len,
                                                          ad.data(), ad.size(), n, key(p)) != 0) {
    out.clear();
    return false;
  }
  return true;
}

#else

namespace {
[[noreturn]] void unavailable() {
  throw error(errc::invalid_option,
              "encryption_key needs libsodium; prevalent was built without it (install "
              "libsodium-dev and rebuild, or open the store without a key)");
}
}  // namespace

bool cipher_available() { return false; }
void random_bytes(std::uint8_t*, std::size_t) { unavailable(); }
payload_cipher::payload_cipher(const encryption_key&) { unavailable(); }
payload_cipher::~payload_cipher() = default;
void payload_cipher::seal(purpose, byte_view, byte_view, bytes&, const std::uint8_t*) const {
  unavailable();
}
bool payload_cipher::open(purpose, byte_view, byte_view, bytes&) const { unavailable(); }

#endif

}  // namespace prevalent::detail

// NaCl crypto_box on libsodium. The precomputation runs X25519 through crypto_scalarmult, which
// returns -1 for an all-zero result, so a low-order peer key never becomes a box key.
//
// The two variants differ after the key: the classic box is XSalsa20-Poly1305 in NaCl's
// secretbox layout (MAC first). The ChaCha variant NEAR's server uses is RustCrypto's ChaChaBox:
// the same HChaCha20-derived key, then the IETF XChaCha20-Poly1305 AEAD with the tag LAST — not
// libsodium's crypto_box_curve25519xchacha20poly1305_easy, which is secretbox-style and does not
// interoperate with it (the RustCrypto vector in tests/crypto/nacl_box_test.cpp pins this).

#include "crypto/nacl_box.hpp"

#include <sodium.h>

#include "crypto/detail/sodium.hpp"

namespace e2ee::crypto::nacl_box {

static_assert(crypto_box_curve25519xsalsa20poly1305_BEFORENMBYTES == kKeyBytes);
static_assert(crypto_box_curve25519xchacha20poly1305_BEFORENMBYTES == kKeyBytes);
static_assert(crypto_box_curve25519xsalsa20poly1305_NONCEBYTES == kNonceBytes);
static_assert(crypto_box_curve25519xchacha20poly1305_NONCEBYTES == kNonceBytes);
static_assert(crypto_box_curve25519xsalsa20poly1305_MACBYTES == kMacBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kMacBytes);
static_assert(crypto_box_curve25519xsalsa20poly1305_PUBLICKEYBYTES == 32 &&
              crypto_box_curve25519xchacha20poly1305_SECRETKEYBYTES == kKeyBytes);

Result<SecretArray<kKeyBytes>> precompute(Cipher cipher, std::span<const std::uint8_t, kKeyBytes> own_private,
                                          ByteView peer_public) {
  if (peer_public.size() != 32) return make_error(Errc::invalid_length, "nacl box: public key must be 32 bytes");
  detail::ensure_sodium();
  SecretArray<kKeyBytes> key;
  const int rc = cipher == Cipher::xchacha20_poly1305
                     ? crypto_box_curve25519xchacha20poly1305_beforenm(key.data(), peer_public.data(), own_private.data())
                     : crypto_box_curve25519xsalsa20poly1305_beforenm(key.data(), peer_public.data(), own_private.data());
  if (rc != 0) return make_error(Errc::invalid_key, "nacl box: low-order public key (all-zero shared secret)");
  return key;
}

Result<Bytes> seal(Cipher cipher, const SecretArray<kKeyBytes>& key, ByteView nonce, ByteView plaintext) {
  if (nonce.size() != kNonceBytes) return make_error(Errc::invalid_length, "nacl box: nonce must be 24 bytes");
  detail::ensure_sodium();
  Bytes out(plaintext.size() + kMacBytes);
  // The *_easy_afternm functions accept an empty message; a null pointer for it is fine for
  // libsodium but not for the span, so hand it a valid address either way.
  static const std::uint8_t kEmpty = 0;
  const std::uint8_t* in = plaintext.empty() ? &kEmpty : plaintext.data();
  int rc;
  if (cipher == Cipher::xchacha20_poly1305) {
    unsigned long long written = 0;
    rc = crypto_aead_xchacha20poly1305_ietf_encrypt(out.data(), &written, in, plaintext.size(), nullptr, 0, nullptr,
                                                    nonce.data(), key.data());
  } else {
    rc = crypto_box_easy_afternm(out.data(), in, plaintext.size(), nonce.data(), key.data());
  }
  if (rc != 0) return make_error(Errc::internal, "nacl box: seal failed");
  return out;
}

Result<Bytes> open(Cipher cipher, const SecretArray<kKeyBytes>& key, ByteView nonce, ByteView boxed) {
  if (nonce.size() != kNonceBytes) return make_error(Errc::invalid_length, "nacl box: nonce must be 24 bytes");
  if (boxed.size() < kMacBytes) return make_error(Errc::authentication_failed, "nacl box: MAC did not verify");
  detail::ensure_sodium();
  Bytes out(boxed.size() - kMacBytes);
  std::uint8_t sink = 0;  // a valid address for an empty plaintext (nothing is written to it)
  std::uint8_t* dst = out.empty() ? &sink : out.data();
  int rc;
  if (cipher == Cipher::xchacha20_poly1305) {
    unsigned long long written = 0;
    rc = crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &written, nullptr, boxed.data(), boxed.size(), nullptr, 0,
                                                    nonce.data(), key.data());
  } else {
    rc = crypto_box_open_easy_afternm(dst, boxed.data(), boxed.size(), nonce.data(), key.data());
  }
  if (rc != 0) {
    // libsodium writes nothing before the MAC check, but the buffer is wiped anyway so no
    // caller could ever see bytes of an unauthenticated plaintext.
    sodium_memzero(out.data(), out.size());
    return make_error(Errc::authentication_failed, "nacl box: MAC did not verify");
  }
  return out;
}

}  // namespace e2ee::crypto::nacl_box

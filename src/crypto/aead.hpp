#pragma once
// Authenticated encryption. Layout everywhere: ciphertext followed by the 16-byte tag.
// Authentication failure is an Error value (Errc::authentication_failed) and never yields any
// plaintext, partial or whole.

#include "common/bytes.hpp"
#include "common/result.hpp"

namespace e2ee::crypto {

enum class Aead {
  chacha20_poly1305,   // RFC 8439 (libsodium up to 2 KiB, OpenSSL above): 32-byte key, 12-byte nonce
  aes_gcm,             // NIST SP 800-38D (OpenSSL): 16/24/32-byte key (protocols use 32), 1..128-byte nonce (protocols use 12)
  xchacha20_poly1305,  // draft-irtf-cfrg-xchacha (libsodium): 32-byte key, 24-byte nonce
};

inline constexpr std::size_t kAeadTagBytes = 16;
// OpenSSL 3.0's GCM refuses longer nonces (GCM_IV_MAX_SIZE); SP 800-38D allows up to 2^64 bits,
// but no protocol here uses anything but 12 bytes, so longer ones are Errc::invalid_length.
inline constexpr std::size_t kAesGcmMaxNonceBytes = 128;

// Encrypts `plaintext`; returns ciphertext || tag. Fails only on a bad key or nonce length.
Result<Bytes> aead_seal(Aead alg, ByteView key, ByteView nonce, ByteView plaintext, ByteView aad = {});

// Verifies and decrypts ciphertext || tag. Returns the plaintext only if the tag verifies.
// Input shorter than the tag is Errc::authentication_failed too: it is peer data that failed
// to authenticate, not a caller's sizing mistake.
Result<Bytes> aead_open(Aead alg, ByteView key, ByteView nonce, ByteView ciphertext_and_tag,
                        ByteView aad = {});

}  // namespace e2ee::crypto

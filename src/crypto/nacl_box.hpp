#pragma once
// NaCl crypto_box, split into its two halves so that one precomputed key can seal many messages:
//   key = H(X25519(own_private, peer_public), 0^16)   H = HSalsa20 (classic box) or HChaCha20
//   XSalsa20 box:  MAC(16) ‖ XSalsa20(key, nonce24, plaintext)         (NaCl / libsodium / PyNaCl)
//   XChaCha20 box: XChaCha20-Poly1305-IETF(key, nonce24, plaintext) ‖ tag(16)   (RustCrypto ChaChaBox)
// NEAR AI's Ed25519 "v1" field encryption (near-phala-protocol.md section 10.2) is built on it:
// its server seals with the XChaCha20 variant and opens either. (The spec's §1 table says "MAC
// first" for both; that holds only for XSalsa20 — RustCrypto's ChaChaBox puts the tag last.)

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto::nacl_box {

enum class Cipher {
  xsalsa20_poly1305,   // crypto_box_curve25519xsalsa20poly1305 (PyNaCl's Box, libsodium crypto_box_*)
  xchacha20_poly1305,  // RustCrypto ChaChaBox: HChaCha20 key, IETF XChaCha20-Poly1305, tag last
};

inline constexpr std::size_t kKeyBytes = 32;
inline constexpr std::size_t kNonceBytes = 24;
inline constexpr std::size_t kMacBytes = 16;

// The precomputed box key of `own_private` (an X25519 scalar) and `peer_public` (32 bytes).
// Errc::invalid_length for a peer key that is not 32 bytes, Errc::invalid_key for a low-order
// peer key (all-zero X25519 result).
Result<SecretArray<kKeyBytes>> precompute(Cipher cipher, std::span<const std::uint8_t, kKeyBytes> own_private,
                                          ByteView peer_public);

// The box (layout per cipher, above). Errc::invalid_length only for a nonce that is not 24 bytes.
Result<Bytes> seal(Cipher cipher, const SecretArray<kKeyBytes>& key, ByteView nonce, ByteView plaintext);

// Verifies and decrypts a box; the plaintext only when the MAC verifies
// (Errc::authentication_failed otherwise, also for input shorter than the MAC).
Result<Bytes> open(Cipher cipher, const SecretArray<kKeyBytes>& key, ByteView nonce, ByteView boxed);

}  // namespace e2ee::crypto::nacl_box

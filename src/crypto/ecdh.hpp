#pragma once
// Elliptic-curve key agreement for the field-level E2EE protocols (Venice, NEAR AI, dstack):
// secp256k1 ECDH whose shared secret is the 32-byte X coordinate, X25519, and the conversion of
// Ed25519 keys to X25519 keys. Every peer-supplied key is validated before use.

#include <array>
#include <cstdint>
#include <memory>

#include "common/bytes.hpp"
#include "common/result.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto {

namespace secp256k1 {

inline constexpr std::size_t kPrivateKeyBytes = 32;
inline constexpr std::size_t kUncompressedBytes = 65;  // 0x04 || X || Y
inline constexpr std::size_t kRawBytes = 64;           // X || Y (how Venice and dstack publish keys)
inline constexpr std::size_t kCompressedBytes = 33;    // 0x02/0x03 || X

// A point on secp256k1, validated on construction (on the curve, not the point at infinity).
class PublicKey {
 public:
  // Accepts 65-byte uncompressed, 64-byte raw X||Y and 33-byte compressed encodings.
  static Result<PublicKey> parse(ByteView encoded);

  const std::array<std::uint8_t, kUncompressedBytes>& uncompressed() const noexcept { return point_; }
  // X || Y without the 0x04 prefix.
  ByteView raw() const noexcept { return ByteView(point_).subspan(1); }
  std::array<std::uint8_t, kCompressedBytes> compressed() const noexcept;
  // Ethereum-style address: the last 20 bytes of Keccak-256(X || Y).
  std::array<std::uint8_t, 20> ethereum_address() const;

  bool operator==(const PublicKey&) const = default;

 private:
  explicit PublicKey(const std::array<std::uint8_t, kUncompressedBytes>& point) : point_(point) {}
  std::array<std::uint8_t, kUncompressedBytes> point_;
};

class PrivateKey {
 public:
  static PrivateKey generate();
  // Big-endian scalar; must be in [1, n-1].
  static Result<PrivateKey> from_bytes(ByteView scalar);

  const SecretArray<kPrivateKeyBytes>& bytes() const noexcept { return scalar_; }
  const PublicKey& public_key() const noexcept { return public_key_; }

 private:
  PrivateKey(const SecretArray<kPrivateKeyBytes>& scalar, PublicKey pub)
      : scalar_(scalar), public_key_(std::move(pub)) {}
  SecretArray<kPrivateKeyBytes> scalar_;
  PublicKey public_key_;
};

// ECDH: the X coordinate of scalar * point, 32 bytes big-endian.
Result<SecretArray<32>> ecdh(const PrivateKey& own, const PublicKey& peer);

}  // namespace secp256k1

namespace x25519 {

inline constexpr std::size_t kKeyBytes = 32;

struct KeyPair {
  SecretArray<kKeyBytes> private_key;
  std::array<std::uint8_t, kKeyBytes> public_key;
};

KeyPair generate();
// Derives the public key of a 32-byte private scalar (clamped as RFC 7748 requires).
std::array<std::uint8_t, kKeyBytes> public_from_private(std::span<const std::uint8_t, kKeyBytes> private_key);
// RFC 7748 X25519. Fails when `peer_public` is not 32 bytes or when the result is all zero
// (a low-order peer key, RFC 7748 section 6.1).
Result<SecretArray<32>> ecdh(std::span<const std::uint8_t, kKeyBytes> own_private, ByteView peer_public);

}  // namespace x25519

namespace ed25519 {

inline constexpr std::size_t kSeedBytes = 32;
inline constexpr std::size_t kPublicKeyBytes = 32;

struct KeyPair {
  SecretArray<kSeedBytes> seed;  // RFC 8032 private key
  std::array<std::uint8_t, kPublicKeyBytes> public_key;
};

KeyPair generate();
KeyPair from_seed(std::span<const std::uint8_t, kSeedBytes> seed);

// Birational map of an Ed25519 public key to its X25519 (Montgomery u) public key. Fails on an
// encoding that is not a valid point or is of small order.
Result<std::array<std::uint8_t, 32>> public_to_x25519(ByteView ed25519_public);
// X25519 private key of an Ed25519 seed: clamp(SHA-512(seed)[0:32]).
SecretArray<32> seed_to_x25519_private(std::span<const std::uint8_t, kSeedBytes> seed);

// RFC 8032 signatures (dstack/NEAR reports sign with the same key they encrypt to).
std::array<std::uint8_t, 64> sign(const KeyPair& key, ByteView message);
bool verify(ByteView public_key, ByteView message, ByteView signature);

}  // namespace ed25519

}  // namespace e2ee::crypto

// Ed25519 (RFC 8032) and its conversion to X25519, on libsodium.

#include <sodium.h>

#include <cstdlib>

#include "crypto/detail/sodium.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/random.hpp"

namespace e2ee::crypto::ed25519 {

static_assert(crypto_sign_SEEDBYTES == kSeedBytes && crypto_sign_PUBLICKEYBYTES == kPublicKeyBytes);
static_assert(crypto_sign_BYTES == 64 && crypto_sign_SECRETKEYBYTES == 64);

namespace {

// libsodium's 64-byte secret key is seed || public key. It is rebuilt from the seed every time,
// so that a KeyPair whose public_key does not belong to its seed cannot make us sign with a
// mismatched public key (which leaks the signing key through the two differing signatures).
void expand(std::span<const std::uint8_t, kSeedBytes> seed, std::array<std::uint8_t, kPublicKeyBytes>& pk,
            SecretArray<64>& sk) {
  detail::ensure_sodium();
  if (crypto_sign_seed_keypair(pk.data(), sk.data(), seed.data()) != 0) std::abort();  // cannot fail in 1.0.18
}

}  // namespace

KeyPair generate() {
  const auto seed = random_secret<kSeedBytes>();
  return from_seed(seed.span());
}

KeyPair from_seed(std::span<const std::uint8_t, kSeedBytes> seed) {
  KeyPair kp{SecretArray<kSeedBytes>(seed), {}};
  SecretArray<64> sk;
  expand(seed, kp.public_key, sk);
  return kp;
}

Result<std::array<std::uint8_t, 32>> public_to_x25519(ByteView ed25519_public) {
  if (ed25519_public.size() != kPublicKeyBytes)
    return make_error(Errc::invalid_length, "ed25519: public key must be 32 bytes");
  detail::ensure_sodium();
  std::array<std::uint8_t, 32> out{};
  // libsodium refuses encodings that do not decode to a point, small-order points and points
  // outside the prime-order subgroup: converting those would hand the peer a key that forces a
  // predictable X25519 result.
  if (crypto_sign_ed25519_pk_to_curve25519(out.data(), ed25519_public.data()) != 0)
    return make_error(Errc::invalid_key, "ed25519: public key is not a valid prime-order point");
  return out;
}

SecretArray<32> seed_to_x25519_private(std::span<const std::uint8_t, kSeedBytes> seed) {
  std::array<std::uint8_t, kPublicKeyBytes> pk{};
  SecretArray<64> sk;
  expand(seed, pk, sk);
  SecretArray<32> out;
  // = clamp(SHA-512(seed)[0:32]); only the seed half of sk is read.
  if (crypto_sign_ed25519_sk_to_curve25519(out.data(), sk.data()) != 0) std::abort();
  return out;
}

std::array<std::uint8_t, 64> sign(const KeyPair& key, ByteView message) {
  std::array<std::uint8_t, kPublicKeyBytes> pk{};
  SecretArray<64> sk;
  expand(key.seed.span(), pk, sk);
  std::array<std::uint8_t, 64> sig{};
  if (crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), sk.data()) != 0) std::abort();
  return sig;
}

bool verify(ByteView public_key, ByteView message, ByteView signature) {
  if (public_key.size() != kPublicKeyBytes || signature.size() != crypto_sign_BYTES) return false;
  detail::ensure_sodium();
  // libsodium 1.0.18 rejects S >= L, small-order R and A, and non-canonical A.
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(), public_key.data()) == 0;
}

}  // namespace e2ee::crypto::ed25519

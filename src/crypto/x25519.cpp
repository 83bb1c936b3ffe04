// X25519 (RFC 7748) on libsodium. crypto_scalarmult clamps the scalar, masks the top bit of the
// peer's u-coordinate as RFC 7748 section 5 requires, runs in constant time, and returns -1 when
// the result is all zero, i.e. when the peer sent a low-order point (section 6.1's check).

#include <sodium.h>

#include <cstdlib>

#include "crypto/detail/sodium.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/random.hpp"

namespace e2ee::crypto::x25519 {

static_assert(crypto_scalarmult_BYTES == kKeyBytes && crypto_scalarmult_SCALARBYTES == kKeyBytes);

KeyPair generate() {
  KeyPair kp;
  random_bytes(kp.private_key.span());
  kp.public_key = public_from_private(kp.private_key.span());
  return kp;
}

std::array<std::uint8_t, kKeyBytes> public_from_private(std::span<const std::uint8_t, kKeyBytes> private_key) {
  detail::ensure_sodium();
  std::array<std::uint8_t, kKeyBytes> pub{};
  // A clamped scalar is a nonzero multiple of 8 below 8 * (group order), so k*B is never the
  // identity; a failure here would mean libsodium itself is broken.
  if (crypto_scalarmult_base(pub.data(), private_key.data()) != 0) std::abort();
  return pub;
}

Result<SecretArray<32>> ecdh(std::span<const std::uint8_t, kKeyBytes> own_private, ByteView peer_public) {
  if (peer_public.size() != kKeyBytes) return make_error(Errc::invalid_length, "x25519: public key must be 32 bytes");
  detail::ensure_sodium();
  SecretArray<32> shared;
  if (crypto_scalarmult(shared.data(), own_private.data(), peer_public.data()) != 0)
    return make_error(Errc::invalid_key, "x25519: low-order public key (all-zero shared secret)");
  return shared;
}

}  // namespace e2ee::crypto::x25519

#pragma once
// The fixed keys the envelope targets open with. Deterministic, so that seeds sealed to them
// (scripts/fuzz --seeds) stay valid and a reproducer replays anywhere. Test keys only.

#include <array>
#include <cstdint>
#include <cstdlib>

#include "crypto/mlkem768.hpp"
#include "protocol/field/envelope.hpp"

namespace e2ee::fuzz {

// An ML-KEM-768 key pair from the seed tag, tag, … (64 bytes).
inline crypto::mlkem768::DecapsulationKey fixed_mlkem_key(std::uint8_t tag) {
  std::array<std::uint8_t, crypto::mlkem768::kSeedBytes> seed{};
  seed.fill(tag);
  auto key = crypto::mlkem768::DecapsulationKey::from_seed(seed);
  if (!key) std::abort();
  return std::move(key).value();
}

// A field-E2EE key pair (secp256k1 scalar or Ed25519 seed) from the secret tag+1, tag+2, …
inline protocol::field::KeyPair fixed_field_key(protocol::field::Algo algo, std::uint8_t tag) {
  std::array<std::uint8_t, 32> secret{};
  for (std::size_t i = 0; i < secret.size(); ++i) secret[i] = static_cast<std::uint8_t>(tag + 1 + i);
  auto key = protocol::field::KeyPair::from_secret(algo, secret);
  if (!key) std::abort();
  return std::move(key).value();
}

inline protocol::field::PeerKey public_of(const protocol::field::KeyPair& key) {
  auto peer = protocol::field::PeerKey::parse(key.algo(), key.public_raw());
  if (!peer) std::abort();
  return std::move(peer).value();
}

}  // namespace e2ee::fuzz

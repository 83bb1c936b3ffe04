#pragma once
// The one source of randomness for keys, nonces and seeds: a per-thread fast-key-erasure ChaCha20
// generator keyed from the kernel (getrandom(2)); see random.cpp.

#include <cstddef>
#include <cstdint>
#include <span>

#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto {

// Fills `out` with cryptographically secure random bytes. Aborts the process if the kernel
// cannot supply them: there is no safe way to continue without randomness.
void random_bytes(std::span<std::uint8_t> out) noexcept;

template <std::size_t N>
SecretArray<N> random_secret() noexcept {
  SecretArray<N> s;
  random_bytes(s.span());
  return s;
}

}  // namespace e2ee::crypto

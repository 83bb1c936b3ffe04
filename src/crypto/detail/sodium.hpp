#pragma once
// libsodium must be initialised once before use: sodium_init() selects the fastest
// implementations for this CPU and sets up its RNG. The function-local static makes the first
// call thread-safe and every later call a single load.

#include <sodium.h>

#include <cstdlib>

namespace e2ee::crypto::detail {

inline void ensure_sodium() noexcept {
  static const bool initialised = sodium_init() >= 0;  // 1 = "already initialised", also fine
  if (!initialised) std::abort();  // no safe way to run the crypto layer without it
}

}  // namespace e2ee::crypto::detail

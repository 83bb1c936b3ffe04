#include "crypto/random.hpp"

#include <openssl/rand.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>

namespace e2ee::crypto {

void random_bytes(std::span<std::uint8_t> out) noexcept {
  // OpenSSL's private DRBG (NIST SP 800-90A CTR_DRBG, AES-256), one per thread, seeded and
  // periodically reseeded from getrandom(2), and reseeded in a forked child. A nonce per stream
  // line used to be a getrandom(2) system call each: two per relayed token, and the gateway's
  // largest single cost after base64 (perf; docs/performance.md, history).
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t n = std::min<std::size_t>(out.size() - done, INT_MAX);
    if (RAND_priv_bytes(out.data() + done, static_cast<int>(n)) != 1) {
      std::fputs("fatal: the CSPRNG failed; refusing to continue without randomness\n", stderr);
      std::abort();
    }
    done += n;
  }
}

}  // namespace e2ee::crypto

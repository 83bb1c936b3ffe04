#include "crypto/random.hpp"

#include <sys/random.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace e2ee::crypto {

void random_bytes(std::span<std::uint8_t> out) noexcept {
  std::size_t done = 0;
  while (done < out.size()) {
    // getrandom(2) blocks only until the kernel pool is initialised once after boot and never
    // returns short reads for requests <= 256 bytes; the loop covers longer requests and EINTR.
    const ssize_t n = ::getrandom(out.data() + done, out.size() - done, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fputs("fatal: getrandom() failed; refusing to continue without randomness\n", stderr);
      std::abort();
    }
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace e2ee::crypto

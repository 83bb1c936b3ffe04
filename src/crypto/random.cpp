#include "crypto/random.hpp"

#include <pthread.h>
#include <sys/random.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "crypto/detail/sodium.hpp"

namespace e2ee::crypto {
namespace {

// A fast-key-erasure generator (D. J. Bernstein, "Fast-key-erasure random-number generators",
// 2017) per thread, over ChaCha20: each draw expands the current 32-byte key into 32 + n bytes of
// keystream, keeps the first 32 as the next key and hands out the rest, so nothing that could
// reproduce an earlier output stays in memory. The key comes from getrandom(2) and is replaced
// from it after kReseedBytes, and in a forked child before its first draw.
//
// Why not a getrandom(2) call per draw, as before: every stream line's nonce was one, two per
// relayed token, and the gateway's largest cost after base64. OpenSSL's DRBG, tried next, spent
// as much again in parameter lookups (perf; docs/performance.md, history).
constexpr std::size_t kMaxDraw = 256;  // larger requests (rare: bulk test data) go to the kernel
constexpr std::size_t kReseedBytes = std::size_t{1} << 20;

std::atomic<std::uint64_t> g_fork_generation{0};

void on_fork_in_child() noexcept { g_fork_generation.fetch_add(1, std::memory_order_relaxed); }

void kernel_bytes(std::uint8_t* out, std::size_t n) noexcept {
  std::size_t done = 0;
  while (done < n) {
    // getrandom(2) blocks only until the kernel pool is initialised once after boot and never
    // returns short reads for requests <= 256 bytes; the loop covers longer requests and EINTR.
    const ssize_t got = ::getrandom(out + done, n - done, 0);
    if (got < 0) {
      if (errno == EINTR) continue;
      std::fputs("fatal: getrandom() failed; refusing to continue without randomness\n", stderr);
      std::abort();
    }
    done += static_cast<std::size_t>(got);
  }
}

struct ThreadGenerator {
  std::array<std::uint8_t, randombytes_SEEDBYTES> key{};
  bool seeded = false;
  std::uint64_t fork_generation = 0;
  std::size_t drawn = 0;  // since the last seeding

  ~ThreadGenerator() {
    sodium_memzero(key.data(), key.size());
    seeded = false;  // a draw from a later destructor on this thread reseeds rather than use a zero key
  }

  void draw(std::uint8_t* out, std::size_t n) noexcept {
    const std::uint64_t generation = g_fork_generation.load(std::memory_order_relaxed);
    if (!seeded || fork_generation != generation || drawn >= kReseedBytes) {
      kernel_bytes(key.data(), key.size());
      seeded = true;
      fork_generation = generation;
      drawn = 0;
    }
    std::array<std::uint8_t, randombytes_SEEDBYTES + kMaxDraw> stream;
    const std::size_t len = key.size() + n;
    randombytes_buf_deterministic(stream.data(), len, key.data());
    std::memcpy(key.data(), stream.data(), key.size());
    std::memcpy(out, stream.data() + key.size(), n);
    sodium_memzero(stream.data(), len);
    drawn += n;
  }
};

thread_local ThreadGenerator t_generator;

}  // namespace

void random_bytes(std::span<std::uint8_t> out) noexcept {
  if (out.empty()) return;
  if (out.size() > kMaxDraw) {
    kernel_bytes(out.data(), out.size());
    return;
  }
  static const bool ready = [] {
    detail::ensure_sodium();
    // A forked child must not repeat its parent's next outputs: the handler makes every thread
    // generator in the child reseed before it draws.
    if (pthread_atfork(nullptr, nullptr, on_fork_in_child) != 0) {
      std::fputs("fatal: pthread_atfork() failed; refusing to continue without fork-safe randomness\n", stderr);
      std::abort();
    }
    return true;
  }();
  (void)ready;
  t_generator.draw(out.data(), out.size());
}

}  // namespace e2ee::crypto

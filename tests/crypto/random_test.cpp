#include "crypto/random.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <thread>
#include <vector>

namespace e2ee::crypto {
namespace {

bool all_zero(std::span<const std::uint8_t> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::uint8_t b) { return b == 0; });
}

// Chance of a false failure below: 2^-256 per comparison.
TEST(Random, TwoDrawsDiffer) {
  std::array<std::uint8_t, 32> a{}, b{};
  random_bytes(a);
  random_bytes(b);
  EXPECT_NE(a, b);
  EXPECT_FALSE(all_zero(a));
  EXPECT_FALSE(all_zero(b));
}

// Large requests are served in pieces; the whole buffer must still be filled.
// Each 32-byte window being non-zero would fail with probability ~2^-256 per window for a
// correct implementation, but catches an unfilled tail at once.
TEST(Random, LargeRequestIsFilledToTheEnd) {
  std::vector<std::uint8_t> big(1 << 20, 0);
  random_bytes(big);
  for (std::size_t off = 0; off < big.size(); off += 32) {
    ASSERT_FALSE(all_zero(std::span<const std::uint8_t>(big).subspan(off, 32))) << "window at " << off;
  }
  std::vector<std::uint8_t> odd(257, 0);
  random_bytes(odd);
  EXPECT_FALSE(all_zero(std::span<const std::uint8_t>(odd).last(32)));
}

// A user-space generator must not hand a forked child the parent's next bytes (OpenSSL's DRBG
// reseeds when it sees a new process; this pins that we rely on it correctly).
TEST(Random, AForkedChildDrawsDifferentBytes) {
  std::array<std::uint8_t, 32> warm{};
  random_bytes(warm);  // the parent's DRBG is instantiated before the fork
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    std::array<std::uint8_t, 32> drawn{};
    random_bytes(drawn);
    const bool ok = ::write(pipe_fds[1], drawn.data(), drawn.size()) == static_cast<ssize_t>(drawn.size());
    ::_exit(ok ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  std::array<std::uint8_t, 32> parent{}, from_child{};
  random_bytes(parent);
  std::size_t got = 0;
  while (got < from_child.size()) {
    const ssize_t n = ::read(pipe_fds[0], from_child.data() + got, from_child.size() - got);
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  ASSERT_EQ(got, from_child.size());
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(parent, from_child);
}

// Small draws (nonces, seeds) come from the per-thread generator, large ones from the kernel; the
// same checks for the generator's side, across more than one reseeding interval (1 MiB): every
// byte value appears, and no 12-byte nonce repeats.
TEST(Random, ManySmallDrawsLookUniformAndNeverRepeat) {
  std::array<std::size_t, 256> counts{};
  std::vector<std::array<std::uint8_t, 12>> nonces(100000);
  for (auto& n : nonces) {
    random_bytes(n);
    for (const auto b : n) ++counts[b];
  }
  for (std::size_t v = 0; v < 256; ++v) EXPECT_GT(counts[v], 0u) << "value " << v;
  std::sort(nonces.begin(), nonces.end());
  EXPECT_EQ(std::adjacent_find(nonces.begin(), nonces.end()), nonces.end());
}

TEST(Random, ThreadsDrawDifferentBytes) {
  std::array<std::array<std::uint8_t, 32>, 4> drawn{};
  std::vector<std::thread> threads;
  for (auto& d : drawn) threads.emplace_back([&d] { random_bytes(d); });
  for (auto& t : threads) t.join();
  for (std::size_t i = 0; i < drawn.size(); ++i)
    for (std::size_t j = i + 1; j < drawn.size(); ++j) EXPECT_NE(drawn[i], drawn[j]) << i << " " << j;
}

TEST(Random, EmptyRequestIsFine) {
  std::vector<std::uint8_t> none;
  random_bytes(none);
  EXPECT_TRUE(none.empty());
}

TEST(Random, SecretHelperFillsTheArray) {
  const auto a = random_secret<32>();
  const auto b = random_secret<32>();
  EXPECT_FALSE(all_zero(a.span()));
  EXPECT_FALSE(std::equal(a.span().begin(), a.span().end(), b.span().begin()));
}

// A rough distribution check: over 64 KiB every byte value should appear (expected 256 times
// each; missing one has probability ~256 * e^-256).
TEST(Random, EveryByteValueAppears) {
  std::vector<std::uint8_t> buf(1 << 16);
  random_bytes(buf);
  std::array<std::size_t, 256> counts{};
  for (const auto b : buf) ++counts[b];
  for (std::size_t v = 0; v < 256; ++v) EXPECT_GT(counts[v], 0u) << "value " << v;
}

}  // namespace
}  // namespace e2ee::crypto

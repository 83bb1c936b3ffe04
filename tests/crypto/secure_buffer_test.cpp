#include "crypto/secure_buffer.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <vector>

namespace e2ee::crypto {
namespace {

// An upstream allocator that records the contents of every block it is asked to free, so the
// test can see what a SecretBytes leaves behind in memory it gives back.
std::vector<std::vector<std::uint8_t>> g_freed_blocks;

template <typename T>
struct RecordingAllocator {
  using value_type = T;
  T* allocate(std::size_t n) { return std::allocator<T>{}.allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(p);
    g_freed_blocks.emplace_back(bytes, bytes + n * sizeof(T));
    std::allocator<T>{}.deallocate(p, n);
  }
};

using RecordedSecretBytes = std::vector<std::uint8_t, BasicWipingAllocator<std::uint8_t, RecordingAllocator>>;

bool all_zero(const std::vector<std::uint8_t>& block) {
  return std::all_of(block.begin(), block.end(), [](std::uint8_t b) { return b == 0; });
}

TEST(SecureBuffer, SecretBytesWipesOnDestruction) {
  g_freed_blocks.clear();
  {
    RecordedSecretBytes secret(64, 0xA5);
  }
  ASSERT_EQ(g_freed_blocks.size(), 1u);
  EXPECT_EQ(g_freed_blocks[0].size(), 64u);
  EXPECT_TRUE(all_zero(g_freed_blocks[0]));
}

TEST(SecureBuffer, SecretBytesWipesTheOldBlockWhenItGrows) {
  g_freed_blocks.clear();
  {
    RecordedSecretBytes secret(16, 0x5A);
    secret.reserve(4096);  // forces a reallocation: the 16-byte block is released
    ASSERT_GE(g_freed_blocks.size(), 1u);
    EXPECT_TRUE(all_zero(g_freed_blocks[0]));
  }
  for (const auto& block : g_freed_blocks) EXPECT_TRUE(all_zero(block));
}

TEST(SecureBuffer, ControlWithoutWipingLeavesData) {
  // Proves the recording upstream can see residue, so the tests above can fail.
  g_freed_blocks.clear();
  {
    std::vector<std::uint8_t, RecordingAllocator<std::uint8_t>> plain(32, 0xA5);
  }
  ASSERT_EQ(g_freed_blocks.size(), 1u);
  EXPECT_FALSE(all_zero(g_freed_blocks[0]));
}

TEST(SecureBuffer, SecretArrayWipesOnDestruction) {
  alignas(SecretArray<32>) unsigned char storage[sizeof(SecretArray<32>)];
  auto* secret = new (storage) SecretArray<32>();
  std::memset(secret->data(), 0xA5, 32);
  secret->~SecretArray<32>();
  for (unsigned char c : storage) EXPECT_EQ(c, 0);
}

TEST(SecureBuffer, ConstantTimeEqual) {
  const std::uint8_t a[] = {1, 2, 3, 4};
  const std::uint8_t b[] = {1, 2, 3, 5};
  EXPECT_TRUE(constant_time_equal(a, a));
  EXPECT_FALSE(constant_time_equal(a, b));
  EXPECT_FALSE(constant_time_equal(std::span(a, 3), std::span(a, 4)));
  EXPECT_TRUE(constant_time_equal({}, {}));
}

}  // namespace
}  // namespace e2ee::crypto

#pragma once
// Containers for secret bytes (keys, shared secrets, seeds). Their memory is wiped when it is
// released, including the old block when a SecretBytes grows, so no copy of a key outlives its
// owner in freed heap memory.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace e2ee::crypto {

// Overwrites `n` bytes at `p` in a way the optimiser cannot remove (explicit_bzero).
void secure_wipe(void* p, std::size_t n) noexcept;

// An allocator that wipes every block before handing it back to `Upstream` (std::allocator in
// production; tests substitute an upstream that records what it receives).
template <typename T, template <typename> class Upstream = std::allocator>
struct BasicWipingAllocator {
  using value_type = T;
  template <typename U>
  struct rebind {
    using other = BasicWipingAllocator<U, Upstream>;
  };

  BasicWipingAllocator() noexcept = default;
  template <typename U>
  BasicWipingAllocator(const BasicWipingAllocator<U, Upstream>&) noexcept {}  // NOLINT: rebinding is implicit

  T* allocate(std::size_t n) { return Upstream<T>{}.allocate(n); }
  void deallocate(T* p, std::size_t n) noexcept {
    secure_wipe(p, n * sizeof(T));
    Upstream<T>{}.deallocate(p, n);
  }
  template <typename U>
  bool operator==(const BasicWipingAllocator<U, Upstream>&) const noexcept { return true; }
};

template <typename T>
using WipingAllocator = BasicWipingAllocator<T>;

// A growable secret byte string.
using SecretBytes = std::vector<std::uint8_t, WipingAllocator<std::uint8_t>>;

// A fixed-size secret, wiped on destruction. Copies are independent and wipe themselves.
template <std::size_t N>
class SecretArray {
 public:
  static constexpr std::size_t kSize = N;

  SecretArray() noexcept : bytes_{} {}
  explicit SecretArray(std::span<const std::uint8_t, N> from) noexcept {
    for (std::size_t i = 0; i < N; ++i) bytes_[i] = from[i];
  }
  SecretArray(const SecretArray&) noexcept = default;
  SecretArray& operator=(const SecretArray&) noexcept = default;
  ~SecretArray() { secure_wipe(bytes_.data(), N); }

  std::uint8_t* data() noexcept { return bytes_.data(); }
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  static constexpr std::size_t size() noexcept { return N; }
  std::span<std::uint8_t, N> span() noexcept { return bytes_; }
  std::span<const std::uint8_t, N> span() const noexcept { return bytes_; }
  std::uint8_t& operator[](std::size_t i) noexcept { return bytes_[i]; }
  const std::uint8_t& operator[](std::size_t i) const noexcept { return bytes_[i]; }

 private:
  std::array<std::uint8_t, N> bytes_;
};

// Constant-time equality of two equal-length byte strings (CRYPTO_memcmp). Returns false when
// the lengths differ (lengths are public).
bool constant_time_equal(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) noexcept;

}  // namespace e2ee::crypto

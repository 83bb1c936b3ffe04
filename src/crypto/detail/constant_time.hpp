#pragma once
// The constant-time toolkit, in one place. Each trick says why it exists.

#include <cstddef>
#include <cstdint>

#if defined(E2EE_CT_VALGRIND)
#include <valgrind/memcheck.h>
#endif

namespace e2ee::crypto::detail {

// Returns `a` unchanged, but hides its value from the optimiser. Without it GCC and Clang may
// prove that a mask is 0 or ~0 and turn a select back into a branch on the secret it came from.
inline std::uint32_t value_barrier(std::uint32_t a) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+r"(a) : /* no inputs */);
#endif
  return a;
}
inline std::uint8_t value_barrier8(std::uint8_t a) noexcept {
#if defined(__GNUC__) || defined(__clang__)
  __asm__("" : "+r"(a) : /* no inputs */);
#endif
  return a;
}

// 0xFF when `diff` (an OR-accumulation of XORs) is zero, else 0x00.
inline std::uint8_t ct_is_zero_mask8(std::uint8_t diff) noexcept {
  const std::uint32_t d = value_barrier(diff);
  // (d - 1) has bit 31 set only when d == 0 (d < 256).
  return static_cast<std::uint8_t>(0u - ((d - 1u) >> 31));
}

// out[i] = mask ? a[i] : b[i] for mask in {0x00, 0xFF}.
inline void ct_select(std::uint8_t* out, std::uint8_t mask, const std::uint8_t* a, const std::uint8_t* b,
                      std::size_t n) noexcept {
  const std::uint8_t m = value_barrier8(mask);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>((m & a[i]) | (~m & b[i]));
}

// OR of a[i] ^ b[i]: zero exactly when the buffers are equal, computed over every byte.
inline std::uint8_t ct_diff(const std::uint8_t* a, const std::uint8_t* b, std::size_t n) noexcept {
  std::uint8_t acc = 0;
  for (std::size_t i = 0; i < n; ++i) acc = static_cast<std::uint8_t>(acc | (a[i] ^ b[i]));
  return acc;
}

// Secret tracking for the valgrind constant-time test (the "ctgrind" technique): secrets are
// marked undefined, so memcheck reports any branch or address computed from them. Values that
// are public by design (rho, a ciphertext, the final comparison result) are declassified with a
// comment saying why. In normal builds both macros compile to nothing.
#if defined(E2EE_CT_VALGRIND)
#define E2EE_CT_SECRET(ptr, len) VALGRIND_MAKE_MEM_UNDEFINED((ptr), (len))
#define E2EE_CT_DECLASSIFY(ptr, len) VALGRIND_MAKE_MEM_DEFINED((ptr), (len))
#else
#define E2EE_CT_SECRET(ptr, len) ((void)(ptr), (void)(len))
#define E2EE_CT_DECLASSIFY(ptr, len) ((void)(ptr), (void)(len))
#endif

}  // namespace e2ee::crypto::detail

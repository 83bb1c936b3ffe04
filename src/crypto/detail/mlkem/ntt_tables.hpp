#pragma once
// The twiddle factors of FIPS 203 Appendix A, computed at compile time from their definition
// rather than typed in: zeta = 17 is a primitive 256th root of unity mod q. Shared by the portable
// NTT and the AVX2 one, which lays the same values out in vector lanes.

#include <array>
#include <cstdint>

#include "crypto/detail/mlkem/field.hpp"

namespace e2ee::crypto::mlkem768::detail::ntt_tables {

inline constexpr std::uint16_t kZeta = 17;

constexpr std::uint8_t bit_rev7(std::uint8_t i) {
  std::uint8_t r = 0;
  for (int b = 0; b < 7; ++b) r = static_cast<std::uint8_t>(r | (((i >> b) & 1) << (6 - b)));
  return r;
}

constexpr std::uint16_t pow_mod_q(std::uint32_t base, std::uint32_t exp) {
  std::uint32_t result = 1;
  for (std::uint32_t i = 0; i < exp; ++i) result = (result * base) % kQ;
  return static_cast<std::uint16_t>(result);
}

// zetas[i] = 17^BitRev7(i) mod q (used by NTT and NTT^-1).
inline constexpr std::array<std::uint16_t, 128> kZetas = [] {
  std::array<std::uint16_t, 128> t{};
  for (int i = 0; i < 128; ++i) t[static_cast<std::size_t>(i)] = pow_mod_q(kZeta, bit_rev7(static_cast<std::uint8_t>(i)));
  return t;
}();

// gammas[i] = 17^(2 BitRev7(i) + 1) mod q (used by MultiplyNTTs).
inline constexpr std::array<std::uint16_t, 128> kGammas = [] {
  std::array<std::uint16_t, 128> t{};
  for (int i = 0; i < 128; ++i)
    t[static_cast<std::size_t>(i)] = pow_mod_q(kZeta, 2u * bit_rev7(static_cast<std::uint8_t>(i)) + 1u);
  return t;
}();

inline constexpr std::array<std::uint16_t, 128> kZetaCompanions = [] {
  std::array<std::uint16_t, 128> t{};
  for (std::size_t i = 0; i < 128; ++i) t[i] = shoup_companion(kZetas[i]);
  return t;
}();

// Spot checks against the printed tables in FIPS 203 Appendix A.
static_assert(kZetas[0] == 1 && kZetas[1] == 1729 && kZetas[2] == 2580 && kZetas[127] == 2154);
static_assert(kGammas[0] == 17 && kGammas[1] == 3312 && kGammas[2] == 2761 && kGammas[127] == 1175);

// 128^-1 mod q, the scaling at the end of Algorithm 10.
inline constexpr std::uint16_t kInverse128 = 3303;
inline constexpr std::uint16_t kInverse128Companion = shoup_companion(kInverse128);
static_assert((128u * kInverse128) % kQ == 1);

}  // namespace e2ee::crypto::mlkem768::detail::ntt_tables

#pragma once
// Arithmetic in Z_q, q = 3329. Every function here is constant time: reductions use masks, not
// branches, and divisions by q are Barrett multiplications (a division instruction can take a
// data-dependent number of cycles, and a compiler at -O0 would emit one for `/ q`).

#include <cstdint>

#include "crypto/detail/mlkem/params.hpp"

namespace e2ee::crypto::mlkem768::detail {

// Reduces a < 2q to [0, q). Written with a signed shift mask so that loops of it vectorise into
// 16-bit lanes (subtract, arithmetic shift, and, add) on plain SSE2.
inline std::uint16_t reduce_once(std::uint16_t a) {
  const auto x = static_cast<std::int16_t>(a - kQ);  // a < 2q < 2^15, so this is a - q as a signed value
  return static_cast<std::uint16_t>(x + ((x >> 15) & kQ));  // add q back when it went negative
}

inline std::uint16_t field_add(std::uint16_t a, std::uint16_t b) { return reduce_once(static_cast<std::uint16_t>(a + b)); }
inline std::uint16_t field_sub(std::uint16_t a, std::uint16_t b) {
  return reduce_once(static_cast<std::uint16_t>(a - b + kQ));
}

// Barrett reduction of any 32-bit value. The multiplier is floor(2^32 / q); the quotient it yields
// is at most one short of floor(x / q) for every x < 2^32 (the error term is x * 0.466 / 2^32 < 1),
// so the remainder is in [0, 2q) and one conditional subtraction finishes the job.
inline constexpr std::uint64_t kBarrettMultiplier = (std::uint64_t{1} << 32) / kQ;
inline std::uint16_t barrett_reduce(std::uint32_t x) {
  const auto quotient = static_cast<std::uint32_t>((x * kBarrettMultiplier) >> 32);
  return reduce_once(static_cast<std::uint16_t>(x - quotient * kQ));
}

inline std::uint16_t field_mul(std::uint16_t a, std::uint16_t b) {
  return barrett_reduce(static_cast<std::uint32_t>(a) * b);
}

// Multiplication by a constant w < q with Shoup's precomputed companion w' = floor(w * 2^16 / q).
// For every a < 2^16 the estimate floor(a * w' / 2^16) is floor(a * w / q) or one less, so
// a * w - estimate * q lies in [0, 2q) and fits 16 bits: everything stays in 16-bit lanes
// (mullo, mulhi, mullo, sub), which is what lets the NTT loops vectorise.
inline constexpr std::uint16_t shoup_companion(std::uint16_t w) {
  return static_cast<std::uint16_t>((static_cast<std::uint32_t>(w) << 16) / kQ);
}
inline std::uint16_t shoup_mul(std::uint16_t a, std::uint16_t w, std::uint16_t w_companion) {
  const auto estimate = static_cast<std::uint16_t>((static_cast<std::uint32_t>(a) * w_companion) >> 16);
  return reduce_once(static_cast<std::uint16_t>(a * w - estimate * kQ));
}

// Compress_d (FIPS 203 section 4.2.1): round(2^d / q * x) mod 2^d, with ties rounding up.
// x < q and d <= 11, so x * 2^d < 2^23 and Barrett gives a quotient in [floor - 1, floor].
inline std::uint16_t compress(std::uint16_t x, int d) {
  const std::uint32_t dividend = static_cast<std::uint32_t>(x) << d;
  std::uint32_t quotient = static_cast<std::uint32_t>((dividend * kBarrettMultiplier) >> 32);
  const std::uint32_t remainder = dividend - quotient * kQ;  // in [0, 2q)
  // Rounding to nearest: remainder in [0, q/2] keeps the quotient, (q/2, q + q/2] adds one,
  // above that adds two (the Barrett quotient was one short). `(bound - r) >> 31` is 1 when r > bound.
  quotient += ((kQ / 2 - remainder) >> 31) & 1;
  quotient += ((kQ + kQ / 2 - remainder) >> 31) & 1;
  return static_cast<std::uint16_t>(quotient & ((1u << d) - 1));
}

// Decompress_d (FIPS 203 section 4.2.1): round(q / 2^d * y) for y < 2^d.
inline std::uint16_t decompress(std::uint16_t y, int d) {
  const std::uint32_t scaled = static_cast<std::uint32_t>(y) * kQ;
  // Adding 2^(d-1) before the shift rounds to nearest with ties up.
  return static_cast<std::uint16_t>((scaled + (1u << (d - 1))) >> d);
}

}  // namespace e2ee::crypto::mlkem768::detail

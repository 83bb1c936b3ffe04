#include "crypto/detail/mlkem/sampling.hpp"

#include <array>
#include <vector>

#include "crypto/detail/mlkem/field.hpp"
#include "crypto/detail/mlkem/symmetric.hpp"

namespace e2ee::crypto::mlkem768::detail {
namespace {

constexpr std::size_t kShake128Rate = 168;
// Three blocks hold the ~473 bytes a polynomial needs on average; about one polynomial in a
// hundred needs more, and then the whole output is recomputed longer (see xof128's prefix note).
constexpr std::size_t kFirstSqueeze = 3 * kShake128Rate;

// Parses 3-byte groups of `stream` from `pos` into candidates d1, d2 < 2^12 and keeps those < q.
// Returns the number of coefficients filled so far.
std::size_t parse_candidates(const std::uint8_t* stream, std::size_t stream_len, std::size_t& pos, Poly& out,
                             std::size_t filled) {
  while (filled < static_cast<std::size_t>(kN) && pos + 3 <= stream_len) {
    const std::uint16_t c0 = stream[pos], c1 = stream[pos + 1], c2 = stream[pos + 2];
    pos += 3;
    const auto d1 = static_cast<std::uint16_t>(c0 | ((c1 & 0x0f) << 8));
    const auto d2 = static_cast<std::uint16_t>((c1 >> 4) | (c2 << 4));
    if (d1 < kQ) out.c[filled++] = d1;
    if (d2 < kQ && filled < static_cast<std::size_t>(kN)) out.c[filled++] = d2;
  }
  return filled;
}

}  // namespace

void sample_ntt_vartime(std::span<const std::uint8_t, 32> rho, std::uint8_t j, std::uint8_t i, Poly& out) {
  std::array<std::uint8_t, 34> seed;
  std::copy(rho.begin(), rho.end(), seed.begin());
  seed[32] = j;
  seed[33] = i;

  std::array<std::uint8_t, kFirstSqueeze> first;
  xof128(seed, first);
  std::size_t pos = 0;
  std::size_t filled = parse_candidates(first.data(), first.size(), pos, out, 0);
  std::size_t length = kFirstSqueeze;
  while (filled < static_cast<std::size_t>(kN)) {
    length *= 2;
    std::vector<std::uint8_t> longer(length);
    xof128(seed, longer);
    filled = parse_candidates(longer.data(), longer.size(), pos, out, filled);
  }
}

void sample_poly_cbd2(std::span<const std::uint8_t, 64 * 2> bytes, Poly& out) {
  // Each byte yields two coefficients: bits (b0 + b1) - (b2 + b3) and (b4 + b5) - (b6 + b7).
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const std::uint16_t b = bytes[i];
    const auto x0 = static_cast<std::uint16_t>((b & 1) + ((b >> 1) & 1));
    const auto y0 = static_cast<std::uint16_t>(((b >> 2) & 1) + ((b >> 3) & 1));
    const auto x1 = static_cast<std::uint16_t>(((b >> 4) & 1) + ((b >> 5) & 1));
    const auto y1 = static_cast<std::uint16_t>(((b >> 6) & 1) + ((b >> 7) & 1));
    // x - y is in [-2, 2]; adding q keeps it positive and reduce_once maps it into [0, q).
    out.c[2 * i] = reduce_once(static_cast<std::uint16_t>(x0 + kQ - y0));
    out.c[2 * i + 1] = reduce_once(static_cast<std::uint16_t>(x1 + kQ - y1));
  }
}

}  // namespace e2ee::crypto::mlkem768::detail

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

using Seed = std::array<std::uint8_t, 34>;

Seed xof_seed(std::span<const std::uint8_t, 32> rho, std::uint8_t j, std::uint8_t i) {
  Seed seed;
  std::copy(rho.begin(), rho.end(), seed.begin());
  seed[32] = j;
  seed[33] = i;
  return seed;
}

// Parses 3-byte groups of `stream` from `pos` into candidates d1, d2 < 2^12 and keeps those < q.
// Returns the number of coefficients filled so far. While two more fit, each candidate is stored
// at the next free slot unconditionally and the slot advances only if it was kept: about one
// candidate in five is rejected at random, and a branch on that mispredicted often enough to make
// this loop a sixth of a key generation.
std::size_t parse_candidates(const std::uint8_t* stream, std::size_t stream_len, std::size_t& pos, Poly& out,
                             std::size_t filled) {
  constexpr auto n = static_cast<std::size_t>(kN);
  while (filled + 2 <= n && pos + 3 <= stream_len) {
    const std::uint16_t c0 = stream[pos], c1 = stream[pos + 1], c2 = stream[pos + 2];
    pos += 3;
    const auto d1 = static_cast<std::uint16_t>(c0 | ((c1 & 0x0f) << 8));
    const auto d2 = static_cast<std::uint16_t>((c1 >> 4) | (c2 << 4));
    out.c[filled] = d1;
    filled += d1 < kQ ? 1 : 0;
    out.c[filled] = d2;  // filled <= n - 1 here
    filled += d2 < kQ ? 1 : 0;
  }
  while (filled < n && pos + 3 <= stream_len) {  // the last coefficient, when one slot is left
    const std::uint16_t c0 = stream[pos], c1 = stream[pos + 1], c2 = stream[pos + 2];
    pos += 3;
    const auto d1 = static_cast<std::uint16_t>(c0 | ((c1 & 0x0f) << 8));
    const auto d2 = static_cast<std::uint16_t>((c1 >> 4) | (c2 << 4));
    if (d1 < kQ) out.c[filled++] = d1;
    if (d2 < kQ && filled < n) out.c[filled++] = d2;
  }
  return filled;
}

// SampleNTT from the first kFirstSqueeze bytes of the seed's stream, extending the stream when
// they were not enough.
void sample_from(const Seed& seed, std::span<const std::uint8_t, kFirstSqueeze> first, Poly& out) {
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

}  // namespace

void sample_ntt_vartime(std::span<const std::uint8_t, 32> rho, std::uint8_t j, std::uint8_t i, Poly& out) {
  const Seed seed = xof_seed(rho, j, i);
  std::array<std::uint8_t, kFirstSqueeze> first;
  xof128(seed, first);
  sample_from(seed, first, out);
}

void sample_ntt_x4_vartime(std::span<const std::uint8_t, 32> rho, const std::array<NttIndex, 4>& indices,
                           const std::array<Poly*, 4>& out) {
  std::array<Seed, 4> seeds;
  for (std::size_t k = 0; k < 4; ++k) seeds[k] = xof_seed(rho, indices[k].j, indices[k].i);
  std::array<std::array<std::uint8_t, kFirstSqueeze>, 4> first;
  xof128_x4({seeds[0], seeds[1], seeds[2], seeds[3]}, {first[0], first[1], first[2], first[3]});
  for (std::size_t k = 0; k < 4; ++k) sample_from(seeds[k], first[k], *out[k]);
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

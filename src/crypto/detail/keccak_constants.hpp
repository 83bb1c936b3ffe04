#pragma once
// The constants of Keccak-f[1600] (FIPS 202 section 3.2), derived at compile time from the
// specification's own definitions (Algorithm 5 rc(t) and the (x, y) -> (y, 2x + 3y) walk of step
// rho), so a transcription error cannot hide in a 24-entry table. Shared by the one-state
// permutation (keccak.cpp) and the four-state one (keccak_x4.cpp).

#include <array>
#include <cstdint>

namespace e2ee::crypto::detail::keccak_constants {

inline constexpr int kRounds = 24;

// FIPS 202 Algorithm 5: the output bit of an 8-bit LFSR with feedback polynomial
// x^8 + x^6 + x^5 + x^4 + 1, run t mod 255 steps.
constexpr bool rc_bit(int t) {
  const int steps = t % 255;
  unsigned r = 1;  // R = 10000000 with R[0] as bit 0
  for (int i = 0; i < steps; ++i) {
    r <<= 1;                             // R = 0 || R
    if ((r & 0x100u) != 0) r ^= 0x171u;  // R[0,4,5,6] ^= R[8], then truncate to 8 bits
  }
  return (r & 1u) != 0;
}

// FIPS 202 Algorithm 6: bit 2^j - 1 of RC is rc(j + 7 * ir), for j = 0..6.
constexpr std::array<std::uint64_t, kRounds> make_round_constants() {
  std::array<std::uint64_t, kRounds> rc{};
  for (int ir = 0; ir < kRounds; ++ir) {
    std::uint64_t c = 0;
    for (int j = 0; j <= 6; ++j) {
      if (rc_bit(j + 7 * ir)) c |= std::uint64_t{1} << ((1u << j) - 1u);
    }
    rc[static_cast<std::size_t>(ir)] = c;
  }
  return rc;
}

// FIPS 202 Algorithm 2 (rho): lane (x, y) visited at step t rotates by (t+1)(t+2)/2 mod 64.
constexpr std::array<unsigned, 25> make_rotation_offsets() {
  std::array<unsigned, 25> off{};
  int x = 1, y = 0;
  for (int t = 0; t < 24; ++t) {
    off[static_cast<std::size_t>(x + 5 * y)] = static_cast<unsigned>(((t + 1) * (t + 2) / 2) % 64);
    const int nx = y;
    const int ny = (2 * x + 3 * y) % 5;
    x = nx;
    y = ny;
  }
  return off;
}

inline constexpr auto kRoundConstants = make_round_constants();
inline constexpr auto kRotationOffsets = make_rotation_offsets();

// Spot checks against values printed in FIPS 202 and the Keccak reference: the first and last
// round constants and three rho offsets. They guard the generators above, not the whole tables;
// the tests compare full SHA-3 outputs against OpenSSL.
static_assert(kRoundConstants[0] == 0x0000000000000001ULL);
static_assert(kRoundConstants[23] == 0x8000000080008008ULL);
static_assert(kRotationOffsets[1] == 1 && kRotationOffsets[0] == 0);
static_assert(kRotationOffsets[24] == 14);

}  // namespace e2ee::crypto::detail::keccak_constants

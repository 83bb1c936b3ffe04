#include "crypto/detail/mlkem/ntt.hpp"

#include <array>

#include "crypto/detail/mlkem/field.hpp"

namespace e2ee::crypto::mlkem768::detail {
namespace {

// The tables of FIPS 203 Appendix A, computed at compile time from their definition rather than
// typed in: zeta = 17 is a primitive 256th root of unity mod q.
constexpr std::uint16_t kZeta = 17;

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
constexpr std::array<std::uint16_t, 128> kZetas = [] {
  std::array<std::uint16_t, 128> t{};
  for (int i = 0; i < 128; ++i) t[static_cast<std::size_t>(i)] = pow_mod_q(kZeta, bit_rev7(static_cast<std::uint8_t>(i)));
  return t;
}();

// gammas[i] = 17^(2 BitRev7(i) + 1) mod q (used by MultiplyNTTs).
constexpr std::array<std::uint16_t, 128> kGammas = [] {
  std::array<std::uint16_t, 128> t{};
  for (int i = 0; i < 128; ++i)
    t[static_cast<std::size_t>(i)] = pow_mod_q(kZeta, 2u * bit_rev7(static_cast<std::uint8_t>(i)) + 1u);
  return t;
}();

template <std::size_t N>
constexpr std::array<std::uint16_t, N> companions(const std::array<std::uint16_t, N>& table) {
  std::array<std::uint16_t, N> out{};
  for (std::size_t i = 0; i < N; ++i) out[i] = shoup_companion(table[i]);
  return out;
}
constexpr auto kZetaCompanions = companions(kZetas);

// Spot checks against the printed tables in FIPS 203 Appendix A.
static_assert(kZetas[0] == 1 && kZetas[1] == 1729 && kZetas[2] == 2580 && kZetas[127] == 2154);
static_assert(kGammas[0] == 17 && kGammas[1] == 3312 && kGammas[2] == 2761 && kGammas[127] == 1175);

// 128^-1 mod q, the scaling at the end of Algorithm 10.
constexpr std::uint16_t kInverse128 = 3303;
constexpr std::uint16_t kInverse128Companion = shoup_companion(kInverse128);
static_assert((128u * kInverse128) % kQ == 1);

}  // namespace

void ntt(Poly& f) {
  std::size_t i = 1;
  for (std::size_t len = 128; len >= 2; len /= 2) {
    for (std::size_t start = 0; start < kN; start += 2 * len) {
      const std::uint16_t zeta = kZetas[i], zeta_companion = kZetaCompanions[i];
      ++i;
      for (std::size_t j = start; j < start + len; ++j) {
        const std::uint16_t t = shoup_mul(f.c[j + len], zeta, zeta_companion);
        f.c[j + len] = field_sub(f.c[j], t);
        f.c[j] = field_add(f.c[j], t);
      }
    }
  }
}

void inverse_ntt(Poly& f) {
  std::size_t i = 127;
  for (std::size_t len = 2; len <= 128; len *= 2) {
    for (std::size_t start = 0; start < kN; start += 2 * len) {
      const std::uint16_t zeta = kZetas[i], zeta_companion = kZetaCompanions[i];
      --i;
      for (std::size_t j = start; j < start + len; ++j) {
        const std::uint16_t t = f.c[j];
        f.c[j] = field_add(t, f.c[j + len]);
        f.c[j + len] = shoup_mul(field_sub(f.c[j + len], t), zeta, zeta_companion);
      }
    }
  }
  for (auto& x : f.c) x = shoup_mul(x, kInverse128, kInverse128Companion);
}

void inner_product_ntt(Poly& out, const Poly* const f[kK], const PolyVec& g) {
  for (std::size_t p = 0; p < kN / 2; ++p) {
    // Algorithm 12 per term: (a0 + a1 X)(b0 + b1 X) mod (X^2 - gamma). Products are < q^2 < 2^24;
    // a1*b1 is reduced before the multiplication by gamma, so each term adds < 2^25 and three
    // terms stay far below 2^32 before the single reduction at the end.
    std::uint32_t c0 = 0, c1 = 0;
    for (std::size_t i = 0; i < kK; ++i) {
      const std::uint32_t a0 = f[i]->c[2 * p], a1 = f[i]->c[2 * p + 1];
      const std::uint32_t b0 = g[i].c[2 * p], b1 = g[i].c[2 * p + 1];
      c0 += a0 * b0 + static_cast<std::uint32_t>(barrett_reduce(a1 * b1)) * kGammas[p];
      c1 += a0 * b1 + a1 * b0;
    }
    out.c[2 * p] = barrett_reduce(c0);
    out.c[2 * p + 1] = barrett_reduce(c1);
  }
}

void poly_add(Poly& acc, const Poly& b) {
  for (std::size_t i = 0; i < kN; ++i) acc.c[i] = field_add(acc.c[i], b.c[i]);
}

void poly_sub(Poly& acc, const Poly& b) {
  for (std::size_t i = 0; i < kN; ++i) acc.c[i] = field_sub(acc.c[i], b.c[i]);
}

}  // namespace e2ee::crypto::mlkem768::detail

#include "crypto/detail/mlkem/ntt.hpp"

#include <array>

#include "crypto/detail/mlkem/field.hpp"
#include "crypto/detail/mlkem/ntt_tables.hpp"

namespace e2ee::crypto::mlkem768::detail {
namespace {

using ntt_tables::kGammas;
using ntt_tables::kInverse128;
using ntt_tables::kInverse128Companion;
using ntt_tables::kZetaCompanions;
using ntt_tables::kZetas;

}  // namespace

void ntt(Poly& f) {
#if E2EE_X86_AVX2
  if (crypto::detail::cpu_has_avx2()) return ntt_avx2(f);
#endif
  ntt_portable(f);
}

void inverse_ntt(Poly& f) {
#if E2EE_X86_AVX2
  if (crypto::detail::cpu_has_avx2()) return inverse_ntt_avx2(f);
#endif
  inverse_ntt_portable(f);
}

void ntt_portable(Poly& f) {
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

void inverse_ntt_portable(Poly& f) {
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
#if E2EE_X86_AVX2
  if (crypto::detail::cpu_has_avx2()) return inner_product_ntt_avx2(out, f, g);
#endif
  inner_product_ntt_portable(out, f, g);
}

void inner_product_ntt_portable(Poly& out, const Poly* const f[kK], const PolyVec& g) {
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

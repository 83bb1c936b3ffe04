// The NTT, its inverse and the NTT-domain inner product (FIPS 203 Algorithms 9 to 12) in AVX2,
// chosen by ntt.cpp when the CPU has it. The transforms hold sixteen 16-bit coefficients per
// register, the same arithmetic as the portable loops in ntt.cpp (Shoup multiplication by the
// twiddle factor, one masked conditional subtraction after every operation), so both produce the
// same fully reduced coefficients. The compiler vectorises the portable loops only in the layers
// whose butterflies span eight or more coefficients; spans 4 and 2 ran scalar and took most of the
// time. Here the last three layers (spans 8, 4 and 2) work on 32 coefficients held in two
// registers, shuffled so that each butterfly's two inputs sit in the same lane of two registers.
//
// Constant time: no branch or index depends on a coefficient. Functions carry the target
// attribute instead of the file being built with -mavx2, so no AVX2 instruction can leak into an
// inline function another file links to; ntt() calls in here only when the CPU has AVX2.

#include "crypto/detail/mlkem/ntt.hpp"

#if E2EE_X86_AVX2

#include <immintrin.h>

#include <array>
#include <cstddef>
#include <cstdint>

#include "crypto/detail/mlkem/ntt_tables.hpp"

namespace e2ee::crypto::mlkem768::detail {
namespace {

using ntt_tables::kInverse128;
using ntt_tables::kInverse128Companion;
using ntt_tables::kZetaCompanions;
using ntt_tables::kZetas;

// Twiddle factors for one of the three in-register layers of one 32-coefficient block, in the
// lane order that layer's shuffle produces.
struct LaneZetas {
  alignas(32) std::array<std::uint16_t, 16> w;
  alignas(32) std::array<std::uint16_t, 16> companion;
};
constexpr int kBlocks = 8;                                           // 256 / 32
using LayerTables = std::array<std::array<LaneZetas, kBlocks>, 3>;  // [span 8, 4, 2][block]

// Which butterfly group of its block (groups numbered in the portable loop's `start` order) the
// pair in `lane` belongs to, after the shuffle for span 8, 4 or 2 (layer 0, 1, 2) below:
//   span 8: X = [0-7 | 16-23], Y = [8-15 | 24-31]               -> groups 0 | 1
//   span 4: X = [0-3, 16-19 | 8-11, 24-27]                     -> groups 0, 2 | 1, 3
//   span 2: X = [0-1, 4-5, 16-17, 20-21 | 8-9, 12-13, 24-25, 28-29] -> groups 0, 1, 4, 5 | 2, 3, 6, 7
constexpr std::size_t group_in_block(int layer, std::size_t lane) {
  const std::size_t half = lane / 8;
  if (layer == 0) return half;
  if (layer == 1) return half + 2 * ((lane % 8) / 4);
  const std::size_t pair = (lane % 8) / 2;
  return (pair % 2) + 4 * (pair / 2) + 2 * half;
}

// The forward transform uses zetas 16.., 32.., 64.. for spans 8, 4, 2 in group order; the inverse
// walks the same table downwards from 31, 63, 127.
constexpr LayerTables make_tables(bool inverse) {
  LayerTables t{};
  constexpr std::size_t kGroupsPerBlock[3] = {2, 4, 8};
  constexpr std::size_t kForwardBase[3] = {16, 32, 64};
  constexpr std::size_t kInverseBase[3] = {31, 63, 127};
  for (int layer = 0; layer < 3; ++layer) {
    const auto l = static_cast<std::size_t>(layer);
    for (std::size_t b = 0; b < kBlocks; ++b) {
      for (std::size_t lane = 0; lane < 16; ++lane) {
        const std::size_t group = kGroupsPerBlock[l] * b + group_in_block(layer, lane);
        const std::size_t index = inverse ? kInverseBase[l] - group : kForwardBase[l] + group;
        t[l][b].w[lane] = kZetas[index];
        t[l][b].companion[lane] = kZetaCompanions[index];
      }
    }
  }
  return t;
}

constexpr LayerTables kForwardTables = make_tables(false);
constexpr LayerTables kInverseTables = make_tables(true);

// For the base multiplications: per coefficient pair p, the multipliers (1, gamma_p) with their
// Shoup companions, so one shoup_mul turns (b0, b1) into (b0, b1 * gamma_p mod q).
struct PairGammas {
  alignas(32) std::array<std::uint16_t, kN> w;
  alignas(32) std::array<std::uint16_t, kN> companion;
};
constexpr PairGammas make_pair_gammas() {
  PairGammas t{};
  for (std::size_t p = 0; p < kN / 2; ++p) {
    t.w[2 * p] = 1;
    t.companion[2 * p] = shoup_companion(1);
    t.w[2 * p + 1] = ntt_tables::kGammas[p];
    t.companion[2 * p + 1] = shoup_companion(ntt_tables::kGammas[p]);
  }
  return t;
}
constexpr PairGammas kPairGammas = make_pair_gammas();

E2EE_TARGET_AVX2 inline __m256i q_vector() { return _mm256_set1_epi16(static_cast<short>(kQ)); }

// reduce_once of field.hpp, per lane: a < 2q to [0, q).
E2EE_TARGET_AVX2 inline __m256i reduce_once(__m256i a) {
  const __m256i q = q_vector();
  const __m256i x = _mm256_sub_epi16(a, q);
  return _mm256_add_epi16(x, _mm256_and_si256(_mm256_srai_epi16(x, 15), q));
}

E2EE_TARGET_AVX2 inline __m256i field_add(__m256i a, __m256i b) { return reduce_once(_mm256_add_epi16(a, b)); }

E2EE_TARGET_AVX2 inline __m256i field_sub(__m256i a, __m256i b) {
  return reduce_once(_mm256_add_epi16(_mm256_sub_epi16(a, b), q_vector()));
}

// shoup_mul of field.hpp, per lane: a * w - floor(a * w' / 2^16) * q lies in [0, 2q), so the
// 16-bit wrap-around of mullo is exact.
E2EE_TARGET_AVX2 inline __m256i shoup_mul(__m256i a, __m256i w, __m256i companion) {
  const __m256i estimate = _mm256_mulhi_epu16(a, companion);
  return reduce_once(_mm256_sub_epi16(_mm256_mullo_epi16(a, w), _mm256_mullo_epi16(estimate, q_vector())));
}

E2EE_TARGET_AVX2 inline void forward_butterfly(__m256i& x, __m256i& y, __m256i w, __m256i companion) {
  const __m256i t = shoup_mul(y, w, companion);
  y = field_sub(x, t);
  x = field_add(x, t);
}

E2EE_TARGET_AVX2 inline void inverse_butterfly(__m256i& x, __m256i& y, __m256i w, __m256i companion) {
  const __m256i t = x;
  x = field_add(t, y);
  y = shoup_mul(field_sub(y, t), w, companion);
}

E2EE_TARGET_AVX2 inline __m256i load(const std::uint16_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
E2EE_TARGET_AVX2 inline void store(std::uint16_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
E2EE_TARGET_AVX2 inline __m256i load(const std::array<std::uint16_t, 16>& a) { return load(a.data()); }

// The shuffles between a block's natural order (A = coefficients 0-15, B = 16-31) and the
// butterfly order of one span; each `to_` has its `from_` inverse. See group_in_block.
E2EE_TARGET_AVX2 inline void to_span8(__m256i a, __m256i b, __m256i& x, __m256i& y) {
  x = _mm256_permute2x128_si256(a, b, 0x20);
  y = _mm256_permute2x128_si256(a, b, 0x31);
}
E2EE_TARGET_AVX2 inline void from_span8(__m256i x, __m256i y, __m256i& a, __m256i& b) {
  a = _mm256_permute2x128_si256(x, y, 0x20);
  b = _mm256_permute2x128_si256(x, y, 0x31);
}
E2EE_TARGET_AVX2 inline void to_span4(__m256i a, __m256i b, __m256i& x, __m256i& y) {
  x = _mm256_unpacklo_epi64(a, b);
  y = _mm256_unpackhi_epi64(a, b);
}
E2EE_TARGET_AVX2 inline void from_span4(__m256i x, __m256i y, __m256i& a, __m256i& b) {
  a = _mm256_unpacklo_epi64(x, y);
  b = _mm256_unpackhi_epi64(x, y);
}
// Swapping the middle two 32-bit words of each 128-bit lane turns span 2 into span 4's pattern;
// the swap is its own inverse.
constexpr int kSwapMiddleWords = 0xD8;  // _MM_SHUFFLE(3, 1, 2, 0)
E2EE_TARGET_AVX2 inline void to_span2(__m256i a, __m256i b, __m256i& x, __m256i& y) {
  to_span4(_mm256_shuffle_epi32(a, kSwapMiddleWords), _mm256_shuffle_epi32(b, kSwapMiddleWords), x, y);
}
E2EE_TARGET_AVX2 inline void from_span2(__m256i x, __m256i y, __m256i& a, __m256i& b) {
  from_span4(x, y, a, b);
  a = _mm256_shuffle_epi32(a, kSwapMiddleWords);
  b = _mm256_shuffle_epi32(b, kSwapMiddleWords);
}

// barrett_reduce of field.hpp on eight 32-bit lanes: floor(x * floor(2^32 / q) / 2^32) is the
// quotient or one short, so one conditional subtraction finishes. AVX2 multiplies 32 x 32 -> 64
// bits only in the even lanes, so the odd lanes are shifted down, multiplied, and blended back.
E2EE_TARGET_AVX2 inline __m256i barrett_reduce32(__m256i x) {
  const __m256i multiplier = _mm256_set1_epi32(static_cast<int>(kBarrettMultiplier));
  const __m256i q = _mm256_set1_epi32(kQ);
  const __m256i even = _mm256_srli_epi64(_mm256_mul_epu32(x, multiplier), 32);
  const __m256i odd = _mm256_mul_epu32(_mm256_srli_epi64(x, 32), multiplier);
  const __m256i quotient = _mm256_blend_epi32(even, odd, 0xAA);
  const __m256i r = _mm256_sub_epi32(x, _mm256_mullo_epi32(quotient, q));  // in [0, 2q)
  const __m256i over = _mm256_cmpgt_epi32(r, _mm256_set1_epi32(kQ - 1));
  return _mm256_sub_epi32(r, _mm256_and_si256(over, q));
}

}  // namespace

// inner_product_ntt of ntt.cpp, eight coefficient pairs per step. With (a0, a1) and (b0, b1) in
// adjacent 16-bit lanes, _mm256_madd_epi16 gives a0*b0' + a1*b1' per pair in 32 bits: against
// (b0, b1 * gamma mod q) that is c0, against (b1, b0) it is c1. Each term is below 2q^2, so three
// of them stay below 2^26 and need one reduction at the end, as in the portable loop.
E2EE_TARGET_AVX2 void inner_product_ntt_avx2(Poly& out, const Poly* const f[kK], const PolyVec& g) {
  for (std::size_t m = 0; m < kN; m += 16) {
    const __m256i w = load(kPairGammas.w.data() + m), companion = load(kPairGammas.companion.data() + m);
    __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
    for (std::size_t i = 0; i < kK; ++i) {
      const __m256i a = load(f[i]->c.data() + m), b = load(g[i].c.data() + m);
      const __m256i b_gamma = shoup_mul(b, w, companion);                                        // (b0, b1 gamma)
      const __m256i b_swapped = _mm256_or_si256(_mm256_slli_epi32(b, 16), _mm256_srli_epi32(b, 16));  // (b1, b0)
      c0 = _mm256_add_epi32(c0, _mm256_madd_epi16(a, b_gamma));
      c1 = _mm256_add_epi32(c1, _mm256_madd_epi16(a, b_swapped));
    }
    // Both results are below q < 2^15: c0 goes to the even 16-bit lanes, c1 to the odd ones.
    store(out.c.data() + m, _mm256_or_si256(barrett_reduce32(c0), _mm256_slli_epi32(barrett_reduce32(c1), 16)));
  }
}

E2EE_TARGET_AVX2 void ntt_avx2(Poly& f) {
  std::uint16_t* const c = f.c.data();
  std::size_t i = 1;
  for (std::size_t len = 128; len >= 16; len /= 2) {
    for (std::size_t start = 0; start < kN; start += 2 * len) {
      const __m256i w = _mm256_set1_epi16(static_cast<short>(kZetas[i]));
      const __m256i companion = _mm256_set1_epi16(static_cast<short>(kZetaCompanions[i]));
      ++i;
      for (std::size_t j = start; j < start + len; j += 16) {
        __m256i x = load(c + j), y = load(c + j + len);
        forward_butterfly(x, y, w, companion);
        store(c + j, x);
        store(c + j + len, y);
      }
    }
  }
  for (std::size_t b = 0; b < kBlocks; ++b) {
    __m256i lo = load(c + 32 * b), hi = load(c + 32 * b + 16), x, y;
    const LaneZetas& z8 = kForwardTables[0][b];
    const LaneZetas& z4 = kForwardTables[1][b];
    const LaneZetas& z2 = kForwardTables[2][b];
    to_span8(lo, hi, x, y);
    forward_butterfly(x, y, load(z8.w), load(z8.companion));
    from_span8(x, y, lo, hi);
    to_span4(lo, hi, x, y);
    forward_butterfly(x, y, load(z4.w), load(z4.companion));
    from_span4(x, y, lo, hi);
    to_span2(lo, hi, x, y);
    forward_butterfly(x, y, load(z2.w), load(z2.companion));
    from_span2(x, y, lo, hi);
    store(c + 32 * b, lo);
    store(c + 32 * b + 16, hi);
  }
}

E2EE_TARGET_AVX2 void inverse_ntt_avx2(Poly& f) {
  std::uint16_t* const c = f.c.data();
  for (std::size_t b = 0; b < kBlocks; ++b) {
    __m256i lo = load(c + 32 * b), hi = load(c + 32 * b + 16), x, y;
    const LaneZetas& z2 = kInverseTables[2][b];
    const LaneZetas& z4 = kInverseTables[1][b];
    const LaneZetas& z8 = kInverseTables[0][b];
    to_span2(lo, hi, x, y);
    inverse_butterfly(x, y, load(z2.w), load(z2.companion));
    from_span2(x, y, lo, hi);
    to_span4(lo, hi, x, y);
    inverse_butterfly(x, y, load(z4.w), load(z4.companion));
    from_span4(x, y, lo, hi);
    to_span8(lo, hi, x, y);
    inverse_butterfly(x, y, load(z8.w), load(z8.companion));
    from_span8(x, y, lo, hi);
    store(c + 32 * b, lo);
    store(c + 32 * b + 16, hi);
  }
  std::size_t i = 15;  // spans 2, 4 and 8 used zetas 127 down to 16
  for (std::size_t len = 16; len <= 128; len *= 2) {
    for (std::size_t start = 0; start < kN; start += 2 * len) {
      const __m256i w = _mm256_set1_epi16(static_cast<short>(kZetas[i]));
      const __m256i companion = _mm256_set1_epi16(static_cast<short>(kZetaCompanions[i]));
      --i;
      for (std::size_t j = start; j < start + len; j += 16) {
        __m256i x = load(c + j), y = load(c + j + len);
        inverse_butterfly(x, y, w, companion);
        store(c + j, x);
        store(c + j + len, y);
      }
    }
  }
  const __m256i scale = _mm256_set1_epi16(static_cast<short>(kInverse128));
  const __m256i scale_companion = _mm256_set1_epi16(static_cast<short>(kInverse128Companion));
  for (std::size_t j = 0; j < kN; j += 16) store(c + j, shoup_mul(load(c + j), scale, scale_companion));
}

}  // namespace e2ee::crypto::mlkem768::detail

#endif  // E2EE_X86_AVX2

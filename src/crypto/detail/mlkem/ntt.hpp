#pragma once
// The number-theoretic transform of FIPS 203 section 4.3 and arithmetic in the NTT domain.

#include "crypto/detail/cpu_features.hpp"
#include "crypto/detail/mlkem/params.hpp"

namespace e2ee::crypto::mlkem768::detail {

// Algorithm 9: f -> f_hat, in place.
void ntt(Poly& f);
// Algorithm 10: f_hat -> f, in place (includes the final multiplication by 128^-1).
void inverse_ntt(Poly& f);
// out = sum over i < kK of f_hat[i] × g_hat[i], each product by Algorithm 11 (MultiplyNTTs,
// with Algorithm 12 per coefficient pair). Summing before reducing saves most reductions.
void inner_product_ntt(Poly& out, const Poly* const f_hat[kK], const PolyVec& g_hat);

void poly_add(Poly& acc, const Poly& b);  // acc += b
void poly_sub(Poly& acc, const Poly& b);  // acc -= b

// The implementations the three functions above choose between, named so that tests can hold
// them against each other. Both compute exactly the same fully reduced coefficients.
void ntt_portable(Poly& f);
void inverse_ntt_portable(Poly& f);
void inner_product_ntt_portable(Poly& out, const Poly* const f_hat[kK], const PolyVec& g_hat);
#if E2EE_X86_AVX2
void ntt_avx2(Poly& f);
void inverse_ntt_avx2(Poly& f);
void inner_product_ntt_avx2(Poly& out, const Poly* const f_hat[kK], const PolyVec& g_hat);
#endif

}  // namespace e2ee::crypto::mlkem768::detail

#pragma once
// The number-theoretic transform of FIPS 203 section 4.3 and arithmetic in the NTT domain.

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

}  // namespace e2ee::crypto::mlkem768::detail

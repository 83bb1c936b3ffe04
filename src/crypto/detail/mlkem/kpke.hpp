#pragma once
// K-PKE, the CPA-secure public-key encryption inside ML-KEM (FIPS 203 section 5).

#include <cstdint>
#include <span>

#include "crypto/detail/mlkem/params.hpp"

namespace e2ee::crypto::mlkem768::detail {

// a_hat[i][j] = SampleNTT(rho || j || i) for all i, j (Algorithm 13 lines 3-7, Algorithm 14
// lines 4-8). Public: rho is part of the encapsulation key.
void expand_matrix(std::span<const std::uint8_t, 32> rho, Matrix& a_hat);

// Algorithm 13, K-PKE.KeyGen(d), returning the decoded forms: t_hat and rho (which make up
// ek_PKE), the expanded matrix, and s_hat (dk_PKE). rho, t_hat and a_hat are declassified for the
// constant-time test because they are published; s_hat stays secret.
void kpke_keygen(std::span<const std::uint8_t, 32> d, PolyVec& t_hat, std::span<std::uint8_t, 32> rho,
                 Matrix& a_hat, PolyVec& s_hat);

// Algorithm 14, K-PKE.Encrypt(ek_PKE, m, r), with ek_PKE given as (t_hat, a_hat).
void kpke_encrypt(const PolyVec& t_hat, const Matrix& a_hat, std::span<const std::uint8_t, 32> m,
                  std::span<const std::uint8_t, 32> r, std::span<std::uint8_t, kCtBytes> c);

// Algorithm 15, K-PKE.Decrypt(dk_PKE, c), with dk_PKE given as s_hat.
void kpke_decrypt(const PolyVec& s_hat, std::span<const std::uint8_t, kCtBytes> c, std::span<std::uint8_t, 32> m);

}  // namespace e2ee::crypto::mlkem768::detail

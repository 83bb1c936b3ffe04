#pragma once
// Sampling (FIPS 203 section 4.2.2).

#include <cstdint>
#include <span>

#include "crypto/detail/mlkem/params.hpp"

namespace e2ee::crypto::mlkem768::detail {

// Algorithm 7, SampleNTT(rho || j || i): rejection sampling from SHAKE128. Variable time, which
// is fine because rho is public (it is the last 32 bytes of the encapsulation key).
void sample_ntt_vartime(std::span<const std::uint8_t, 32> rho, std::uint8_t j, std::uint8_t i, Poly& out);

// Algorithm 8 for eta = 2, on 128 bytes of PRF output. Constant time.
void sample_poly_cbd2(std::span<const std::uint8_t, 64 * 2> bytes, Poly& out);

}  // namespace e2ee::crypto::mlkem768::detail

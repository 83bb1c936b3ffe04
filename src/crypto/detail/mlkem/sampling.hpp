#pragma once
// Sampling (FIPS 203 section 4.2.2).

#include <array>
#include <cstdint>
#include <span>

#include "crypto/detail/mlkem/params.hpp"

namespace e2ee::crypto::mlkem768::detail {

// Algorithm 7, SampleNTT(rho || j || i): rejection sampling from SHAKE128. Variable time, which
// is fine because rho is public (it is the last 32 bytes of the encapsulation key).
void sample_ntt_vartime(std::span<const std::uint8_t, 32> rho, std::uint8_t j, std::uint8_t i, Poly& out);

// Four SampleNTT calls at once, out[k] = SampleNTT(rho || indices[k].j || indices[k].i), with
// the four SHAKE128 streams computed together (xof128_x4). Indices may repeat.
struct NttIndex {
  std::uint8_t j;
  std::uint8_t i;
};
void sample_ntt_x4_vartime(std::span<const std::uint8_t, 32> rho, const std::array<NttIndex, 4>& indices,
                           const std::array<Poly*, 4>& out);

// Algorithm 8 for eta = 2, on 128 bytes of PRF output. Constant time.
void sample_poly_cbd2(std::span<const std::uint8_t, 64 * 2> bytes, Poly& out);

}  // namespace e2ee::crypto::mlkem768::detail

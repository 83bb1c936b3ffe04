#pragma once
// ML-KEM-768 parameters (FIPS 203 section 8, Table 2) and the polynomial types of the algorithm.

#include <array>
#include <cstddef>
#include <cstdint>

namespace e2ee::crypto::mlkem768::detail {

inline constexpr int kN = 256;                 // coefficients per polynomial
inline constexpr std::uint16_t kQ = 3329;      // the prime modulus q = 2^8 * 13 + 1
inline constexpr int kK = 3;                   // module rank k for ML-KEM-768
inline constexpr int kEta1 = 2;
inline constexpr int kEta2 = 2;
inline constexpr int kDu = 10;
inline constexpr int kDv = 4;

inline constexpr std::size_t kPolyBytes12 = 32 * 12;                     // ByteEncode_12 of one polynomial
inline constexpr std::size_t kEncodedTBytes = kPolyBytes12 * kK;         // 1152
inline constexpr std::size_t kEkBytes = kEncodedTBytes + 32;             // 1184
inline constexpr std::size_t kDkPkeBytes = kPolyBytes12 * kK;            // 1152
inline constexpr std::size_t kDkBytes = kDkPkeBytes + kEkBytes + 32 + 32;  // 2400
inline constexpr std::size_t kC1Bytes = 32 * kDu * kK;                   // 960
inline constexpr std::size_t kC2Bytes = 32 * kDv;                        // 128
inline constexpr std::size_t kCtBytes = kC1Bytes + kC2Bytes;             // 1088

static_assert(kEkBytes == 384 * kK + 32);
static_assert(kDkBytes == 768 * kK + 96);
static_assert(kCtBytes == 32 * (kDu * kK + kDv));

// A polynomial in R_q (or its NTT representation). Invariant: every coefficient is in [0, q).
struct Poly {
  std::array<std::uint16_t, kN> c;
};
using PolyVec = std::array<Poly, kK>;
using Matrix = std::array<PolyVec, kK>;  // a_hat[i][j] = SampleNTT(rho || j || i)

}  // namespace e2ee::crypto::mlkem768::detail

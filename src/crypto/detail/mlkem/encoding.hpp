#pragma once
// ByteEncode_d / ByteDecode_d (FIPS 203 Algorithms 5 and 6), fused with Compress/Decompress
// where the algorithm always applies them together.

#include <cstdint>
#include <span>

#include "crypto/detail/mlkem/params.hpp"

namespace e2ee::crypto::mlkem768::detail {

// ByteEncode_12 of a polynomial with coefficients < q: 384 bytes.
void byte_encode12(const Poly& f, std::span<std::uint8_t, kPolyBytes12> out);

// ByteDecode_12 for public input, with the modulus check of FIPS 203 section 7.2: returns false
// if any 12-bit value is >= q (then ByteEncode_12(ByteDecode_12(x)) != x). Variable time is fine:
// the input is an encapsulation key.
bool byte_decode12_checked(std::span<const std::uint8_t, kPolyBytes12> in, Poly& out);

// ByteDecode_12 for secret input (s_hat in a decapsulation key): reduces each value mod q in
// constant time, exactly as Algorithm 6 specifies for d = 12.
void byte_decode12_reduce(std::span<const std::uint8_t, kPolyBytes12> in, Poly& out);

// ByteEncode_d(Compress_d(f)) for d in {1, 4, 10}: 32 * d bytes.
void compress_and_encode(const Poly& f, int d, std::span<std::uint8_t> out);
// Decompress_d(ByteDecode_d(in)) for d in {1, 4, 10}.
void decode_and_decompress(std::span<const std::uint8_t> in, int d, Poly& out);

}  // namespace e2ee::crypto::mlkem768::detail

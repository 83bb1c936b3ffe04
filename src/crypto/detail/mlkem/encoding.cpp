#include "crypto/detail/mlkem/encoding.hpp"

#include <cassert>

#include "crypto/detail/mlkem/field.hpp"

namespace e2ee::crypto::mlkem768::detail {

void byte_encode12(const Poly& f, std::span<std::uint8_t, kPolyBytes12> out) {
  // Two 12-bit coefficients per 3 bytes, least significant bits first.
  for (std::size_t i = 0; i < kN / 2; ++i) {
    const std::uint16_t a = f.c[2 * i], b = f.c[2 * i + 1];
    out[3 * i] = static_cast<std::uint8_t>(a);
    out[3 * i + 1] = static_cast<std::uint8_t>((a >> 8) | (b << 4));
    out[3 * i + 2] = static_cast<std::uint8_t>(b >> 4);
  }
}

namespace {
inline void unpack12(std::span<const std::uint8_t, kPolyBytes12> in, std::size_t i, std::uint16_t& a,
                     std::uint16_t& b) {
  const std::uint16_t x0 = in[3 * i], x1 = in[3 * i + 1], x2 = in[3 * i + 2];
  a = static_cast<std::uint16_t>(x0 | ((x1 & 0x0f) << 8));
  b = static_cast<std::uint16_t>((x1 >> 4) | (x2 << 4));
}
}  // namespace

bool byte_decode12_checked(std::span<const std::uint8_t, kPolyBytes12> in, Poly& out) {
  std::uint16_t too_big = 0;
  for (std::size_t i = 0; i < kN / 2; ++i) {
    std::uint16_t a, b;
    unpack12(in, i, a, b);
    too_big |= static_cast<std::uint16_t>((a >= kQ) | (b >= kQ));
    out.c[2 * i] = a;
    out.c[2 * i + 1] = b;
  }
  return too_big == 0;
}

void byte_decode12_reduce(std::span<const std::uint8_t, kPolyBytes12> in, Poly& out) {
  for (std::size_t i = 0; i < kN / 2; ++i) {
    std::uint16_t a, b;
    unpack12(in, i, a, b);
    out.c[2 * i] = reduce_once(a);  // a < 2^12 < 2q
    out.c[2 * i + 1] = reduce_once(b);
  }
}

void compress_and_encode(const Poly& f, int d, std::span<std::uint8_t> out) {
  assert(out.size() == static_cast<std::size_t>(32 * d));
  // A little-endian bit accumulator: append d bits per coefficient, flush whole bytes.
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t o = 0;
  for (std::size_t i = 0; i < kN; ++i) {
    acc |= static_cast<std::uint32_t>(compress(f.c[i], d)) << bits;
    bits += d;
    while (bits >= 8) {
      out[o++] = static_cast<std::uint8_t>(acc);
      acc >>= 8;
      bits -= 8;
    }
  }
}

void decode_and_decompress(std::span<const std::uint8_t> in, int d, Poly& out) {
  assert(in.size() == static_cast<std::size_t>(32 * d));
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t pos = 0;
  const std::uint32_t mask = (1u << d) - 1;
  for (std::size_t i = 0; i < kN; ++i) {
    while (bits < d) {
      acc |= static_cast<std::uint32_t>(in[pos++]) << bits;
      bits += 8;
    }
    out.c[i] = decompress(static_cast<std::uint16_t>(acc & mask), d);
    acc >>= d;
    bits -= d;
  }
}

}  // namespace e2ee::crypto::mlkem768::detail

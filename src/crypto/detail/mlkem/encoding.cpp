#include "crypto/detail/mlkem/encoding.hpp"

#include <array>
#include <cassert>
#include <cstdio>
#include <cstdlib>

#include "crypto/detail/mlkem/field.hpp"
#include "crypto/secure_buffer.hpp"

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

namespace {

// ByteEncode_d / ByteDecode_d (Algorithms 5 and 6) with d fixed at compile time: values are packed
// least significant bit first, a group at a time, where a group is the fewest values that fill
// whole bytes (8 for d = 1 and 4; 4 for d = 10, which is 40 bits). The bit-at-a-time loop this
// replaces had a data-independent but unknown-to-the-compiler trip count per byte and was a fifth
// of a decapsulation; fixed shifts let the compiler unroll the groups.
template <int D>
struct Packing {
  static constexpr std::size_t kGroup = (D * 4) % 8 == 0 ? 4 : 8;
  static_assert(D >= 1 && D * kGroup <= 64, "a group must fit the 64-bit accumulator");
  static constexpr std::size_t kGroupBytes = D * kGroup / 8;
  static constexpr std::uint64_t kMask = (std::uint64_t{1} << D) - 1;
};

template <int D>
void pack(const std::array<std::uint16_t, kN>& values, std::span<std::uint8_t> out) {
  using P = Packing<D>;
  for (std::size_t g = 0; g < kN / P::kGroup; ++g) {
    std::uint64_t acc = 0;
    for (std::size_t j = 0; j < P::kGroup; ++j) acc |= std::uint64_t{values[g * P::kGroup + j]} << (D * j);
    for (std::size_t b = 0; b < P::kGroupBytes; ++b) out[g * P::kGroupBytes + b] = static_cast<std::uint8_t>(acc >> (8 * b));
  }
}

template <int D>
void unpack(std::span<const std::uint8_t> in, std::array<std::uint16_t, kN>& values) {
  using P = Packing<D>;
  for (std::size_t g = 0; g < kN / P::kGroup; ++g) {
    std::uint64_t acc = 0;
    for (std::size_t b = 0; b < P::kGroupBytes; ++b) acc |= std::uint64_t{in[g * P::kGroupBytes + b]} << (8 * b);
    for (std::size_t j = 0; j < P::kGroup; ++j)
      values[g * P::kGroup + j] = static_cast<std::uint16_t>((acc >> (D * j)) & P::kMask);
  }
}

// The compressed values can be secret (the message m in decryption and encryption), so the
// staging array is wiped.
template <int D>
void compress_and_encode_d(const Poly& f, std::span<std::uint8_t> out) {
  std::array<std::uint16_t, kN> values;
  for (std::size_t i = 0; i < kN; ++i) values[i] = compress(f.c[i], D);
  pack<D>(values, out);
  secure_wipe(values.data(), sizeof values);
}

template <int D>
void decode_and_decompress_d(std::span<const std::uint8_t> in, Poly& out) {
  std::array<std::uint16_t, kN> values;
  unpack<D>(in, values);
  for (std::size_t i = 0; i < kN; ++i) out.c[i] = decompress(values[i], D);
  secure_wipe(values.data(), sizeof values);
}

[[noreturn]] void unsupported_d(int d) {
  std::fprintf(stderr, "fatal: ML-KEM: compression to %d bits is not used by ML-KEM-768\n", d);
  std::abort();
}

}  // namespace

void compress_and_encode(const Poly& f, int d, std::span<std::uint8_t> out) {
  assert(out.size() == static_cast<std::size_t>(32 * d));
  switch (d) {
    case 1: return compress_and_encode_d<1>(f, out);
    case 4: return compress_and_encode_d<4>(f, out);
    case 10: return compress_and_encode_d<10>(f, out);
    default: unsupported_d(d);
  }
}

void decode_and_decompress(std::span<const std::uint8_t> in, int d, Poly& out) {
  assert(in.size() == static_cast<std::size_t>(32 * d));
  switch (d) {
    case 1: return decode_and_decompress_d<1>(in, out);
    case 4: return decode_and_decompress_d<4>(in, out);
    case 10: return decode_and_decompress_d<10>(in, out);
    default: unsupported_d(d);
  }
}

}  // namespace e2ee::crypto::mlkem768::detail

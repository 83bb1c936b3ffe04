// ML-KEM-768 building blocks checked against slow, obviously correct references over their whole
// input domains (q = 3329 makes that cheap).

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <vector>

#include "crypto/detail/mlkem/encoding.hpp"
#include "crypto/detail/mlkem/field.hpp"
#include "crypto/detail/mlkem/ntt.hpp"
#include "crypto/detail/mlkem/ntt_tables.hpp"
#include "crypto/detail/mlkem/sampling.hpp"
#include "crypto/detail/mlkem/symmetric.hpp"

namespace e2ee::crypto::mlkem768::detail {
namespace {

constexpr std::uint32_t q = kQ;

TEST(MlKemField, ReduceOnceCoversEveryInputBelow2q) {
  for (std::uint32_t a = 0; a < 2 * q; ++a) ASSERT_EQ(reduce_once(static_cast<std::uint16_t>(a)), a % q) << a;
}

TEST(MlKemField, BarrettReduceMatchesModuloOverEveryProductAndBeyond) {
  for (std::uint32_t a = 0; a < q; ++a)
    for (std::uint32_t b = 0; b < q; b += 7) ASSERT_EQ(field_mul(static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)), (a * b) % q);
  // The claim in field.hpp is "any 32-bit value": check a dense stride and the top of the range.
  for (std::uint64_t x = 0; x <= 0xffffffffULL; x += 65521) ASSERT_EQ(barrett_reduce(static_cast<std::uint32_t>(x)), x % q) << x;
  for (std::uint64_t x = 0xffffffffULL - 100000; x <= 0xffffffffULL; ++x)
    ASSERT_EQ(barrett_reduce(static_cast<std::uint32_t>(x)), x % q) << x;
}

TEST(MlKemField, AddAndSubOverAllPairsOfAStride) {
  for (std::uint32_t a = 0; a < q; ++a)
    for (std::uint32_t b = 0; b < q; b += 13) {
      ASSERT_EQ(field_add(static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)), (a + b) % q);
      ASSERT_EQ(field_sub(static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(b)), (a + q - b) % q);
    }
}

// FIPS 203 section 2.3: round(x) = floor(x + 1/2). Compress_d(x) = round(2^d x / q) mod 2^d, done
// here with exact integer arithmetic: floor((2^(d+1) x + q) / (2q)).
std::uint32_t compress_reference(std::uint32_t x, int d) {
  return static_cast<std::uint32_t>(((std::uint64_t{x} << (d + 1)) + q) / (2 * q)) % (1u << d);
}
std::uint32_t decompress_reference(std::uint32_t y, int d) {
  return static_cast<std::uint32_t>((std::uint64_t{y} * q * 2 + (1u << d)) / (1u << (d + 1)));
}

TEST(MlKemField, CompressAndDecompressMatchExactRationalRounding) {
  for (int d : {1, 4, 5, 10, 11}) {
    for (std::uint32_t x = 0; x < q; ++x) ASSERT_EQ(compress(static_cast<std::uint16_t>(x), d), compress_reference(x, d)) << "d=" << d << " x=" << x;
    for (std::uint32_t y = 0; y < (1u << d); ++y) ASSERT_EQ(decompress(static_cast<std::uint16_t>(y), d), decompress_reference(y, d)) << "d=" << d << " y=" << y;
  }
}

Poly random_poly(std::mt19937& rng) {
  Poly p;
  for (auto& c : p.c) c = static_cast<std::uint16_t>(rng() % q);
  return p;
}

// Multiplication in R_q = Z_q[X]/(X^256 + 1), the definition the NTT must agree with.
Poly schoolbook_multiply(const Poly& a, const Poly& b) {
  std::array<std::int64_t, 2 * kN> wide{};
  for (int i = 0; i < kN; ++i)
    for (int j = 0; j < kN; ++j) wide[static_cast<std::size_t>(i + j)] += std::int64_t{a.c[static_cast<std::size_t>(i)]} * b.c[static_cast<std::size_t>(j)];
  Poly out;
  for (int i = 0; i < kN; ++i) {
    const std::int64_t v = wide[static_cast<std::size_t>(i)] - wide[static_cast<std::size_t>(i + kN)];  // X^256 = -1
    out.c[static_cast<std::size_t>(i)] = static_cast<std::uint16_t>(((v % q) + q) % q);
  }
  return out;
}

TEST(MlKemNtt, InverseUndoesForward) {
  std::mt19937 rng(1);
  for (int round = 0; round < 50; ++round) {
    const Poly original = random_poly(rng);
    Poly p = original;
    ntt(p);
    EXPECT_NE(p.c, original.c);
    inverse_ntt(p);
    ASSERT_EQ(p.c, original.c);
  }
}

// FIPS 203 (4.9): NTT(f) is f reduced modulo each X^2 - gamma_i, gamma_i = 17^(2 BitRev7(i) + 1),
// so f_hat[2i] = sum_j f[2j] gamma_i^j and f_hat[2i + 1] = sum_j f[2j + 1] gamma_i^j. An
// implementation of the butterflies cannot agree with this by accident.
Poly ntt_by_definition(const Poly& f) {
  Poly out;
  for (std::size_t i = 0; i < kN / 2; ++i) {
    const std::uint64_t gamma = ntt_tables::kGammas[i];
    std::uint64_t even = 0, odd = 0, power = 1;
    for (std::size_t j = 0; j < kN / 2; ++j) {
      even = (even + f.c[2 * j] * power) % q;
      odd = (odd + f.c[2 * j + 1] * power) % q;
      power = power * gamma % q;
    }
    out.c[2 * i] = static_cast<std::uint16_t>(even);
    out.c[2 * i + 1] = static_cast<std::uint16_t>(odd);
  }
  return out;
}

// Inputs that reach the corners: zero, every coefficient q - 1, each unit vector, alternating
// extremes, then random polynomials.
std::vector<Poly> transform_inputs() {
  std::vector<Poly> polys;
  Poly p;
  p.c.fill(0);
  polys.push_back(p);
  p.c.fill(static_cast<std::uint16_t>(q - 1));
  polys.push_back(p);
  for (std::size_t k = 0; k < kN; ++k) {
    p.c.fill(0);
    p.c[k] = 1;
    polys.push_back(p);
    p.c[k] = static_cast<std::uint16_t>(q - 1);
    polys.push_back(p);
  }
  for (std::size_t k = 0; k < kN; ++k) p.c[k] = static_cast<std::uint16_t>(k % 2 == 0 ? 0 : q - 1);
  polys.push_back(p);
  std::mt19937 rng(7);
  for (int round = 0; round < 300; ++round) polys.push_back(random_poly(rng));
  return polys;
}

TEST(MlKemNtt, PortableTransformMatchesTheDefinition) {
  std::mt19937 rng(8);
  for (int round = 0; round < 20; ++round) {
    const Poly f = random_poly(rng);
    Poly p = f;
    ntt_portable(p);
    ASSERT_EQ(p.c, ntt_by_definition(f).c) << "round " << round;
    inverse_ntt_portable(p);
    ASSERT_EQ(p.c, f.c) << "round " << round;
  }
}

#if E2EE_X86_AVX2
// The AVX2 transforms must give exactly the portable ones' coefficients (not merely congruent
// ones: every consumer relies on [0, q)).
TEST(MlKemNtt, Avx2TransformsMatchPortableOnesExactly) {
  if (!crypto::detail::cpu_has_avx2()) GTEST_SKIP() << "SKIPPED: this CPU has no AVX2, so the AVX2 NTT is not run here";
  const std::vector<Poly> inputs = transform_inputs();
  for (std::size_t n = 0; n < inputs.size(); ++n) {
    Poly portable = inputs[n], vector = inputs[n];
    ntt_portable(portable);
    ntt_avx2(vector);
    ASSERT_EQ(vector.c, portable.c) << "forward, input " << n;
    if (n < 40) {
      ASSERT_EQ(vector.c, ntt_by_definition(inputs[n]).c) << "forward vs definition, input " << n;
    }
    portable = inputs[n];
    vector = inputs[n];
    inverse_ntt_portable(portable);
    inverse_ntt_avx2(vector);
    ASSERT_EQ(vector.c, portable.c) << "inverse, input " << n;
  }
}

TEST(MlKemNtt, Avx2InnerProductMatchesPortableExactly) {
  if (!crypto::detail::cpu_has_avx2()) GTEST_SKIP() << "SKIPPED: this CPU has no AVX2, so the AVX2 inner product is not run here";
  std::mt19937 rng(14);
  for (int round = 0; round < 200; ++round) {
    PolyVec a, b;
    for (std::size_t i = 0; i < kK; ++i) {
      a[i] = random_poly(rng);
      b[i] = random_poly(rng);
      if (round == 0) {  // the largest accumulator values
        a[i].c.fill(static_cast<std::uint16_t>(q - 1));
        b[i].c.fill(static_cast<std::uint16_t>(q - 1));
      }
      if (round == 1) a[i].c.fill(0);
    }
    const Poly* const f[kK] = {&a[0], &a[1], &a[2]};
    Poly portable, vector;
    inner_product_ntt_portable(portable, f, b);
    inner_product_ntt_avx2(vector, f, b);
    ASSERT_EQ(vector.c, portable.c) << "round " << round;
  }
}
#endif

TEST(MlKemNtt, MultiplyNttsAgreesWithSchoolbookRingMultiplication) {
  std::mt19937 rng(2);
  for (int round = 0; round < 20; ++round) {
    const Poly a = random_poly(rng), b = random_poly(rng);
    Poly a_hat = a, b_hat = b, product;
    ntt(a_hat);
    ntt(b_hat);
    // A one-term inner product is a plain product: pad with zero polynomials.
    Poly zero;
    zero.c.fill(0);
    const Poly* const f[kK] = {&a_hat, &zero, &zero};
    const PolyVec g = {b_hat, zero, zero};
    inner_product_ntt(product, f, g);
    inverse_ntt(product);
    ASSERT_EQ(product.c, schoolbook_multiply(a, b).c) << "round " << round;
  }
}

TEST(MlKemNtt, InnerProductSumsThreeRingProducts) {
  std::mt19937 rng(5);
  PolyVec a, b, a_hat, b_hat;
  Poly expected;
  expected.c.fill(0);
  for (std::size_t i = 0; i < kK; ++i) {
    a[i] = random_poly(rng);
    b[i] = random_poly(rng);
    a_hat[i] = a[i];
    b_hat[i] = b[i];
    ntt(a_hat[i]);
    ntt(b_hat[i]);
    const Poly term = schoolbook_multiply(a[i], b[i]);
    for (std::size_t j = 0; j < kN; ++j) expected.c[j] = static_cast<std::uint16_t>((expected.c[j] + term.c[j]) % q);
  }
  // Worst case for the unreduced 32-bit accumulator: every coefficient q - 1.
  const Poly* const f[kK] = {&a_hat[0], &a_hat[1], &a_hat[2]};
  Poly got;
  inner_product_ntt(got, f, b_hat);
  inverse_ntt(got);
  EXPECT_EQ(got.c, expected.c);
  Poly max;
  max.c.fill(static_cast<std::uint16_t>(q - 1));
  const Poly* const fm[kK] = {&max, &max, &max};
  const PolyVec gm = {max, max, max};
  inner_product_ntt(got, fm, gm);
  for (auto c : got.c) EXPECT_LT(c, q);
}

TEST(MlKemField, ShoupMultiplicationMatchesForEveryOperandBelow2To16) {
  for (std::uint32_t w : {1u, 17u, 1729u, 3303u, q - 1}) {
    const auto companion = shoup_companion(static_cast<std::uint16_t>(w));
    for (std::uint32_t a = 0; a < 65536; ++a)
      ASSERT_EQ(shoup_mul(static_cast<std::uint16_t>(a), static_cast<std::uint16_t>(w), companion), (a * w) % q) << a << "*" << w;
  }
}

TEST(MlKemEncoding, Encode12RoundTripsAndModulusCheckRejectsEachOverflow) {
  std::mt19937 rng(3);
  const Poly p = random_poly(rng);
  std::array<std::uint8_t, kPolyBytes12> bytes;
  byte_encode12(p, bytes);
  Poly back;
  ASSERT_TRUE(byte_decode12_checked(bytes, back));
  EXPECT_EQ(back.c, p.c);
  // Put q, and then 4095, into each coefficient position in turn: every one must fail the check,
  // while the reducing decoder maps it into range.
  for (std::size_t i = 0; i < kN; i += 17) {
    for (std::uint16_t bad : {static_cast<std::uint16_t>(q), static_cast<std::uint16_t>(4095)}) {
      Poly raw = p;
      raw.c[i] = bad;
      std::array<std::uint8_t, kPolyBytes12> enc;
      byte_encode12(raw, enc);
      Poly out;
      EXPECT_FALSE(byte_decode12_checked(enc, out)) << i;
      byte_decode12_reduce(enc, out);
      EXPECT_EQ(out.c[i], bad % q);
    }
  }
}

// Algorithm 5 and 6 bit by bit, with Compress and Decompress as exact rational rounding: the
// reference the packed, fixed-width encoders are held to.
std::vector<std::uint8_t> reference_compress_encode(const Poly& f, int d) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(32 * d), 0);
  for (std::size_t i = 0; i < kN; ++i) {
    const std::uint32_t y = ((std::uint32_t{f.c[i]} << (d + 1)) + q) / (2 * q) % (1u << d);  // round(2^d x / q)
    for (int b = 0; b < d; ++b) {
      const std::size_t bit = i * static_cast<std::size_t>(d) + static_cast<std::size_t>(b);
      out[bit / 8] = static_cast<std::uint8_t>(out[bit / 8] | (((y >> b) & 1u) << (bit % 8)));
    }
  }
  return out;
}

Poly reference_decode_decompress(const std::vector<std::uint8_t>& in, int d) {
  Poly out;
  for (std::size_t i = 0; i < kN; ++i) {
    std::uint32_t y = 0;
    for (int b = 0; b < d; ++b) {
      const std::size_t bit = i * static_cast<std::size_t>(d) + static_cast<std::size_t>(b);
      y |= static_cast<std::uint32_t>((in[bit / 8] >> (bit % 8)) & 1u) << b;
    }
    out.c[i] = static_cast<std::uint16_t>((y * 2 * q + (1u << d)) >> (d + 1));  // round(q y / 2^d)
  }
  return out;
}

TEST(MlKemEncoding, CompressedEncodingsMatchTheBitByBitAlgorithms) {
  std::mt19937 rng(9);
  for (int d : {1, 4, 10}) {
    for (int round = 0; round < 40; ++round) {
      Poly p = random_poly(rng);
      // Sweep every value below q across the rounds, so each rounding boundary is met.
      for (std::size_t i = 0; i < kN; ++i) p.c[i] = static_cast<std::uint16_t>((round * kN + i) % q);
      if (round % 2 == 1) p = random_poly(rng);
      std::vector<std::uint8_t> bytes(static_cast<std::size_t>(32 * d));
      compress_and_encode(p, d, bytes);
      ASSERT_EQ(bytes, reference_compress_encode(p, d)) << "d=" << d << " round " << round;
      std::vector<std::uint8_t> random_bytes(bytes.size());
      for (auto& b : random_bytes) b = static_cast<std::uint8_t>(rng());
      Poly got;
      decode_and_decompress(random_bytes, d, got);
      ASSERT_EQ(got.c, reference_decode_decompress(random_bytes, d).c) << "d=" << d << " round " << round;
    }
  }
}

TEST(MlKemEncoding, CompressedEncodingsRoundTripWithinTheRoundingBound) {
  std::mt19937 rng(4);
  for (int d : {1, 4, 10}) {
    const Poly p = random_poly(rng);
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(32 * d));
    compress_and_encode(p, d, bytes);
    Poly back;
    decode_and_decompress(bytes, d, back);
    // FIPS 203 section 4.2.1: |Decompress(Compress(x)) - x| mod± q <= round(q / 2^(d+1)).
    const int bound = static_cast<int>((q + (1u << d)) >> (d + 1));
    for (std::size_t i = 0; i < kN; ++i) {
      int diff = static_cast<int>(back.c[i]) - static_cast<int>(p.c[i]);
      diff = ((diff % static_cast<int>(q)) + static_cast<int>(q)) % static_cast<int>(q);
      if (diff > static_cast<int>(q) / 2) diff -= static_cast<int>(q);
      ASSERT_LE(std::abs(diff), bound) << "d=" << d << " i=" << i;
    }
  }
}

TEST(MlKemSampling, Cbd2MatchesTheBitDefinition) {
  std::array<std::uint8_t, 128> bytes;
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<std::uint8_t>(i * 37 + 11);
  Poly out;
  sample_poly_cbd2(bytes, out);
  for (std::size_t i = 0; i < kN; ++i) {
    auto bit = [&](std::size_t k) { return (bytes[k / 8] >> (k % 8)) & 1; };
    const int x = bit(4 * i) + bit(4 * i + 1);
    const int y = bit(4 * i + 2) + bit(4 * i + 3);
    ASSERT_EQ(out.c[i], static_cast<std::uint16_t>((x - y + static_cast<int>(q)) % static_cast<int>(q))) << i;
  }
}

TEST(MlKemSampling, SampleNttProducesReducedCoefficientsAndDependsOnIndices) {
  std::array<std::uint8_t, 32> rho{};
  Poly a, b;
  sample_ntt_vartime(rho, 0, 1, a);
  sample_ntt_vartime(rho, 1, 0, b);
  for (auto c : a.c) ASSERT_LT(c, q);
  EXPECT_NE(a.c, b.c);
}

// FIPS 203 Algorithm 7 written out plainly on OpenSSL's SHAKE128 (an independent Keccak): read
// 3-byte groups of one long XOF output. Returns how many XOF bytes it used.
std::size_t reference_sample_ntt(const std::array<std::uint8_t, 32>& rho, std::uint8_t j, std::uint8_t i, Poly& out) {
  std::vector<std::uint8_t> seed(rho.begin(), rho.end());
  seed.push_back(j);
  seed.push_back(i);
  std::vector<std::uint8_t> stream(168 * 12);
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHAKE128", nullptr);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const bool ok = md != nullptr && ctx != nullptr && EVP_DigestInit_ex(ctx, md, nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, seed.data(), seed.size()) == 1 &&
                  EVP_DigestFinalXOF(ctx, stream.data(), stream.size()) == 1;
  EVP_MD_CTX_free(ctx);
  EVP_MD_free(md);
  EXPECT_TRUE(ok);
  std::size_t filled = 0, pos = 0;
  while (filled < 256) {
    const std::uint32_t d1 = stream[pos] | ((stream[pos + 1] & 0x0fu) << 8);
    const std::uint32_t d2 = (stream[pos + 1] >> 4) | (std::uint32_t{stream[pos + 2]} << 4);
    pos += 3;
    if (d1 < q) out.c[filled++] = static_cast<std::uint16_t>(d1);
    if (d2 < q && filled < 256) out.c[filled++] = static_cast<std::uint16_t>(d2);
  }
  return pos;
}

TEST(MlKemSampling, SampleNttMatchesTheAlgorithmOnAnIndependentShake128) {
  // Enough seeds that some need more than the three blocks squeezed first (about 1 in 100).
  std::mt19937 rng(203);
  int longer = 0;
  for (int n = 0; n < 2000; ++n) {
    std::array<std::uint8_t, 32> rho;
    for (auto& b : rho) b = static_cast<std::uint8_t>(rng());
    const auto j = static_cast<std::uint8_t>(n % 3), i = static_cast<std::uint8_t>(n / 3 % 3);
    Poly ours, reference;
    if (reference_sample_ntt(rho, j, i, reference) > 3 * 168) ++longer;
    sample_ntt_vartime(rho, j, i, ours);
    ASSERT_EQ(ours.c, reference.c) << n;
  }
  EXPECT_GT(longer, 0) << "no seed needed a fourth block: the test did not reach that path";
}

// The four-way forms against the one-way SampleNTT and against OpenSSL's SHAKE256 for PRF.
TEST(MlKemSampling, FourWaySampleNttMatchesTheAlgorithmInEveryLane) {
  // Enough lanes that some need more than the three blocks squeezed together (about 1 in 100):
  // that lane then continues on its own stream.
  std::mt19937 rng(10);
  int longer = 0;
  for (int round = 0; round < 500; ++round) {
    std::array<std::uint8_t, 32> rho;
    for (auto& b : rho) b = static_cast<std::uint8_t>(rng());
    std::array<NttIndex, 4> indices;
    for (auto& index : indices) index = {static_cast<std::uint8_t>(rng() % 3), static_cast<std::uint8_t>(rng() % 3)};
    std::array<Poly, 4> got;
    sample_ntt_x4_vartime(rho, indices, {&got[0], &got[1], &got[2], &got[3]});
    for (std::size_t k = 0; k < 4; ++k) {
      Poly reference;
      if (reference_sample_ntt(rho, indices[k].j, indices[k].i, reference) > 3 * 168) ++longer;
      ASSERT_EQ(got[k].c, reference.c) << "round " << round << ", lane " << k;
    }
  }
  EXPECT_GT(longer, 0) << "no lane needed a fourth block: the test did not reach that path";
}

TEST(MlKemSymmetric, FourWayPrfMatchesOpenSslShake256) {
  std::mt19937 rng(13);
  std::array<std::uint8_t, 32> s;
  for (auto& b : s) b = static_cast<std::uint8_t>(rng());
  const std::array<std::uint8_t, 4> n = {0, 1, 7, 255};
  std::array<std::array<std::uint8_t, 128>, 4> out;
  prf_x4(s, n, {out[0], out[1], out[2], out[3]});
  for (std::size_t k = 0; k < 4; ++k) {
    std::array<std::uint8_t, 33> input;
    std::copy(s.begin(), s.end(), input.begin());
    input[32] = n[k];
    std::array<std::uint8_t, 128> expected;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ASSERT_EQ(EVP_DigestInit_ex(ctx, EVP_shake256(), nullptr), 1);
    ASSERT_EQ(EVP_DigestUpdate(ctx, input.data(), input.size()), 1);
    ASSERT_EQ(EVP_DigestFinalXOF(ctx, expected.data(), expected.size()), 1);
    EVP_MD_CTX_free(ctx);
    EXPECT_EQ(out[k], expected) << "lane " << k;
  }
}

}  // namespace
}  // namespace e2ee::crypto::mlkem768::detail

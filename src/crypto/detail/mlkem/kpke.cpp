#include "crypto/detail/mlkem/kpke.hpp"

#include <array>

#include "crypto/detail/constant_time.hpp"
#include "crypto/detail/mlkem/encoding.hpp"
#include "crypto/detail/mlkem/ntt.hpp"
#include "crypto/detail/mlkem/sampling.hpp"
#include "crypto/detail/mlkem/symmetric.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto::mlkem768::detail {
namespace {

constexpr std::size_t kPrfBytes = 64 * kEta1;
static_assert(kEta1 == 2 && kEta2 == 2, "sample_poly_cbd2 covers eta = 2 only, which ML-KEM-768 uses");

// Wipes stack temporaries that held secret polynomials or bytes.
template <typename T>
void wipe(T& object) {
  secure_wipe(&object, sizeof object);
}

// SamplePolyCBD_eta1(PRF(seed, first_n + k)) -> *out[k] for every k, four PRF streams at a time
// (prf_x4). A short last batch fills its spare lanes with a scratch polynomial.
void sample_cbd_batch(std::span<const std::uint8_t, 32> seed, std::uint8_t first_n, std::span<Poly* const> out) {
  for (std::size_t base = 0; base < out.size(); base += 4) {
    Poly scratch;
    std::array<std::uint8_t, 4> n{};
    std::array<Poly*, 4> target{};
    for (std::size_t k = 0; k < 4; ++k) {
      const bool real = base + k < out.size();
      n[k] = static_cast<std::uint8_t>(first_n + (real ? base + k : base));
      target[k] = real ? out[base + k] : &scratch;
    }
    std::array<std::array<std::uint8_t, kPrfBytes>, 4> buf;
    prf_x4(seed, n, {buf[0], buf[1], buf[2], buf[3]});
    for (std::size_t k = 0; k < 4; ++k) sample_poly_cbd2(buf[k], *target[k]);
    wipe(buf);
    wipe(scratch);
  }
}

}  // namespace

void expand_matrix(std::span<const std::uint8_t, 32> rho, Matrix& a_hat) {
  // The nine entries in batches of four; the last batch repeats its one entry in the spare lanes.
  constexpr std::size_t kEntries = kK * kK;
  Poly scratch;
  for (std::size_t base = 0; base < kEntries; base += 4) {
    std::array<NttIndex, 4> indices{};
    std::array<Poly*, 4> out{};
    for (std::size_t k = 0; k < 4; ++k) {
      const bool real = base + k < kEntries;
      const std::size_t e = real ? base + k : base;
      const std::size_t i = e / kK, j = e % kK;
      indices[k] = {static_cast<std::uint8_t>(j), static_cast<std::uint8_t>(i)};
      out[k] = real ? &a_hat[i][j] : &scratch;
    }
    sample_ntt_x4_vartime(rho, indices, out);
  }
}

void kpke_keygen(std::span<const std::uint8_t, 32> d, PolyVec& t_hat, std::span<std::uint8_t, 32> rho,
                 Matrix& a_hat, PolyVec& s_hat) {
  // (rho, sigma) = G(d || k). FIPS 203 final appends k here; the ipd draft did not.
  std::array<std::uint8_t, 64> g;
  const std::uint8_t k_byte[1] = {static_cast<std::uint8_t>(kK)};
  hash_g(d, k_byte, g);
  std::copy(g.begin(), g.begin() + 32, rho.begin());
  const std::span<const std::uint8_t, 32> sigma(g.data() + 32, 32);
  // rho is published as the tail of ek; matrix sampling branches on it, legitimately.
  E2EE_CT_DECLASSIFY(rho.data(), rho.size());

  expand_matrix(rho, a_hat);

  // N counts the PRF calls: s_hat takes 0..k-1, e takes k..2k-1.
  PolyVec e;
  Poly* const noise[2 * kK] = {&s_hat[0], &s_hat[1], &s_hat[2], &e[0], &e[1], &e[2]};
  sample_cbd_batch(sigma, 0, noise);
  for (auto& s : s_hat) ntt(s);
  for (auto& ei : e) ntt(ei);

  // t_hat = A_hat ∘ s_hat + e_hat
  for (std::size_t i = 0; i < kK; ++i) {
    const Poly* const row[kK] = {&a_hat[i][0], &a_hat[i][1], &a_hat[i][2]};
    inner_product_ntt(t_hat[i], row, s_hat);
    poly_add(t_hat[i], e[i]);
  }
  // t_hat is published in ek.
  E2EE_CT_DECLASSIFY(&t_hat, sizeof t_hat);
  wipe(e);
  wipe(g);
}

void kpke_encrypt(const PolyVec& t_hat, const Matrix& a_hat, std::span<const std::uint8_t, 32> m,
                  std::span<const std::uint8_t, 32> r, std::span<std::uint8_t, kCtBytes> c) {
  // N counts the PRF calls: y takes 0..k-1, e1 takes k..2k-1, e2 takes 2k.
  PolyVec y_hat, e1;
  Poly e2;
  Poly* const noise[2 * kK + 1] = {&y_hat[0], &y_hat[1], &y_hat[2], &e1[0], &e1[1], &e1[2], &e2};
  sample_cbd_batch(r, 0, noise);
  for (auto& y : y_hat) ntt(y);

  // u = NTT^-1(A_hat^T ∘ y_hat) + e1: note the transposed index a_hat[j][i].
  for (std::size_t i = 0; i < kK; ++i) {
    Poly u;
    const Poly* const column[kK] = {&a_hat[0][i], &a_hat[1][i], &a_hat[2][i]};
    inner_product_ntt(u, column, y_hat);
    inverse_ntt(u);
    poly_add(u, e1[i]);
    compress_and_encode(u, kDu, c.subspan(i * 32 * kDu, 32 * kDu));
    wipe(u);
  }

  // v = NTT^-1(t_hat^T ∘ y_hat) + e2 + mu, mu = Decompress_1(ByteDecode_1(m)).
  Poly v;
  const Poly* const t[kK] = {&t_hat[0], &t_hat[1], &t_hat[2]};
  inner_product_ntt(v, t, y_hat);
  inverse_ntt(v);
  poly_add(v, e2);
  Poly mu;
  decode_and_decompress(m, 1, mu);
  poly_add(v, mu);
  compress_and_encode(v, kDv, c.subspan(kC1Bytes, kC2Bytes));

  wipe(y_hat);
  wipe(e1);
  wipe(e2);
  wipe(v);
  wipe(mu);
}

void kpke_decrypt(const PolyVec& s_hat, std::span<const std::uint8_t, kCtBytes> c, std::span<std::uint8_t, 32> m) {
  // w = v' - NTT^-1(s_hat^T ∘ NTT(u'))
  PolyVec u_hat;
  for (std::size_t i = 0; i < kK; ++i) {
    decode_and_decompress(c.subspan(i * 32 * kDu, 32 * kDu), kDu, u_hat[i]);
    ntt(u_hat[i]);
  }
  Poly inner;
  const Poly* const s[kK] = {&s_hat[0], &s_hat[1], &s_hat[2]};
  inner_product_ntt(inner, s, u_hat);
  inverse_ntt(inner);
  Poly w;
  decode_and_decompress(c.subspan(kC1Bytes, kC2Bytes), kDv, w);
  poly_sub(w, inner);
  compress_and_encode(w, 1, m);
  wipe(inner);
  wipe(w);
}

}  // namespace e2ee::crypto::mlkem768::detail

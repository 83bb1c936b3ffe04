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

void sample_cbd_from_prf(std::span<const std::uint8_t, 32> seed, std::uint8_t n, Poly& out) {
  std::array<std::uint8_t, kPrfBytes> buf;
  prf(seed, n, buf);
  sample_poly_cbd2(buf, out);
  wipe(buf);
}

}  // namespace

void expand_matrix(std::span<const std::uint8_t, 32> rho, Matrix& a_hat) {
  for (int i = 0; i < kK; ++i)
    for (int j = 0; j < kK; ++j)
      sample_ntt_vartime(rho, static_cast<std::uint8_t>(j), static_cast<std::uint8_t>(i),
                         a_hat[static_cast<std::size_t>(i)][static_cast<std::size_t>(j)]);
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

  std::uint8_t n = 0;
  for (auto& s : s_hat) sample_cbd_from_prf(sigma, n++, s);
  PolyVec e;
  for (auto& ei : e) sample_cbd_from_prf(sigma, n++, ei);
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
  std::uint8_t n = 0;
  PolyVec y_hat, e1;
  Poly e2;
  for (auto& y : y_hat) sample_cbd_from_prf(r, n++, y);
  for (auto& e : e1) sample_cbd_from_prf(r, n++, e);
  sample_cbd_from_prf(r, n++, e2);
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

#include "crypto/detail/mlkem/symmetric.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "crypto/detail/keccak.hpp"
#include "crypto/detail/keccak_x4.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto::mlkem768::detail {
namespace {

namespace keccak = crypto::detail;

// Rates in bytes (FIPS 202 section 6: 1600 bits minus twice the security strength).
constexpr std::size_t kShake256Rate = 136;
constexpr std::size_t kShake128Rate = 168;

// G, H and J hash up to 1,184 bytes in one call, where OpenSSL's assembly permutation beats our
// portable one (~1.5x per permutation on the dev machine) by more than its per-call context set-up
// costs. PRF and XOF produce many short, independent outputs: those go four at a time through
// our four-way sponge (see prf_x4, xof128_x4).

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fatal: ML-KEM: OpenSSL %s failed\n", what);
  std::abort();
}

// Explicitly fetched digests: OpenSSL 3 re-resolves implicitly fetched algorithms on every
// EVP_DigestInit, which costs more than hashing the 34 bytes SampleNTT absorbs.
const EVP_MD* fetch(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) fail(name);
  return md;  // kept for the life of the process
}

const EVP_MD* sha3_256() { static const EVP_MD* md = fetch("SHA3-256"); return md; }
const EVP_MD* sha3_512() { static const EVP_MD* md = fetch("SHA3-512"); return md; }
const EVP_MD* shake256() { static const EVP_MD* md = fetch("SHAKE256"); return md; }

// One reusable context per thread: one allocation per thread instead of one per hash.
EVP_MD_CTX* context() {
  struct Holder {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    ~Holder() { EVP_MD_CTX_free(ctx); }  // also cleanses the Keccak state
  };
  thread_local Holder holder;
  if (holder.ctx == nullptr) fail("EVP_MD_CTX_new");
  return holder.ctx;
}

void digest(const EVP_MD* md, std::span<const std::uint8_t> a, std::span<const std::uint8_t> b,
            std::span<std::uint8_t> out, bool xof) {
  EVP_MD_CTX* ctx = context();
  if (EVP_DigestInit_ex2(ctx, md, nullptr) != 1) fail("EVP_DigestInit_ex2");
  if (!a.empty() && EVP_DigestUpdate(ctx, a.data(), a.size()) != 1) fail("EVP_DigestUpdate");
  if (!b.empty() && EVP_DigestUpdate(ctx, b.data(), b.size()) != 1) fail("EVP_DigestUpdate");
  if (xof) {
    if (EVP_DigestFinalXOF(ctx, out.data(), out.size()) != 1) fail("EVP_DigestFinalXOF");
  } else {
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != out.size()) fail("EVP_DigestFinal_ex");
  }
}

// Our one-state sponge, for the rare single SampleNTT stream that outgrew its first squeeze.
void sponge(std::size_t rate, std::uint8_t pad, std::span<const std::uint8_t> a, std::span<const std::uint8_t> b,
            std::span<std::uint8_t> out) {
  keccak::KeccakSponge s(rate, pad);
  s.absorb(a);
  s.absorb(b);
  s.squeeze(out);
}

}  // namespace

void hash_g(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::span<std::uint8_t, 64> out) {
  digest(sha3_512(), a, b, out, false);
}

void hash_h(std::span<const std::uint8_t> a, std::span<std::uint8_t, 32> out) { digest(sha3_256(), a, {}, out, false); }

void hash_j(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::span<std::uint8_t, 32> out) {
  digest(shake256(), a, b, out, true);
}

void prf_x4(std::span<const std::uint8_t, 32> s, const std::array<std::uint8_t, 4>& n,
            const std::array<std::span<std::uint8_t>, 4>& out) {
  std::array<std::array<std::uint8_t, 33>, 4> inputs;
  for (std::size_t k = 0; k < 4; ++k) {
    std::copy(s.begin(), s.end(), inputs[k].begin());
    inputs[k][32] = n[k];
  }
  keccak::keccak_sponge_x4(kShake256Rate, keccak::kShakePad,
                           {ByteView(inputs[0]), ByteView(inputs[1]), ByteView(inputs[2]), ByteView(inputs[3])},
                           {out[0], out[1], out[2], out[3]});
  secure_wipe(inputs.data(), sizeof inputs);  // s is secret
}

void xof128(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) {
  sponge(kShake128Rate, keccak::kShakePad, in, {}, out);
}

void xof128_x4(const std::array<std::span<const std::uint8_t>, 4>& in, const std::array<std::span<std::uint8_t>, 4>& out) {
  keccak::keccak_sponge_x4(kShake128Rate, keccak::kShakePad, {in[0], in[1], in[2], in[3]}, {out[0], out[1], out[2], out[3]});
}

}  // namespace e2ee::crypto::mlkem768::detail

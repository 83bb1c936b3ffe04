#include "crypto/detail/mlkem/symmetric.hpp"

#include <openssl/evp.h>

#include <cstdio>
#include <cstdlib>

namespace e2ee::crypto::mlkem768::detail {
namespace {

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
const EVP_MD* shake128() { static const EVP_MD* md = fetch("SHAKE128"); return md; }
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

}  // namespace

void hash_g(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::span<std::uint8_t, 64> out) {
  digest(sha3_512(), a, b, out, false);
}

void hash_h(std::span<const std::uint8_t> a, std::span<std::uint8_t, 32> out) { digest(sha3_256(), a, {}, out, false); }

void hash_j(std::span<const std::uint8_t> a, std::span<const std::uint8_t> b, std::span<std::uint8_t, 32> out) {
  digest(shake256(), a, b, out, true);
}

void prf(std::span<const std::uint8_t, 32> s, std::uint8_t n, std::span<std::uint8_t> out) {
  const std::uint8_t suffix[1] = {n};
  digest(shake256(), s, suffix, out, true);
}

void xof128(std::span<const std::uint8_t> in, std::span<std::uint8_t> out) { digest(shake128(), in, {}, out, true); }

}  // namespace e2ee::crypto::mlkem768::detail

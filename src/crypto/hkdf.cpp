#include "crypto/hkdf.hpp"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <algorithm>
#include <initializer_list>
#include <memory>

// HKDF is written out here over HMAC-SHA256 (EVP_MAC) rather than taken from EVP_KDF "HKDF":
// - Speed: a fresh EVP_KDF context per derivation (it holds the IKM, so it cannot be shared)
//   costs ~5.3 us for a 32-byte key on the project's machines; this version, which copies an
//   HMAC context set up for SHA-256 once per process, ~2.4 us.
// - Edge cases are ours, decided below, not OpenSSL's defaults.
// - The construction is two HMAC formulas (RFC 5869 sections 2.2 and 2.3); the cryptography
//   stays in OpenSSL's HMAC, checked against the RFC's and Wycheproof's vectors and against
//   EVP_KDF "HKDF" itself in the tests.

namespace e2ee::crypto {
namespace {

constexpr std::size_t kHashLen = 32;
constexpr std::size_t kMaxOutput = 255 * kHashLen;

struct MacCtxFree {
  void operator()(EVP_MAC_CTX* ctx) const noexcept { EVP_MAC_CTX_free(ctx); }
};
using MacCtx = std::unique_ptr<EVP_MAC_CTX, MacCtxFree>;

// HMAC with the digest already selected, keyed with a public all-zero key so that the
// context is fully initialised (OpenSSL can only duplicate an initialised digest state).
// Calls duplicate it and re-key the copy; nothing secret ever lives in the template.
EVP_MAC_CTX* make_hmac_sha256_template() noexcept {
  EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) return nullptr;
  MacCtx ctx(EVP_MAC_CTX_new(mac));
  EVP_MAC_free(mac);  // the context holds its own reference
  if (!ctx) return nullptr;
  char digest[] = "SHA2-256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  const std::uint8_t public_key[kHashLen] = {};
  if (EVP_MAC_init(ctx.get(), public_key, sizeof public_key, params) != 1) return nullptr;
  if (EVP_MAC_CTX_get_mac_size(ctx.get()) != kHashLen) return nullptr;
  return ctx.release();
}

// Made once, never freed (a static destructor could run after OpenSSL's atexit cleanup).
// Duplicating only reads it, so concurrent calls may share it.
const EVP_MAC_CTX* hmac_sha256_template() noexcept {
  static const EVP_MAC_CTX* const tmpl = [] {
    EVP_MAC_CTX* t = make_hmac_sha256_template();
    ERR_clear_error();
    return t;
  }();
  return tmpl;
}

bool hmac_sha256(EVP_MAC_CTX* ctx, ByteView key, std::initializer_list<ByteView> message,
                 std::uint8_t (&out)[kHashLen]) noexcept {
  if (EVP_MAC_init(ctx, key.data(), key.size(), nullptr) != 1) return false;
  for (const ByteView part : message) {
    if (!part.empty() && EVP_MAC_update(ctx, part.data(), part.size()) != 1) return false;
  }
  std::size_t written = 0;
  return EVP_MAC_final(ctx, out, &written, kHashLen) == 1 && written == kHashLen;
}

Error hmac_failure() {
  ERR_clear_error();
  return make_error(Errc::internal, "OpenSSL HMAC-SHA256 failed");
}

}  // namespace

Result<SecretBytes> hkdf_sha256(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  // RFC 5869 allows L = 0, but no caller wants an empty key, and silently handing one out
  // would turn a length bug into an all-public "secret". OpenSSL's HKDF refuses it too.
  if (length == 0) return make_error(Errc::invalid_length, "HKDF output length must be at least 1 byte");
  if (length > kMaxOutput) return make_error(Errc::invalid_length, "HKDF-SHA256 output is limited to 8160 bytes");

  const EVP_MAC_CTX* tmpl = hmac_sha256_template();
  if (tmpl == nullptr) return hmac_failure();
  const MacCtx ctx(EVP_MAC_CTX_dup(tmpl));
  if (!ctx) return hmac_failure();

  // Extract: PRK = HMAC(salt, IKM); an absent salt is HashLen zero bytes (section 2.2).
  static constexpr std::uint8_t kZeroSalt[kHashLen] = {};
  const ByteView effective_salt = salt.empty() ? ByteView(kZeroSalt) : salt;
  struct Wiped {
    std::uint8_t prk[kHashLen] = {};
    std::uint8_t t[kHashLen] = {};
    ~Wiped() { secure_wipe(this, sizeof *this); }
  } s;
  if (!hmac_sha256(ctx.get(), effective_salt, {ikm}, s.prk)) return hmac_failure();

  // Expand: T(i) = HMAC(PRK, T(i-1) || info || i), T(0) empty (section 2.3).
  SecretBytes okm;
  okm.reserve(length);
  std::size_t t_len = 0;
  for (std::uint8_t i = 1; okm.size() < length; ++i) {
    const std::uint8_t counter[1] = {i};
    if (!hmac_sha256(ctx.get(), ByteView(s.prk), {ByteView(s.t, t_len), info, ByteView(counter)}, s.t)) {
      return hmac_failure();
    }
    t_len = kHashLen;
    const std::size_t take = std::min(kHashLen, length - okm.size());
    okm.insert(okm.end(), s.t, s.t + take);
  }
  return okm;
}

Result<SecretArray<32>> hkdf_sha256_32(ByteView ikm, ByteView salt, ByteView info) {
  auto okm = hkdf_sha256(ikm, salt, info, 32);
  if (!okm) return std::move(okm).error();
  return SecretArray<32>(std::span<const std::uint8_t, 32>(okm->data(), 32));
}

}  // namespace e2ee::crypto

#include "crypto/aead.hpp"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <climits>
#include <memory>
#include <string>

#include "crypto/detail/sodium.hpp"
#include "crypto/secure_buffer.hpp"

namespace e2ee::crypto {
namespace {

constexpr std::size_t kChaChaKeyBytes = 32;
constexpr std::size_t kChaChaNonceBytes = 12;
constexpr std::size_t kXChaChaKeyBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;
constexpr std::size_t kXChaChaNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
static_assert(kXChaChaKeyBytes == 32 && kXChaChaNonceBytes == 24);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == kAeadTagBytes);

// EVP takes int lengths; feeding at most 1 GiB per call keeps every count representable.
// A multiple of 16 so no AES-GCM update but the last sees a partial block.
constexpr std::size_t kMaxUpdate = std::size_t{1} << 30;
static_assert(kMaxUpdate <= static_cast<std::size_t>(INT_MAX) && kMaxUpdate % 16 == 0);

// Fetched once per process: handing EVP_chacha20_poly1305() to every call makes OpenSSL 3 look
// the algorithm up by name each time (~470 ns of an ~800 ns seal of 256 bytes here). Never
// freed, so no static destructor can run after OpenSSL's atexit cleanup. A failed fetch stays
// nullptr and every call reports Errc::internal.
const EVP_CIPHER* fetch_cipher(const char* name) noexcept {
  const EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, name, nullptr);
  ERR_clear_error();
  return cipher;
}

const EVP_CIPHER* chacha20_poly1305_cipher() noexcept {
  static const EVP_CIPHER* const cipher = fetch_cipher("ChaCha20-Poly1305");
  return cipher;
}

const EVP_CIPHER* aes_gcm_cipher(std::size_t key_bytes) noexcept {
  static const EVP_CIPHER* const aes128 = fetch_cipher("AES-128-GCM");
  static const EVP_CIPHER* const aes192 = fetch_cipher("AES-192-GCM");
  static const EVP_CIPHER* const aes256 = fetch_cipher("AES-256-GCM");
  switch (key_bytes) {
    case 16: return aes128;
    case 24: return aes192;
    case 32: return aes256;
    default: return nullptr;
  }
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const noexcept { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

// Leaves no stale entries on this thread's OpenSSL error queue: TLS code that later inspects
// ERR_get_error() on the same thread must not see our failures as its own.
Error openssl_failure(const char* what) {
  ERR_clear_error();
  return make_error(Errc::internal, std::string("OpenSSL ") + what + " failed");
}

Error auth_failure() {
  ERR_clear_error();
  return make_error(Errc::authentication_failed, "AEAD tag did not verify");
}

// A fresh context per call rather than a thread_local one reused across calls: a reused
// context would keep the last key schedule (and for GCM the hash key H) alive in memory until
// the thread's next call, while freeing it makes OpenSSL wipe it. The cost measured here is
// ~200 ns per call (~25% of sealing 256 bytes); the cipher fetch above was the larger saving.
Result<CipherCtx> evp_init(const EVP_CIPHER* cipher, bool encrypt, ByteView key, ByteView nonce, bool set_ivlen) {
  if (cipher == nullptr) return openssl_failure("cipher fetch");
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return openssl_failure("EVP_CIPHER_CTX_new");
  const int enc = encrypt ? 1 : 0;
  if (EVP_CipherInit_ex2(ctx.get(), cipher, nullptr, nullptr, enc, nullptr) != 1) return openssl_failure("cipher init");
  // The nonce length must be set before the nonce itself; GCM hashes nonces that are not
  // 12 bytes long into its initial counter block (SP 800-38D section 7.1).
  if (set_ivlen &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_IVLEN, static_cast<int>(nonce.size()), nullptr) != 1) {
    return openssl_failure("set nonce length");
  }
  if (static_cast<std::size_t>(EVP_CIPHER_CTX_get_key_length(ctx.get())) != key.size() ||
      static_cast<std::size_t>(EVP_CIPHER_CTX_get_iv_length(ctx.get())) != nonce.size()) {
    return openssl_failure("key/nonce length check");
  }
  if (EVP_CipherInit_ex2(ctx.get(), nullptr, key.data(), nonce.data(), enc, nullptr) != 1) {
    return openssl_failure("key setup");
  }
  return ctx;
}

bool evp_aad(EVP_CIPHER_CTX* ctx, ByteView aad) noexcept {
  for (std::size_t off = 0; off < aad.size(); off += kMaxUpdate) {
    const std::size_t n = std::min(kMaxUpdate, aad.size() - off);
    int written = 0;
    if (EVP_CipherUpdate(ctx, nullptr, &written, aad.data() + off, static_cast<int>(n)) != 1) return false;
  }
  return true;
}

// Stream-like AEADs: output length equals input length, written to `out` as we go.
bool evp_update(EVP_CIPHER_CTX* ctx, ByteView in, std::uint8_t* out) noexcept {
  for (std::size_t off = 0; off < in.size(); off += kMaxUpdate) {
    const std::size_t n = std::min(kMaxUpdate, in.size() - off);
    int written = 0;
    if (EVP_CipherUpdate(ctx, out + off, &written, in.data() + off, static_cast<int>(n)) != 1 ||
        static_cast<std::size_t>(written) != n) {
      return false;
    }
  }
  return true;
}

Result<Bytes> evp_seal(const EVP_CIPHER* cipher, bool set_ivlen, ByteView key, ByteView nonce, ByteView plaintext,
                       ByteView aad) {
  auto ctx = evp_init(cipher, true, key, nonce, set_ivlen);
  if (!ctx) return std::move(ctx).error();
  Bytes out(plaintext.size() + kAeadTagBytes);
  if (!evp_aad(ctx->get(), aad)) return openssl_failure("AAD update");
  if (!evp_update(ctx->get(), plaintext, out.data())) return openssl_failure("encrypt update");
  std::array<std::uint8_t, 16> tail{};
  int tail_len = 0;
  if (EVP_EncryptFinal_ex(ctx->get(), tail.data(), &tail_len) != 1 || tail_len != 0) {
    return openssl_failure("encrypt final");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx->get(), EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagBytes),
                          out.data() + plaintext.size()) != 1) {
    return openssl_failure("get tag");
  }
  return out;
}

Result<Bytes> evp_open(const EVP_CIPHER* cipher, bool set_ivlen, ByteView key, ByteView nonce, ByteView sealed,
                       ByteView aad) {
  if (sealed.size() < kAeadTagBytes) {
    return make_error(Errc::authentication_failed, "AEAD input shorter than its tag");
  }
  const ByteView ciphertext = sealed.first(sealed.size() - kAeadTagBytes);
  std::array<std::uint8_t, kAeadTagBytes> tag{};
  std::copy_n(sealed.end() - static_cast<std::ptrdiff_t>(kAeadTagBytes), kAeadTagBytes, tag.begin());

  auto ctx = evp_init(cipher, false, key, nonce, set_ivlen);
  if (!ctx) return std::move(ctx).error();
  if (EVP_CIPHER_CTX_ctrl(ctx->get(), EVP_CTRL_AEAD_SET_TAG, static_cast<int>(tag.size()), tag.data()) != 1) {
    return openssl_failure("set tag");
  }
  if (!evp_aad(ctx->get(), aad)) return openssl_failure("AAD update");
  // OpenSSL decrypts before it can check the tag, so the plaintext goes to a buffer that is
  // wiped and dropped unless the final tag check passes.
  Bytes out(ciphertext.size());
  if (!evp_update(ctx->get(), ciphertext, out.data())) {
    secure_wipe(out.data(), out.size());
    return openssl_failure("decrypt update");
  }
  std::array<std::uint8_t, 16> tail{};
  int tail_len = 0;
  // The tag comparison inside EVP_DecryptFinal_ex is constant time (CRYPTO_memcmp).
  if (EVP_DecryptFinal_ex(ctx->get(), tail.data(), &tail_len) != 1 || tail_len != 0) {
    secure_wipe(out.data(), out.size());
    return auth_failure();
  }
  return out;
}

// libsodium's two ChaCha20-Poly1305 constructions share one signature: the IETF one (RFC 8439,
// 96-bit nonce) and XChaCha20 (192-bit nonce, draft-irtf-cfrg-xchacha).
struct SodiumAead {
  const char* name;
  int (*encrypt)(unsigned char*, unsigned long long*, const unsigned char*, unsigned long long, const unsigned char*,
                 unsigned long long, const unsigned char*, const unsigned char*, const unsigned char*);
  int (*decrypt)(unsigned char*, unsigned long long*, unsigned char*, const unsigned char*, unsigned long long,
                 const unsigned char*, unsigned long long, const unsigned char*, const unsigned char*);
};

constexpr SodiumAead kSodiumChaCha{"ChaCha20-Poly1305", crypto_aead_chacha20poly1305_ietf_encrypt,
                                   crypto_aead_chacha20poly1305_ietf_decrypt};
constexpr SodiumAead kSodiumXChaCha{"XChaCha20-Poly1305", crypto_aead_xchacha20poly1305_ietf_encrypt,
                                    crypto_aead_xchacha20poly1305_ietf_decrypt};
static_assert(crypto_aead_chacha20poly1305_ietf_ABYTES == kAeadTagBytes);
static_assert(crypto_aead_chacha20poly1305_ietf_NPUBBYTES == kChaChaNonceBytes);
static_assert(crypto_aead_chacha20poly1305_ietf_KEYBYTES == kChaChaKeyBytes);

// RFC 8439 ChaCha20-Poly1305 messages up to this size go to libsodium: for the small messages of
// a stream (one engine line each) OpenSSL's per-call EVP setup is most of the cost (bench/
// crypto_bench, 64 bytes: seal 908 -> 426 ns, open 988 -> 404 ns; 1 KiB: about even). Larger
// bodies stay with OpenSSL, whose AVX2 code is faster in bulk (64 KiB: 35 us against sodium's
// 55 us). The published vectors exercise the small side; tests/crypto/aead_test.cpp pins the
// bulk side against libsodium's output across the threshold.
constexpr std::size_t kSodiumChaChaMax = 2 * 1024;

Result<Bytes> sodium_seal(const SodiumAead& aead, ByteView key, ByteView nonce, ByteView plaintext, ByteView aad) {
  detail::ensure_sodium();
  Bytes out(plaintext.size() + kAeadTagBytes);
  unsigned long long written = 0;
  if (aead.encrypt(out.data(), &written, plaintext.data(), plaintext.size(), aad.data(), aad.size(), nullptr,
                   nonce.data(), key.data()) != 0 ||
      written != out.size()) {
    return make_error(Errc::internal, std::string("libsodium ") + aead.name + " encryption failed");
  }
  return out;
}

Result<Bytes> sodium_open(const SodiumAead& aead, ByteView key, ByteView nonce, ByteView sealed, ByteView aad) {
  detail::ensure_sodium();
  if (sealed.size() < kAeadTagBytes) {
    return make_error(Errc::authentication_failed, "AEAD input shorter than its tag");
  }
  Bytes out(sealed.size() - kAeadTagBytes);
  unsigned long long written = 0;
  // libsodium verifies the tag (crypto_verify_16, constant time) before it decrypts anything.
  if (aead.decrypt(out.data(), &written, nullptr, sealed.data(), sealed.size(), aad.data(), aad.size(), nonce.data(),
                   key.data()) != 0 ||
      written != out.size()) {
    secure_wipe(out.data(), out.size());
    return make_error(Errc::authentication_failed, "AEAD tag did not verify");
  }
  return out;
}

Error bad_length(const char* what) { return make_error(Errc::invalid_length, what); }

// Checks key and nonce sizes for `alg`; on success also says which EVP cipher to use (none for
// XChaCha20-Poly1305, which goes to libsodium) and whether its nonce length must be set.
struct Selected {
  const EVP_CIPHER* cipher;
  bool set_ivlen;
};

Result<Selected> select_alg(Aead alg, ByteView key, ByteView nonce) {
  switch (alg) {
    case Aead::chacha20_poly1305:
      if (key.size() != kChaChaKeyBytes) return bad_length("ChaCha20-Poly1305 key must be 32 bytes");
      // OpenSSL would zero-pad a shorter nonce; RFC 8439 defines only 12-byte nonces.
      if (nonce.size() != kChaChaNonceBytes) return bad_length("ChaCha20-Poly1305 nonce must be 12 bytes");
      return Selected{chacha20_poly1305_cipher(), false};
    case Aead::aes_gcm:
      if (key.size() != 16 && key.size() != 24 && key.size() != 32) {
        return bad_length("AES-GCM key must be 16, 24 or 32 bytes");
      }
      if (nonce.empty() || nonce.size() > kAesGcmMaxNonceBytes) {
        return bad_length("AES-GCM nonce must be 1 to 128 bytes");
      }
      return Selected{aes_gcm_cipher(key.size()), true};
    case Aead::xchacha20_poly1305:
      if (key.size() != kXChaChaKeyBytes) return bad_length("XChaCha20-Poly1305 key must be 32 bytes");
      if (nonce.size() != kXChaChaNonceBytes) return bad_length("XChaCha20-Poly1305 nonce must be 24 bytes");
      return Selected{nullptr, false};
  }
  return make_error(Errc::invalid_argument, "unknown AEAD");
}

}  // namespace

Result<Bytes> aead_seal(Aead alg, ByteView key, ByteView nonce, ByteView plaintext, ByteView aad) {
  auto selected = select_alg(alg, key, nonce);
  if (!selected) return std::move(selected).error();
  if (alg == Aead::xchacha20_poly1305) return sodium_seal(kSodiumXChaCha, key, nonce, plaintext, aad);
  if (alg == Aead::chacha20_poly1305 && plaintext.size() <= kSodiumChaChaMax) {
    return sodium_seal(kSodiumChaCha, key, nonce, plaintext, aad);
  }
  return evp_seal(selected->cipher, selected->set_ivlen, key, nonce, plaintext, aad);
}

Result<Bytes> aead_open(Aead alg, ByteView key, ByteView nonce, ByteView ciphertext_and_tag, ByteView aad) {
  auto selected = select_alg(alg, key, nonce);
  if (!selected) return std::move(selected).error();
  if (alg == Aead::xchacha20_poly1305) return sodium_open(kSodiumXChaCha, key, nonce, ciphertext_and_tag, aad);
  if (alg == Aead::chacha20_poly1305 && ciphertext_and_tag.size() <= kSodiumChaChaMax + kAeadTagBytes) {
    return sodium_open(kSodiumChaCha, key, nonce, ciphertext_and_tag, aad);
  }
  return evp_open(selected->cipher, selected->set_ivlen, key, nonce, ciphertext_and_tag, aad);
}

}  // namespace e2ee::crypto

// secp256k1 keys and ECDH on OpenSSL 3.0's EC_GROUP/EC_POINT/BN layer (not deprecated, unlike
// EC_KEY). For a single scalar multiplication with a secret scalar OpenSSL uses its
// constant-time Montgomery ladder (ec_scalar_mul_ladder), both for d*G and for d*P, which is why
// every multiplication here passes exactly one scalar.

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <memory>

#include "crypto/detail/constant_time.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/hash.hpp"
#include "crypto/random.hpp"

namespace e2ee::crypto::secp256k1 {
namespace {

struct BnCtxFree {
  void operator()(BN_CTX* c) const noexcept { BN_CTX_free(c); }
};
struct BnClearFree {
  void operator()(BIGNUM* b) const noexcept { BN_clear_free(b); }
};
struct PointClearFree {
  void operator()(EC_POINT* p) const noexcept { EC_POINT_clear_free(p); }
};
using BnCtxPtr = std::unique_ptr<BN_CTX, BnCtxFree>;
using BnPtr = std::unique_ptr<BIGNUM, BnClearFree>;
using PointPtr = std::unique_ptr<EC_POINT, PointClearFree>;

// Built once and only read afterwards; OpenSSL takes the group as const everywhere we use it.
const EC_GROUP* group() noexcept {
  static const EC_GROUP* const g = EC_GROUP_new_by_curve_name(NID_secp256k1);
  return g;
}

// The group order n, big-endian (SEC 2 section 2.4.1).
constexpr std::array<std::uint8_t, 32> kOrder = {
    0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFE,
    0xBA, 0xAE, 0xDC, 0xE6, 0xAF, 0x48, 0xA0, 0x3B, 0xBF, 0xD2, 0x5E, 0x8C, 0xD0, 0x36, 0x41, 0x41};

// Failing library calls leave entries on OpenSSL's thread-local error queue; drop them so they
// cannot be mistaken for the cause of some later, unrelated failure (a TLS handshake, say).
Error fail(Errc code, const char* message) {
  ERR_clear_error();
  return make_error(code, message);
}

// 0xFF when 1 <= d < n, else 0x00, without branching on the secret bytes: d - n is computed
// byte by byte, and its final borrow says d < n.
std::uint8_t scalar_in_range_mask(const std::uint8_t* d) noexcept {
  std::uint32_t borrow = 0;
  std::uint8_t any = 0;
  for (std::size_t i = 32; i-- > 0;) {
    const std::uint32_t diff = std::uint32_t{d[i]} - kOrder[i] - borrow;
    borrow = (diff >> 31) & 1u;
    any = static_cast<std::uint8_t>(any | d[i]);
  }
  const auto below_n = static_cast<std::uint8_t>(0u - detail::value_barrier(borrow));
  const auto nonzero = static_cast<std::uint8_t>(~detail::ct_is_zero_mask8(any));
  return static_cast<std::uint8_t>(below_n & nonzero);
}

BnPtr secret_bignum(const std::uint8_t* bytes, std::size_t n) noexcept {
  BnPtr bn(BN_secure_new());
  if (!bn) return bn;
  BN_set_flags(bn.get(), BN_FLG_CONSTTIME);
  if (BN_bin2bn(bytes, static_cast<int>(n), bn.get()) == nullptr) bn.reset();
  return bn;
}

}  // namespace

Result<PublicKey> PublicKey::parse(ByteView encoded) {
  const EC_GROUP* g = group();
  if (g == nullptr) return fail(Errc::internal, "secp256k1: group unavailable");

  // OpenSSL's oct2point also accepts the "hybrid" forms 0x06/0x07 and the 1-byte infinity
  // encoding, so the prefix and length are checked here first: only 04, 02 and 03 pass.
  std::array<std::uint8_t, kUncompressedBytes> buf{};
  std::size_t len = 0;
  switch (encoded.size()) {
    case kUncompressedBytes:
      if (encoded[0] != 0x04) return fail(Errc::invalid_key, "secp256k1: uncompressed point must start with 0x04");
      std::copy(encoded.begin(), encoded.end(), buf.begin());
      len = kUncompressedBytes;
      break;
    case kRawBytes:
      buf[0] = 0x04;
      std::copy(encoded.begin(), encoded.end(), buf.begin() + 1);
      len = kUncompressedBytes;
      break;
    case kCompressedBytes:
      if (encoded[0] != 0x02 && encoded[0] != 0x03)
        return fail(Errc::invalid_key, "secp256k1: compressed point must start with 0x02 or 0x03");
      std::copy(encoded.begin(), encoded.end(), buf.begin());
      len = kCompressedBytes;
      break;
    default:
      return fail(Errc::invalid_length, "secp256k1: public key must be 33, 64 or 65 bytes");
  }

  BnCtxPtr ctx(BN_CTX_new());
  PointPtr point(EC_POINT_new(g));
  if (!ctx || !point) return fail(Errc::internal, "secp256k1: out of memory");
  // oct2point rejects coordinates >= p, points off the curve and x without a square root.
  if (EC_POINT_oct2point(g, point.get(), buf.data(), len, ctx.get()) != 1)
    return fail(Errc::invalid_key, "secp256k1: not a point on the curve");
  // Defence in depth: neither check is expected to fire after a successful oct2point, but the
  // whole protocol's security rests on them (cofactor 1, so on-curve and finite is enough).
  if (EC_POINT_is_at_infinity(g, point.get()) != 0) return fail(Errc::invalid_key, "secp256k1: point at infinity");
  if (EC_POINT_is_on_curve(g, point.get(), ctx.get()) != 1)
    return fail(Errc::invalid_key, "secp256k1: not a point on the curve");

  std::array<std::uint8_t, kUncompressedBytes> canonical{};
  if (EC_POINT_point2oct(g, point.get(), POINT_CONVERSION_UNCOMPRESSED, canonical.data(), canonical.size(),
                         ctx.get()) != canonical.size())
    return fail(Errc::internal, "secp256k1: cannot encode point");
  return PublicKey(canonical);
}

std::array<std::uint8_t, kCompressedBytes> PublicKey::compressed() const noexcept {
  std::array<std::uint8_t, kCompressedBytes> out{};
  out[0] = static_cast<std::uint8_t>(0x02 | (point_[64] & 1));
  std::copy(point_.begin() + 1, point_.begin() + 33, out.begin() + 1);
  return out;
}

std::array<std::uint8_t, 20> PublicKey::ethereum_address() const {
  const Digest32 h = keccak256(raw());
  std::array<std::uint8_t, 20> out{};
  std::copy(h.begin() + 12, h.end(), out.begin());
  return out;
}

PrivateKey PrivateKey::generate() {
  // A uniform 256-bit string is >= n with probability about 2^-128; retrying keeps the result
  // uniform in [1, n-1].
  for (;;) {
    const auto candidate = random_secret<kPrivateKeyBytes>();
    auto key = from_bytes(candidate.span());
    if (key) return std::move(key).value();
    if (key.error().code != Errc::invalid_key) std::abort();  // OpenSSL itself is broken
  }
}

Result<PrivateKey> PrivateKey::from_bytes(ByteView scalar) {
  if (scalar.size() != kPrivateKeyBytes) return fail(Errc::invalid_length, "secp256k1: private key must be 32 bytes");
  std::uint8_t ok = scalar_in_range_mask(scalar.data());
  // Whether a key is valid is not secret: only the scalar's value is.
  E2EE_CT_DECLASSIFY(&ok, 1);
  if (ok == 0) return fail(Errc::invalid_key, "secp256k1: private key out of range [1, n-1]");

  const EC_GROUP* g = group();
  if (g == nullptr) return fail(Errc::internal, "secp256k1: group unavailable");
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnPtr d = secret_bignum(scalar.data(), scalar.size());
  PointPtr pub(EC_POINT_new(g));
  if (!ctx || !d || !pub) return fail(Errc::internal, "secp256k1: out of memory");
  if (EC_POINT_mul(g, pub.get(), d.get(), nullptr, nullptr, ctx.get()) != 1)
    return fail(Errc::internal, "secp256k1: scalar multiplication failed");

  std::array<std::uint8_t, kUncompressedBytes> encoded{};
  if (EC_POINT_point2oct(g, pub.get(), POINT_CONVERSION_UNCOMPRESSED, encoded.data(), encoded.size(),
                         ctx.get()) != encoded.size())
    return fail(Errc::internal, "secp256k1: cannot encode point");
  // Going through parse() (rather than befriending PublicKey) also re-checks our own result.
  auto pub_key = PublicKey::parse(encoded);
  if (!pub_key) return fail(Errc::internal, "secp256k1: derived public key failed validation");
  return PrivateKey(SecretArray<kPrivateKeyBytes>(scalar.first<kPrivateKeyBytes>()), std::move(pub_key).value());
}

Result<SecretArray<32>> ecdh(const PrivateKey& own, const PublicKey& peer) {
  const EC_GROUP* g = group();
  if (g == nullptr) return fail(Errc::internal, "secp256k1: group unavailable");
  BnCtxPtr ctx(BN_CTX_secure_new());
  BnPtr d = secret_bignum(own.bytes().data(), own.bytes().size());
  PointPtr p(EC_POINT_new(g));
  PointPtr shared(EC_POINT_new(g));
  BnPtr x(BN_secure_new());
  if (!ctx || !d || !p || !shared || !x) return fail(Errc::internal, "secp256k1: out of memory");

  // PublicKey holds only validated points, but it is cheap to let OpenSSL re-check the point
  // it is about to multiply.
  const auto& encoded = peer.uncompressed();
  if (EC_POINT_oct2point(g, p.get(), encoded.data(), encoded.size(), ctx.get()) != 1)
    return fail(Errc::invalid_key, "secp256k1: not a point on the curve");
  if (EC_POINT_mul(g, shared.get(), nullptr, p.get(), d.get(), ctx.get()) != 1)
    return fail(Errc::internal, "secp256k1: scalar multiplication failed");
  // Unreachable with a prime-order group, 1 <= d < n and a finite peer point; kept because a
  // shared secret of "infinity" must never turn into a key.
  if (EC_POINT_is_at_infinity(g, shared.get()) != 0) return fail(Errc::invalid_key, "secp256k1: shared point at infinity");
  if (EC_POINT_get_affine_coordinates(g, shared.get(), x.get(), nullptr, ctx.get()) != 1)
    return fail(Errc::internal, "secp256k1: cannot read shared point");

  SecretArray<32> out;
  if (BN_bn2binpad(x.get(), out.data(), static_cast<int>(out.size())) != static_cast<int>(out.size()))
    return fail(Errc::internal, "secp256k1: shared secret does not fit 32 bytes");
  return out;
}

}  // namespace e2ee::crypto::secp256k1

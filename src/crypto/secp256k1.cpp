// secp256k1 keys and ECDH on libsecp256k1 (Bitcoin Core's library; Debian 12 ships 0.2.0 as
// libsecp256k1-dev, built with its ECDH module). It replaced OpenSSL 3.0's generic EC_POINT
// layer, which has no secp256k1-specific code and cost ~0.45 ms per ECDH; Venice, NEAR AI and
// dstack ECDSA do one ECDH per streamed chunk on each side (docs/performance.md).
//
// Constant time: every multiplication by a secret scalar is constant time in libsecp256k1.
// ECDH uses secp256k1_ecmult_const (fixed-window signed-digit ladder: no branch and no memory
// address depends on the scalar), key generation uses secp256k1_ecmult_gen (constant-time
// table lookups), additionally blinded with the context's random seed (below). Scalar range
// checks (secp256k1_ec_seckey_verify) are constant time too; only their verdict is public.
// Upstream fixed two compiler-induced leaks after 0.2.0 (0.3.1: Clang >= 14; 0.3.2: the ECDH
// module under GCC >= 13); neither applies to Debian 12's binary, built with GCC 12. Checked
// once on that binary under valgrind memcheck with the scalar marked undefined (the ctgrind
// technique of tests/ct): seckey_verify, pubkey_create and ecdh report no secret-dependent
// branch or memory address.

#include <secp256k1.h>
#include <secp256k1_ecdh.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>

#include "crypto/detail/constant_time.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/hash.hpp"
#include "crypto/random.hpp"

// libsecp256k1 calls this through a C function pointer, so it gets C language linkage. It
// makes the ECDH output the raw X coordinate (what Venice, NEAR AI and dstack use), instead of
// the library's default SHA-256(compressed point). libsecp256k1 wipes x32/y32 after the call.
extern "C" {
static int e2ee_secp256k1_copy_x(unsigned char* output, const unsigned char* x32, const unsigned char* /*y32*/,
                                 void* /*data*/) {
  std::memcpy(output, x32, 32);
  return 1;
}
}

namespace e2ee::crypto::secp256k1 {
namespace {

// One context for the whole process, created and randomized exactly once (a function-local
// static: C++ guarantees its initialisation runs once even when threads race to it) and never
// written again. libsecp256k1 documents a constructed context as safe to use from many threads
// at once for every call that takes it as `const secp256k1_context*`; only the calls taking a
// non-const pointer (randomize, destroy) need exclusive access. Randomizing once at creation,
// before any other thread can see the pointer, is the library's recommended lock-free pattern
// (secp256k1.h, "either do it once at creation time ... or use a read-write lock"). It is
// never destroyed, so no thread still running at exit can use a freed context.
//
// The random seed blinds the generator multiplication of key generation. The ECDH module's
// multiplication does not use it (secp256k1_context_randomize's documentation says so); it
// relies on ecmult_const being constant time.
const secp256k1_context* context() noexcept {
  static const secp256k1_context* const ctx = [] {
    secp256k1_context* c = secp256k1_context_create(SECP256K1_CONTEXT_NONE);
    // Out of memory aborts inside the library (its default error callback); checked anyway.
    if (c == nullptr) std::abort();
    const auto seed = random_secret<32>();  // wiped when it goes out of scope
    if (secp256k1_context_randomize(c, seed.data()) != 1) std::abort();
    return c;
  }();
  return ctx;
}

Error fail(Errc code, const char* message) { return make_error(code, message); }

// The canonical 65-byte encoding of a parsed point (0x04 || X || Y).
std::array<std::uint8_t, kUncompressedBytes> serialize(const secp256k1_context* ctx, const secp256k1_pubkey& point) {
  std::array<std::uint8_t, kUncompressedBytes> out{};
  std::size_t len = out.size();
  // Returns 1 always, and writes 65 bytes for SECP256K1_EC_UNCOMPRESSED.
  (void)secp256k1_ec_pubkey_serialize(ctx, out.data(), &len, &point, SECP256K1_EC_UNCOMPRESSED);
  if (len != out.size() || out[0] != 0x04) std::abort();  // libsecp256k1 itself is broken
  return out;
}

}  // namespace

Result<PublicKey> PublicKey::parse(ByteView encoded) {
  // secp256k1_ec_pubkey_parse also accepts the X9.62 "hybrid" forms 0x06/0x07 (y parity in the
  // prefix), so the prefix and length are checked here first: only 04, 02 and 03 pass.
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

  // The parser rejects coordinates >= p, points off the curve (y^2 != x^3 + 7) and x without a
  // square root. It cannot produce the point at infinity (no encoding of it is accepted), and
  // with cofactor 1 every finite point on the curve is in the prime-order group.
  const secp256k1_context* ctx = context();
  secp256k1_pubkey point;
  if (secp256k1_ec_pubkey_parse(ctx, &point, buf.data(), len) != 1)
    return fail(Errc::invalid_key, "secp256k1: not a point on the curve");
  return PublicKey(serialize(ctx, point));
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
    const auto candidate = random_secret<kPrivateKeyBytes>();  // wiped at the end of each pass
    auto key = from_bytes(candidate.span());
    if (key) return std::move(key).value();
    if (key.error().code != Errc::invalid_key) std::abort();  // libsecp256k1 itself is broken
  }
}

Result<PrivateKey> PrivateKey::from_bytes(ByteView scalar) {
  if (scalar.size() != kPrivateKeyBytes) return fail(Errc::invalid_length, "secp256k1: private key must be 32 bytes");
  const secp256k1_context* ctx = context();
  // 1 when 1 <= d < n, computed without branching on the scalar. Whether a key is valid is not
  // secret: only the scalar's value is.
  int ok = secp256k1_ec_seckey_verify(ctx, scalar.data());
  E2EE_CT_DECLASSIFY(&ok, sizeof ok);
  if (ok != 1) return fail(Errc::invalid_key, "secp256k1: private key out of range [1, n-1]");

  secp256k1_pubkey pub;  // d*G: public, nothing to wipe
  if (secp256k1_ec_pubkey_create(ctx, &pub, scalar.data()) != 1)
    return fail(Errc::internal, "secp256k1: scalar multiplication failed");
  // Going through parse() (rather than befriending PublicKey) also re-checks our own result.
  auto pub_key = PublicKey::parse(serialize(ctx, pub));
  if (!pub_key) return fail(Errc::internal, "secp256k1: derived public key failed validation");
  return PrivateKey(SecretArray<kPrivateKeyBytes>(scalar.first<kPrivateKeyBytes>()), std::move(pub_key).value());
}

Result<SecretArray<32>> ecdh(const PrivateKey& own, const PublicKey& peer) {
  const secp256k1_context* ctx = context();
  // PublicKey holds only validated points, but converting it to the library's form re-checks
  // that it is on the curve, and costs well under a microsecond.
  secp256k1_pubkey point;
  const auto& encoded = peer.uncompressed();
  if (secp256k1_ec_pubkey_parse(ctx, &point, encoded.data(), encoded.size()) != 1)
    return fail(Errc::invalid_key, "secp256k1: not a point on the curve");

  // The hash callback writes x straight into the wiping container; on failure its destructor
  // wipes whatever was written. secp256k1_ecdh fails only for a scalar that is 0 or >= n
  // (excluded by PrivateKey) or a failing callback (ours never fails). With 1 <= d < n and a
  // finite point of the prime-order group, d*P is never the point at infinity.
  SecretArray<32> out;
  if (secp256k1_ecdh(ctx, out.data(), &point, own.bytes().data(), e2ee_secp256k1_copy_x, nullptr) != 1)
    return fail(Errc::internal, "secp256k1: scalar multiplication failed");
  return out;
}

}  // namespace e2ee::crypto::secp256k1

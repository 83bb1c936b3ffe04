// The known-answer vectors of ../shared/specs/near-phala-protocol.md section 12 (computed there
// with Python `cryptography` 48; the ECDSA v1 vector also decrypted by npm venice-e2ee), rebuilt
// byte for byte from our primitives: key derivation, ECDH, HKDF-SHA256 and AES-256-GCM, in the
// order the protocol applies them (section 4: HKDF with salt None = empty, L = 32, info
// "ecdsa_encryption" / "ed25519_encryption"; 12-byte IV; ct || 16-byte tag).

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "common/encoding.hpp"
#include "crypto/aead.hpp"
#include "crypto/ecdh.hpp"
#include "crypto/hkdf.hpp"

namespace e2ee::crypto {
namespace {

Bytes unhex(std::string_view h) {
  auto b = hex_decode(h);
  EXPECT_TRUE(b.has_value()) << "bad hex in test: " << h;
  return b.value_or(Bytes{});
}

std::string hex(ByteView b) { return hex_encode(b); }

const Bytes kIv = unhex("000102030405060708090a0b");
constexpr std::string_view kPlaintext = "hello";

// ---- ECDSA family (secp256k1), section 12 first block ----

constexpr std::string_view kServerPubRaw =
    "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
    "385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1";
constexpr std::string_view kEphPub65 =
    "04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
    "6728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a";
constexpr std::string_view kEcdhShared = "77e0510d5042e2f5e9e59c977b81eeed590cf7d20c1c51da451a8eaa9fdc45ff";
constexpr std::string_view kEcdhAesKey = "41d8f5155ed5844867b9244accfb74b0dd6baa897e300a70e94a823032f9131f";
constexpr std::string_view kEcdhV1CtTag = "a84e92c951" "a98a94fe8f00168f40909b61642df01c";
constexpr std::string_view kEcdhV2Aad = "v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000";
constexpr std::string_view kEcdhV2CtTag = "a84e92c951" "0ce7a9d341d3ad37aaf6918123dac554";

TEST(NearPhalaSpecKat, EcdsaKeysAndSharedSecret) {
  auto server = secp256k1::PrivateKey::from_bytes(Bytes(32, 0x11));
  auto eph = secp256k1::PrivateKey::from_bytes(Bytes(32, 0x22));
  ASSERT_TRUE(server && eph);
  // signing_public_key is published as 128 hex, X || Y without the 04 prefix (section 2).
  EXPECT_EQ(hex(server->public_key().raw()), kServerPubRaw);
  EXPECT_EQ(hex(eph->public_key().uncompressed()), kEphPub65);

  auto server_pub = secp256k1::PublicKey::parse(unhex(kServerPubRaw));
  auto eph_pub = secp256k1::PublicKey::parse(unhex(kEphPub65));
  ASSERT_TRUE(server_pub && eph_pub);
  auto client_side = secp256k1::ecdh(*eph, *server_pub);
  auto server_side = secp256k1::ecdh(*server, *eph_pub);
  ASSERT_TRUE(client_side && server_side);
  EXPECT_EQ(hex(client_side->span()), kEcdhShared);
  EXPECT_EQ(hex(server_side->span()), kEcdhShared);
}

TEST(NearPhalaSpecKat, EcdsaAesKey) {
  const Bytes shared = unhex(kEcdhShared);
  auto key = hkdf_sha256_32(shared, {}, as_bytes("ecdsa_encryption"));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(hex(key->span()), kEcdhAesKey);
  // Section 4.1: salt None = empty salt = 32 zero bytes (RFC 5869 section 2.2).
  auto zero_salt = hkdf_sha256_32(shared, Bytes(32, 0), as_bytes("ecdsa_encryption"));
  ASSERT_TRUE(zero_salt);
  EXPECT_EQ(hex(zero_salt->span()), kEcdhAesKey);
  // NEAR's pre-b07d8cf empty info gives a different key (section 10.2): the info string matters.
  auto no_info = hkdf_sha256_32(shared, {}, {});
  ASSERT_TRUE(no_info);
  EXPECT_NE(hex(no_info->span()), kEcdhAesKey);
}

TEST(NearPhalaSpecKat, EcdsaV1AndV2Ciphertexts) {
  const Bytes key = unhex(kEcdhAesKey);
  auto v1 = aead_seal(Aead::aes_gcm, key, kIv, as_bytes(kPlaintext));
  ASSERT_TRUE(v1) << v1.error().message;
  EXPECT_EQ(hex(*v1), kEcdhV1CtTag);

  auto v2 = aead_seal(Aead::aes_gcm, key, kIv, as_bytes(kPlaintext), as_bytes(kEcdhV2Aad));
  ASSERT_TRUE(v2) << v2.error().message;
  EXPECT_EQ(hex(*v2), kEcdhV2CtTag);

  // v1 and v2 are not interchangeable: the tag binds the AAD (or its absence).
  EXPECT_FALSE(aead_open(Aead::aes_gcm, key, kIv, unhex(kEcdhV1CtTag), as_bytes(kEcdhV2Aad)));
  EXPECT_FALSE(aead_open(Aead::aes_gcm, key, kIv, unhex(kEcdhV2CtTag)));
  auto opened = aead_open(Aead::aes_gcm, key, kIv, unhex(kEcdhV2CtTag), as_bytes(kEcdhV2Aad));
  ASSERT_TRUE(opened);
  EXPECT_EQ(to_string(*opened), kPlaintext);
}

TEST(NearPhalaSpecKat, EcdsaWireEnvelopeDecryptsEndToEnd) {
  // Wire = pub65 || IV || ct || tag (section 1 / 4.1), read the way the gateway reads it.
  Bytes wire = unhex(kEphPub65);
  append(wire, kIv);
  append(wire, unhex(kEcdhV1CtTag));
  ASSERT_EQ(wire.size(), 65u + 12u + 5u + 16u);

  auto server = secp256k1::PrivateKey::from_bytes(Bytes(32, 0x11));
  auto eph_pub = secp256k1::PublicKey::parse(ByteView(wire).first(65));
  ASSERT_TRUE(server && eph_pub);
  auto shared = secp256k1::ecdh(*server, *eph_pub);
  ASSERT_TRUE(shared);
  auto key = hkdf_sha256_32(shared->span(), {}, as_bytes("ecdsa_encryption"));
  ASSERT_TRUE(key);
  auto plain = aead_open(Aead::aes_gcm, key->span(), ByteView(wire).subspan(65, 12), ByteView(wire).subspan(77));
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(to_string(*plain), kPlaintext);
}

// ---- Phala Ed25519 family, section 12 second block ----

constexpr std::string_view kEdPub = "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce";
constexpr std::string_view kEdAsX25519 = "4eb4fafee2bd3018a24e310de8106333c2b364eaed029a7f05d7b45ccc77683a";
constexpr std::string_view kEphX25519Pub = "ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b";
constexpr std::string_view kX25519Shared = "3810545e0f05bf55b4a953d425943d457be5329f5b7180cc347455fea9ba5866";
constexpr std::string_view kEdAesKey = "870d5708a18dbc08ee2d606d1fc353f767b92514c8038cb9d5abaa29d998efa2";
constexpr std::string_view kEdCtTag = "4df58905c8" "3c1877d1b32a643528ed3931a2a06fc7";

std::array<std::uint8_t, 32> filled(std::uint8_t b) {
  std::array<std::uint8_t, 32> a{};
  a.fill(b);
  return a;
}

TEST(NearPhalaSpecKat, Ed25519KeyConversion) {
  const auto seed = filled(0x33);
  const auto ed = ed25519::from_seed(seed);
  EXPECT_EQ(hex(ed.public_key), kEdPub);

  // Client side: the published Ed25519 key mapped to Montgomery form.
  auto x_pub = ed25519::public_to_x25519(unhex(kEdPub));
  ASSERT_TRUE(x_pub) << x_pub.error().message;
  EXPECT_EQ(hex(*x_pub), kEdAsX25519);
  // Server side: clamp(SHA-512(seed)[:32]) has that same public key (asserted in the spec too).
  const auto x_priv = ed25519::seed_to_x25519_private(seed);
  EXPECT_EQ(hex(x25519::public_from_private(x_priv.span())), kEdAsX25519);
}

TEST(NearPhalaSpecKat, Ed25519SharedKeyAndCiphertext) {
  const auto eph_priv = filled(0x44);
  EXPECT_EQ(hex(x25519::public_from_private(eph_priv)), kEphX25519Pub);

  auto client_side = x25519::ecdh(eph_priv, unhex(kEdAsX25519));
  const auto server_priv = ed25519::seed_to_x25519_private(filled(0x33));
  auto server_side = x25519::ecdh(server_priv.span(), unhex(kEphX25519Pub));
  ASSERT_TRUE(client_side && server_side);
  EXPECT_EQ(hex(client_side->span()), kX25519Shared);
  EXPECT_EQ(hex(server_side->span()), kX25519Shared);

  auto key = hkdf_sha256_32(client_side->span(), {}, as_bytes("ed25519_encryption"));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(hex(key->span()), kEdAesKey);

  auto sealed = aead_seal(Aead::aes_gcm, key->span(), kIv, as_bytes(kPlaintext));
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(hex(*sealed), kEdCtTag);

  // Wire = eph_x25519_pub(32) || IV || ct || tag, opened as the gateway would.
  Bytes wire = unhex(kEphX25519Pub);
  append(wire, kIv);
  append(wire, *sealed);
  auto shared = x25519::ecdh(server_priv.span(), ByteView(wire).first(32));
  ASSERT_TRUE(shared);
  auto k2 = hkdf_sha256_32(shared->span(), {}, as_bytes("ed25519_encryption"));
  ASSERT_TRUE(k2);
  auto plain = aead_open(Aead::aes_gcm, k2->span(), ByteView(wire).subspan(32, 12), ByteView(wire).subspan(44));
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(to_string(*plain), kPlaintext);
}

}  // namespace
}  // namespace e2ee::crypto

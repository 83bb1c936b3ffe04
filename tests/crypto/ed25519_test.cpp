// Ed25519 signatures (RFC 8032) and the Ed25519 -> X25519 key conversion.

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <algorithm>
#include <string>

#include "common/encoding.hpp"
#include "crypto/ecdh.hpp"
#include "support/vectors.hpp"

namespace e2ee::crypto::ed25519 {
namespace {

Bytes unhex(std::string_view h) {
  auto b = hex_decode(h);
  EXPECT_TRUE(b.has_value()) << "bad hex in test: " << h;
  return b.value_or(Bytes{});
}

std::array<std::uint8_t, 32> key32(std::string_view h) {
  const Bytes b = unhex(h);
  std::array<std::uint8_t, 32> out{};
  EXPECT_EQ(b.size(), 32u) << h;
  std::copy_n(b.begin(), std::min<std::size_t>(b.size(), 32), out.begin());
  return out;
}

std::string hex(ByteView b) { return hex_encode(b); }

// The body of a PEM block, base64-decoded (test helper; PEM is only in the vector file).
Bytes pem_body(std::string_view pem) {
  const std::string_view begin = "-----BEGIN PUBLIC KEY-----\n", end = "-----END PUBLIC KEY-----\n";
  EXPECT_TRUE(pem.starts_with(begin) && pem.ends_with(end)) << pem;
  if (!pem.starts_with(begin) || !pem.ends_with(end)) return {};
  std::string b64;
  for (char c : pem.substr(begin.size(), pem.size() - begin.size() - end.size()))
    if (c != '\n') b64 += c;
  auto der = base64_decode(b64);
  EXPECT_TRUE(der.has_value());
  return der.value_or(Bytes{});
}

TEST(Ed25519Wycheproof, Verify) {
  E2EE_REQUIRE_VECTORS("wycheproof/ed25519_test.json");
  std::size_t valid = 0, invalid = 0;
  const std::size_t n = test::for_each_wycheproof_case(
      "wycheproof/ed25519_test.json", "eddsa_verify_schema_v1.json",
      [&](test::Fields& group, const test::WycheproofCase& tc) {
        EXPECT_EQ(group.str("type"), "EddsaVerify");
        // The key is given four ways; they must all agree with the raw one we verify against.
        const auto& jkey = group.raw("publicKey").as_object();
        test::Fields key(jkey, "publicKey");
        EXPECT_EQ(key.str("type"), "EDDSAPublicKey");
        EXPECT_EQ(key.str("curve"), "edwards25519");
        EXPECT_EQ(key.integer("keySize"), 255);
        const Bytes pk = key.hex("pk");
        EXPECT_TRUE(key.unread().empty()) << "unread publicKey member";
        ASSERT_EQ(pk.size(), 32u);

        // RFC 8410 SubjectPublicKeyInfo: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING }.
        Bytes der = unhex("302a300506032b6570032100");
        append(der, pk);
        EXPECT_EQ(hex(group.hex("publicKeyDer")), hex(der));
        EXPECT_EQ(hex(pem_body(group.str("publicKeyPem"))), hex(der));

        test::Fields jwk(group.raw("publicKeyJwk").as_object(), "publicKeyJwk");
        EXPECT_EQ(jwk.str("kty"), "OKP");
        EXPECT_EQ(jwk.str("crv"), "Ed25519");
        jwk.ignore("kid");  // a label, "none"
        EXPECT_EQ(jwk.str("x"), base64url_encode(pk));
        EXPECT_TRUE(jwk.unread().empty()) << "unread publicKeyJwk member";

        const Bytes msg = tc.fields.hex("msg");
        const Bytes sig = tc.fields.hex("sig");
        const bool ok = verify(pk, msg, sig);
        switch (tc.result) {
          case test::Expected::valid:
            ++valid;
            EXPECT_TRUE(ok) << "valid signature rejected";
            // The same signature must not verify for a changed message.
            if (ok) {
              Bytes other = msg;
              other.push_back(0);
              EXPECT_FALSE(verify(pk, other, sig));
            }
            break;
          case test::Expected::invalid:
            ++invalid;
            EXPECT_FALSE(ok) << "invalid signature accepted";
            break;
          case test::Expected::acceptable:
            break;  // either verdict; there are none in this file
        }
      });
  EXPECT_EQ(n, 151u);
  EXPECT_EQ(valid, 88u);
  EXPECT_EQ(invalid, 63u);
}

// RFC 8032 section 7.1, TEST 1 and TEST 2.
constexpr std::string_view kSeed1 = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view kPub1 = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
constexpr std::string_view kSig1 =
    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b";
constexpr std::string_view kSeed2 = "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb";
constexpr std::string_view kPub2 = "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c";
constexpr std::string_view kSig2 =
    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00";

TEST(Ed25519, Rfc8032Test1And2Sign) {
  const auto kp1 = from_seed(key32(kSeed1));
  EXPECT_EQ(hex(kp1.public_key), kPub1);
  EXPECT_EQ(hex(kp1.seed.span()), kSeed1);
  EXPECT_EQ(hex(sign(kp1, {})), kSig1);
  EXPECT_TRUE(verify(kp1.public_key, {}, unhex(kSig1)));

  const auto kp2 = from_seed(key32(kSeed2));
  EXPECT_EQ(hex(kp2.public_key), kPub2);
  EXPECT_EQ(hex(sign(kp2, unhex("72"))), kSig2);
  EXPECT_TRUE(verify(kp2.public_key, unhex("72"), unhex(kSig2)));
}

TEST(Ed25519, VerifyRejectsTamperingAndBadLengths) {
  const Bytes pk = unhex(kPub2), msg = unhex("72"), sig = unhex(kSig2);
  ASSERT_TRUE(verify(pk, msg, sig));
  EXPECT_FALSE(verify(pk, unhex("73"), sig));
  for (std::size_t i : {std::size_t{0}, std::size_t{31}, std::size_t{32}, std::size_t{63}}) {
    Bytes bad = sig;
    bad[i] ^= 0x01;
    EXPECT_FALSE(verify(pk, msg, bad)) << i;
  }
  EXPECT_FALSE(verify(unhex(kPub1), msg, sig));
  EXPECT_FALSE(verify(pk, msg, ByteView(sig).first(63)));
  Bytes longer = sig;
  longer.push_back(0);
  EXPECT_FALSE(verify(pk, msg, longer));
  EXPECT_FALSE(verify(ByteView(pk).first(31), msg, sig));
  EXPECT_FALSE(verify({}, msg, sig));
}

TEST(Ed25519, SignUsesTheSeedsOwnPublicKey) {
  // A KeyPair whose public_key was swapped must still sign for its seed's key: signing with a
  // foreign public key in the hash would leak the private scalar across two signatures.
  auto kp = from_seed(key32(kSeed2));
  kp.public_key = key32(kPub1);
  EXPECT_EQ(hex(sign(kp, unhex("72"))), kSig2);
}

TEST(Ed25519, GenerateRoundTrip) {
  const auto a = generate();
  const auto b = generate();
  EXPECT_NE(hex(a.seed.span()), hex(b.seed.span()));
  EXPECT_EQ(hex(from_seed(a.seed.span()).public_key), hex(a.public_key));
  const Bytes msg = to_bytes("attested report");
  const auto sig = sign(a, msg);
  EXPECT_TRUE(verify(a.public_key, msg, sig));
  EXPECT_FALSE(verify(b.public_key, msg, sig));
}

// ---- Ed25519 -> X25519 ----

Bytes sha512(ByteView in) {
  Bytes out(64);
  unsigned int len = 0;
  EXPECT_EQ(EVP_Digest(in.data(), in.size(), out.data(), &len, EVP_sha512(), nullptr), 1);
  return out;
}

TEST(Ed25519ToX25519, SeedConversionIsClampedSha512) {
  // Computed here with OpenSSL's SHA-512 and the RFC 7748 clamp, independently of libsodium.
  for (std::string_view seed_hex : {kSeed1, kSeed2}) {
    const auto seed = key32(seed_hex);
    Bytes expect = sha512(seed);
    expect.resize(32);
    expect[0] &= 248;
    expect[31] &= 127;
    expect[31] |= 64;
    EXPECT_EQ(hex(seed_to_x25519_private(seed).span()), hex(expect));
  }
}

TEST(Ed25519ToX25519, PublicConversionKnownAnswer) {
  // u = (1 + y) / (1 - y) mod 2^255 - 19 for the RFC 8032 TEST 1 public key, computed with Python
  // integers; the X25519 public key of clamp(SHA-512(seed)[:32]) from Python `cryptography` 48
  // (OpenSSL) is the same value.
  constexpr std::string_view kU1 = "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e";
  auto u = public_to_x25519(unhex(kPub1));
  ASSERT_TRUE(u);
  EXPECT_EQ(hex(*u), kU1);
  EXPECT_EQ(hex(x25519::public_from_private(seed_to_x25519_private(key32(kSeed1)).span())), kU1);
}

TEST(Ed25519ToX25519, ConvertedKeysAgree) {
  // The two conversions are different code paths (a birational map of the point; a hash and a
  // scalar multiplication), so their agreement is a real check.
  const auto ed = generate();
  const auto eph = x25519::generate();
  auto server_x_pub = public_to_x25519(ed.public_key);
  ASSERT_TRUE(server_x_pub);
  EXPECT_EQ(hex(*server_x_pub), hex(x25519::public_from_private(seed_to_x25519_private(ed.seed.span()).span())));
  auto client_side = x25519::ecdh(eph.private_key.span(), *server_x_pub);
  auto server_side = x25519::ecdh(seed_to_x25519_private(ed.seed.span()).span(), eph.public_key);
  ASSERT_TRUE(client_side && server_side);
  EXPECT_EQ(hex(client_side->span()), hex(server_side->span()));
}

TEST(Ed25519ToX25519, RejectsBadPublicKeys) {
  const struct {
    const char* why;
    const char* key;
  } bad[] = {
      {"identity (0, 1)", "0100000000000000000000000000000000000000000000000000000000000000"},
      {"order 2 point (0, -1)", "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
      {"y = 0 (order 4)", "0000000000000000000000000000000000000000000000000000000000000000"},
      {"y = p, not a field element", "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"},
      // (y^2 - 1) / (d y^2 + 1) is not a square for y = 2 (checked with Python integers).
      {"y = 2, not on the curve", "0200000000000000000000000000000000000000000000000000000000000000"},
      // B + (0, -1) = (-Bx, -By): on the curve, order 2L, so not in the prime-order subgroup.
      // Encoded with Python integers from the base point y = 4/5.
      {"mixed order B + T2", "9599999999999999999999999999999999999999999999999999999999999999"},
  };
  for (const auto& b : bad) {
    auto r = public_to_x25519(unhex(b.key));
    ASSERT_FALSE(r) << b.why;
    EXPECT_EQ(r.error().code, Errc::invalid_key) << b.why;
  }
  // The base point itself converts (u = 9), which shows the rejections above are not blanket.
  auto base = public_to_x25519(unhex("5866666666666666666666666666666666666666666666666666666666666666"));
  ASSERT_TRUE(base);
  EXPECT_EQ(hex(*base), "0900000000000000000000000000000000000000000000000000000000000000");

  for (std::size_t len : {0, 31, 33, 64}) {
    auto r = public_to_x25519(Bytes(len, 0x58));
    ASSERT_FALSE(r) << len;
    EXPECT_EQ(r.error().code, Errc::invalid_length);
  }
}

}  // namespace
}  // namespace e2ee::crypto::ed25519

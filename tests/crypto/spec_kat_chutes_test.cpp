#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "common/encoding.hpp"
#include "crypto/aead.hpp"
#include "crypto/hkdf.hpp"

// The cross-check vector in ../shared/specs/chutes-protocol.md section 20 ("computed here with
// both Node 20 crypto and Python cryptography (identical)"): the two primitives of the Chutes
// envelope with the exact parameters the protocol uses (empty AAD, 16-byte salt, info string).

namespace e2ee::crypto {
namespace {

const Bytes kKey(32, 0x01);
const Bytes kNonce(12, 0x02);
const Bytes kIkm(32, 0x03);
const Bytes kSalt(16, 0x04);
const std::string kInfo = "e2e-req-v1";
constexpr const char* kExpectedOkm = "2bc17e165acacef0681514871e823032da70a64dc51e5f400f4f20e16c2bd36f";

TEST(ChutesSpecKat, ChaCha20Poly1305) {
  const auto sealed = aead_seal(Aead::chacha20_poly1305, kKey, kNonce, as_bytes("hi"));
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(hex_encode(*sealed), "8e75" "5d6240e2f604d0e83d2c62df42b24276");

  const Bytes sealed_spec = *hex_decode("8e755d6240e2f604d0e83d2c62df42b24276");
  const auto opened = aead_open(Aead::chacha20_poly1305, kKey, kNonce, sealed_spec);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(to_string(*opened), "hi");
}

TEST(ChutesSpecKat, HkdfSha256) {
  const auto okm = hkdf_sha256(kIkm, kSalt, as_bytes(kInfo), 32);
  ASSERT_TRUE(okm) << okm.error().message;
  EXPECT_EQ(hex_encode(ByteView(okm->data(), okm->size())), kExpectedOkm);
  const auto key = hkdf_sha256_32(kIkm, kSalt, as_bytes(kInfo));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(hex_encode(key->span()), kExpectedOkm);
}

// The spec's remark that for L = 32 HKDF is HMAC(HMAC(salt, IKM), info || 0x01), computed here
// with OpenSSL's HMAC() directly, bypassing our HKDF.
TEST(ChutesSpecKat, HkdfOfOneBlockIsTwoHmacs) {
  unsigned char prk[32];
  unsigned int prk_len = 0;
  ASSERT_NE(HMAC(EVP_sha256(), kSalt.data(), static_cast<int>(kSalt.size()), kIkm.data(), kIkm.size(), prk, &prk_len),
            nullptr);
  ASSERT_EQ(prk_len, 32u);
  Bytes message = to_bytes(kInfo);
  message.push_back(0x01);
  unsigned char okm[32];
  unsigned int okm_len = 0;
  ASSERT_NE(HMAC(EVP_sha256(), prk, static_cast<int>(prk_len), message.data(), message.size(), okm, &okm_len), nullptr);
  ASSERT_EQ(okm_len, 32u);
  EXPECT_EQ(hex_encode(ByteView(okm, okm_len)), kExpectedOkm);
}

}  // namespace
}  // namespace e2ee::crypto

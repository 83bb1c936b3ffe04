// The two NaCl box variants against published vectors: libsodium's own box test (XSalsa20) and
// RustCrypto's crypto_box ChaChaBox test (the variant NEAR's inference proxy seals with).

#include "crypto/nacl_box.hpp"

#include <gtest/gtest.h>

#include "common/encoding.hpp"

namespace e2ee::crypto::nacl_box {
namespace {

Bytes hex(std::string_view s) { return *hex_decode(s); }

// libsodium test/default/box.c / box.exp (NaCl's tests/box.c), keys of RFC 7748 section 6.1.
const char* kAliceSk = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a";
const char* kBobPk = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
const char* kNonce = "69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37";
const char* kMessage =
    "be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66"
    "cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc7689"
    "7040e082f937763848645e0705";
const char* kSalsaBox =
    "f3ffc7703f9400e52a7dfb4b3d3305d98e993b9f48681273c29650ba32fc76ce48332ea7164d96a4476fb8c531a1186ac0dfc17c98dce87b4da7f0"
    "11ec48c97271d2c20f9b928fe2270d6fb863d51738b48eeee314a7cc8ab932164548e526ae90224368517acfeabd6bb3732bc0e9da99832b61ca01"
    "b6de56244a9e88d5f9b37973f622a43d14a6599b1f654cb45a74e355a5";

// RustCrypto nacl-compat crypto_box/tests/lib.rs (vectors from PHP sodium_compat).
const char* kRcAliceSk = "68f208412d8dd5db9d0c6d18512e86f0ec75665ab841372d57b042b27ef89d4c";
const char* kRcBobPk = "e8980c86e032f1eb2975052e8d65bddd15c3b59641174ec9678a53789d92c754";
const char* kRcChaChaBox =
    "a2978374ed279cfbcd6d6da427e42d0497dfb91fba87653493f4c8f1ddd96417e7801255f943d6e00785e4d2171be2965dd2d9235e5f7da98e7f5f"
    "e73666655320e0e007fc9f306a436874df3f0953c83ac5d7fb1e613e8df46e2274ab32e3fa136e1ead147f8233b3d3ff91dc8af5f7018bd56cbd72"
    "bed7da2d5ba3b9e08fdee8d899ed616fe47bebdea5f889251fbcf8948e";

Result<Bytes> box(Cipher cipher, const char* own, const char* peer) {
  const Bytes sk = hex(own);
  auto key = precompute(cipher, std::span<const std::uint8_t, 32>(sk.data(), 32), hex(peer));
  if (!key) return std::move(key).error();
  return seal(cipher, *key, hex(kNonce), hex(kMessage));
}

TEST(NaClBox, XSalsa20BoxMatchesLibsodiumsVector) {
  auto sealed = box(Cipher::xsalsa20_poly1305, kAliceSk, kBobPk);
  ASSERT_TRUE(sealed);
  EXPECT_EQ(hex_encode(*sealed), kSalsaBox);
}

TEST(NaClBox, XChaCha20BoxMatchesRustCryptosChaChaBoxVector) {
  auto sealed = box(Cipher::xchacha20_poly1305, kRcAliceSk, kRcBobPk);
  ASSERT_TRUE(sealed);
  EXPECT_EQ(hex_encode(*sealed), kRcChaChaBox);
}

TEST(NaClBox, OpenReversesSealAndRejectsTampering) {
  for (Cipher c : {Cipher::xsalsa20_poly1305, Cipher::xchacha20_poly1305}) {
    const Bytes sk = hex(kRcAliceSk);
    auto key = precompute(c, std::span<const std::uint8_t, 32>(sk.data(), 32), hex(kRcBobPk));
    ASSERT_TRUE(key);
    auto sealed = seal(c, *key, hex(kNonce), hex(kMessage));
    ASSERT_TRUE(sealed);
    auto opened = open(c, *key, hex(kNonce), *sealed);
    ASSERT_TRUE(opened);
    EXPECT_EQ(*opened, hex(kMessage));
    for (std::size_t i : {std::size_t{0}, sealed->size() / 2, sealed->size() - 1}) {
      Bytes bad = *sealed;
      bad[i] ^= 1;
      auto r = open(c, *key, hex(kNonce), bad);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error().code, Errc::authentication_failed);
    }
  }
}

TEST(NaClBox, RejectsLowOrderKeysAndBadLengths) {
  const Bytes sk = hex(kAliceSk);
  EXPECT_EQ(precompute(Cipher::xsalsa20_poly1305, std::span<const std::uint8_t, 32>(sk.data(), 32), Bytes(32, 0)).error().code,
            Errc::invalid_key);
  EXPECT_EQ(precompute(Cipher::xsalsa20_poly1305, std::span<const std::uint8_t, 32>(sk.data(), 32), Bytes(31, 1)).error().code,
            Errc::invalid_length);
}

}  // namespace
}  // namespace e2ee::crypto::nacl_box

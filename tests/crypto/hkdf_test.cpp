#include "crypto/hkdf.hpp"

#include <gtest/gtest.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "common/encoding.hpp"
#include "support/vectors.hpp"

namespace e2ee::crypto {
namespace {

Bytes unhex(std::string_view text) {
  auto bytes = hex_decode(text);
  if (!bytes) ADD_FAILURE() << "bad hex in test source: " << text.substr(0, 16);
  return bytes.value_or(Bytes{});
}

Bytes range(std::uint8_t first, std::uint8_t last) {
  Bytes out;
  for (unsigned b = first; b <= last; ++b) out.push_back(static_cast<std::uint8_t>(b));
  return out;
}

std::string hex_of(const SecretBytes& s) { return hex_encode(ByteView(s.data(), s.size())); }

// RFC 5869 Appendix A, test cases 1-3 (the SHA-256 ones).
TEST(HkdfRfc5869, TestCase1Basic) {
  const auto okm = hkdf_sha256(Bytes(22, 0x0b), unhex("000102030405060708090a0b0c"), unhex("f0f1f2f3f4f5f6f7f8f9"), 42);
  ASSERT_TRUE(okm) << okm.error().message;
  EXPECT_EQ(hex_of(*okm), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST(HkdfRfc5869, TestCase2LongInputs) {
  const auto okm = hkdf_sha256(range(0x00, 0x4f), range(0x60, 0xaf), range(0xb0, 0xff), 82);
  ASSERT_TRUE(okm) << okm.error().message;
  EXPECT_EQ(hex_of(*okm),
            "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c"
            "59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71"
            "cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST(HkdfRfc5869, TestCase3EmptySaltAndInfo) {
  const auto okm = hkdf_sha256(Bytes(22, 0x0b), {}, {}, 42);
  ASSERT_TRUE(okm) << okm.error().message;
  EXPECT_EQ(hex_of(*okm), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  // Section 2.2: no salt means HashLen zero bytes, so spelling them out changes nothing.
  const auto explicit_zeros = hkdf_sha256(Bytes(22, 0x0b), Bytes(32, 0), {}, 42);
  ASSERT_TRUE(explicit_zeros);
  EXPECT_EQ(hex_of(*explicit_zeros), hex_of(*okm));
}

TEST(HkdfRfc5869, ThirtyTwoByteFormIsTheFirstBlockOfTestCase1) {
  const auto key = hkdf_sha256_32(Bytes(22, 0x0b), unhex("000102030405060708090a0b0c"), unhex("f0f1f2f3f4f5f6f7f8f9"));
  ASSERT_TRUE(key) << key.error().message;
  EXPECT_EQ(hex_encode(key->span()), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
}

TEST(HkdfLimits, OutputLengthBounds) {
  const Bytes ikm(16, 1);
  // 255 * HashLen is the most HKDF-SHA256 can produce (RFC 5869 section 2.3).
  const auto max = hkdf_sha256(ikm, {}, {}, 255 * 32);
  ASSERT_TRUE(max) << max.error().message;
  EXPECT_EQ(max->size(), 8160u);
  const auto too_long = hkdf_sha256(ikm, {}, {}, 255 * 32 + 1);
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.error().code, Errc::invalid_length);
  const auto huge = hkdf_sha256(ikm, {}, {}, std::size_t{1} << 40);
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().code, Errc::invalid_length);
  // Zero-length output is refused by design (see hkdf.cpp): an empty key is always a bug.
  const auto empty = hkdf_sha256(ikm, {}, {}, 0);
  ASSERT_FALSE(empty);
  EXPECT_EQ(empty.error().code, Errc::invalid_length);
}

// OpenSSL's own HKDF (EVP_KDF "HKDF") is a separate implementation from ours (which builds on
// HMAC), so it can serve as an oracle for inputs the published vectors do not cover: empty IKM,
// lengths around block boundaries, salts longer than the HMAC block.
Bytes openssl_hkdf(ByteView ikm, ByteView salt, ByteView info, std::size_t length) {
  EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  EVP_KDF_CTX* ctx = EVP_KDF_CTX_new(kdf);
  EVP_KDF_free(kdf);
  char digest[] = "SHA256";
  // OSSL_PARAM wants non-const pointers even for inputs it only reads.
  // Copies with one spare byte, so that even an empty input has a non-null address.
  Bytes ikm_copy(ikm.begin(), ikm.end()), salt_copy(salt.begin(), salt.end()), info_copy(info.begin(), info.end());
  for (Bytes* b : {&ikm_copy, &salt_copy, &info_copy}) b->reserve(b->size() + 1);
  std::vector<OSSL_PARAM> params;
  params.push_back(OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0));
  params.push_back(OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ikm_copy.data(), ikm.size()));
  if (!salt.empty()) {
    params.push_back(OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt_copy.data(), salt.size()));
  }
  params.push_back(OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info_copy.data(), info.size()));
  params.push_back(OSSL_PARAM_construct_end());
  Bytes out(length);
  const int ok = EVP_KDF_derive(ctx, out.data(), out.size(), params.data());
  EVP_KDF_CTX_free(ctx);
  EXPECT_EQ(ok, 1) << "OpenSSL HKDF oracle failed";
  return out;
}

TEST(HkdfDifferential, AgreesWithOpenSslHkdf) {
  const Bytes ikms[] = {Bytes{}, Bytes(1, 0x42), range(0x00, 0x1f), range(0x00, 0xff)};
  const Bytes salts[] = {Bytes{}, Bytes(1, 0x7f), range(0x10, 0x2f), range(0x00, 0x8f) /* > 64-byte block */};
  const Bytes infos[] = {Bytes{}, to_bytes("e2e-req-v1"), range(0x00, 0xc7)};
  for (const auto& ikm : ikms) {
    for (const auto& salt : salts) {
      for (const auto& info : infos) {
        for (const std::size_t length : {1u, 31u, 32u, 33u, 64u, 65u, 100u, 8160u}) {
          SCOPED_TRACE("ikm " + std::to_string(ikm.size()) + " salt " + std::to_string(salt.size()) + " info " +
                       std::to_string(info.size()) + " L " + std::to_string(length));
          const auto ours = hkdf_sha256(ikm, salt, info, length);
          ASSERT_TRUE(ours) << ours.error().message;
          EXPECT_EQ(hex_of(*ours), hex_encode(openssl_hkdf(ikm, salt, info, length)));
        }
      }
    }
  }
}

// The shared HMAC template is created on first use and then duplicated concurrently.
TEST(HkdfThreads, ConcurrentDerivationsGiveTheRfcResult) {
  const Bytes ikm(22, 0x0b), salt = unhex("000102030405060708090a0b0c"), info = unhex("f0f1f2f3f4f5f6f7f8f9");
  const std::string expected = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
  std::vector<int> failures(4, 0);
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        const auto okm = hkdf_sha256(ikm, salt, info, 42);
        if (!okm || hex_of(*okm) != expected) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, std::vector<int>(4, 0));
}

TEST(HkdfWycheproof, Sha256) {
  E2EE_REQUIRE_VECTORS("wycheproof/hkdf_sha256_test.json");
  std::size_t valid = 0, too_large = 0;
  const auto n = e2ee::test::for_each_wycheproof_case(
      "wycheproof/hkdf_sha256_test.json", "hkdf_test_schema_v1.json",
      [&](e2ee::test::Fields& group, const e2ee::test::WycheproofCase& t) {
        EXPECT_EQ(group.str("type"), "HkdfTest");
        const std::int64_t key_bits = group.integer("keySize");
        const Bytes ikm = t.fields.hex("ikm");
        const Bytes salt = t.fields.hex("salt");
        const Bytes info = t.fields.hex("info");
        const auto size = static_cast<std::size_t>(t.fields.integer("size"));
        const Bytes okm = t.fields.hex("okm");
        EXPECT_EQ(static_cast<std::int64_t>(ikm.size() * 8), key_bits);

        const auto ours = hkdf_sha256(ikm, salt, info, size);
        switch (t.result) {
          case e2ee::test::Expected::valid:
            ASSERT_TRUE(ours) << ours.error().message;
            EXPECT_EQ(okm.size(), size);
            EXPECT_EQ(hex_of(*ours), hex_encode(okm));
            if (size == 32) {
              const auto key = hkdf_sha256_32(ikm, salt, info);
              ASSERT_TRUE(key);
              EXPECT_EQ(hex_encode(key->span()), hex_encode(okm));
            }
            ++valid;
            break;
          case e2ee::test::Expected::invalid:
            // The only invalid cases are outputs longer than 255 * HashLen.
            EXPECT_NE(std::find(t.flags.begin(), t.flags.end(), "SizeTooLarge"), t.flags.end());
            EXPECT_GT(size, 255u * 32u);
            EXPECT_TRUE(okm.empty());
            ASSERT_FALSE(ours);
            EXPECT_EQ(ours.error().code, Errc::invalid_length);
            ++too_large;
            break;
          case e2ee::test::Expected::acceptable:
            ADD_FAILURE() << "unexpected 'acceptable' case";
            break;
        }
      });
  EXPECT_EQ(n, 86u);
  EXPECT_EQ(valid, 83u);
  EXPECT_EQ(too_large, 3u);
}

}  // namespace
}  // namespace e2ee::crypto

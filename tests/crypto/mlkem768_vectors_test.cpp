// ML-KEM-768 against third-party vectors: every Wycheproof ML-KEM-768 file and CCTV's strcmp and
// modulus files (../shared/vectors; provenance in its README).

#include <gtest/gtest.h>

#include "common/encoding.hpp"
#include "crypto/mlkem768.hpp"
#include "support/vectors.hpp"

namespace e2ee::crypto::mlkem768 {
namespace {

using test::Expected;
using test::Fields;
using test::WycheproofCase;

Bytes key_of(const SharedSecret& s) { return Bytes(s.data(), s.data() + s.size()); }
Bytes bytes_of(const SecretBytes& s) { return Bytes(s.begin(), s.end()); }

void expect_group(Fields& group, const char* type) {
  EXPECT_EQ(group.str("type"), type);
  EXPECT_EQ(group.str("parameterSet"), "ML-KEM-768");
}

TEST(MlKem768Wycheproof, KeyGenFromSeed) {
  E2EE_REQUIRE_VECTORS("wycheproof/mlkem_768_keygen_seed_test.json");
  const auto n = test::for_each_wycheproof_case(
      "wycheproof/mlkem_768_keygen_seed_test.json", "mlkem_keygen_seed_test_schema.json",
      [](Fields& group, const WycheproofCase& t) {
        expect_group(group, "MLKEMKeyGen");
        ASSERT_EQ(t.result, Expected::valid);
        auto dk = DecapsulationKey::from_seed(t.fields.hex("seed"));
        ASSERT_TRUE(dk);
        EXPECT_EQ(hex_encode(dk->encapsulation_key().bytes()), hex_encode(t.fields.hex("ek")));
        EXPECT_EQ(hex_encode(bytes_of(dk->expanded_bytes())), hex_encode(t.fields.hex("dk")));
      });
  EXPECT_EQ(n, 100u);
}

TEST(MlKem768Wycheproof, Encapsulation) {
  E2EE_REQUIRE_VECTORS("wycheproof/mlkem_768_encaps_test.json");
  std::size_t invalid = 0;
  test::for_each_wycheproof_case(
      "wycheproof/mlkem_768_encaps_test.json", "mlkem_encaps_test_schema.json",
      [&](Fields& group, const WycheproofCase& t) {
        expect_group(group, "MLKEMEncapsTest");
        const Bytes m = t.fields.hex("m");
        const Bytes c = t.fields.hex("c");
        const Bytes k = t.fields.hex("K");
        auto ek = EncapsulationKey::parse(t.fields.hex("ek"));
        if (t.result == Expected::invalid) {
          ++invalid;
          EXPECT_FALSE(ek) << "invalid encapsulation key accepted";
          EXPECT_TRUE(c.empty() && k.empty());
          return;
        }
        ASSERT_TRUE(ek) << ek.error().message;
        ASSERT_EQ(m.size(), kMessageBytes);
        const auto enc = encapsulate_derand(*ek, std::span<const std::uint8_t, 32>(m.data(), 32));
        EXPECT_EQ(hex_encode(enc.ciphertext), hex_encode(c));
        EXPECT_EQ(hex_encode(key_of(enc.shared_secret)), hex_encode(k));
      });
  EXPECT_GT(invalid, 0u);
}

TEST(MlKem768Wycheproof, KeyGenThenDecapsulationIncludingStrcmp) {
  E2EE_REQUIRE_VECTORS("wycheproof/mlkem_768_test.json");
  std::size_t strcmp_cases = 0, invalid = 0;
  test::for_each_wycheproof_case(
      "wycheproof/mlkem_768_test.json", "mlkem_test_schema.json", [&](Fields& group, const WycheproofCase& t) {
        expect_group(group, "MLKEMTest");
        for (const auto& f : t.flags) strcmp_cases += (f == "Strcmp");
        const Bytes c = t.fields.hex("c");
        const Bytes k = t.fields.hex("K");
        auto dk = DecapsulationKey::from_seed(t.fields.hex("seed"));
        // When the seed is valid the file also gives the encapsulation key it must produce.
        if (t.fields.has("ek")) {
          const Bytes ek = t.fields.hex("ek");
          ASSERT_TRUE(dk) << "valid seed rejected";
          EXPECT_EQ(hex_encode(dk->encapsulation_key().bytes()), hex_encode(ek));
        }
        if (t.result == Expected::invalid) {
          ++invalid;
          EXPECT_TRUE(k.empty());
          if (!dk) return;  // wrong seed length: rejected at key generation
          EXPECT_FALSE(decapsulate(*dk, c)) << "ciphertext of wrong length accepted";
          return;
        }
        ASSERT_TRUE(dk);
        const auto got = decapsulate(*dk, c);
        ASSERT_TRUE(got);
        EXPECT_EQ(hex_encode(key_of(*got)), hex_encode(k));
      });
  EXPECT_GT(strcmp_cases, 0u);
  EXPECT_EQ(invalid, 40u);
}

TEST(MlKem768Wycheproof, ExpandedDecapsulationKeys) {
  E2EE_REQUIRE_VECTORS("wycheproof/mlkem_768_semi_expanded_decaps_test.json");
  test::for_each_wycheproof_case(
      "wycheproof/mlkem_768_semi_expanded_decaps_test.json", "mlkem_semi_expanded_decaps_test_schema.json",
      [](Fields& group, const WycheproofCase& t) {
        expect_group(group, "MLKEMDecapsValidationTest");
        const Bytes ek = t.fields.hex("ek");
        const Bytes c = t.fields.hex("c");
        const Bytes k = t.fields.has("K") ? t.fields.hex("K") : Bytes{};
        auto dk = DecapsulationKey::parse(t.fields.hex("dk"));
        if (t.result == Expected::invalid) {
          EXPECT_TRUE(k.empty());
          if (!dk) return;  // bad length, corrupted hash or corrupted embedded ek
          EXPECT_FALSE(decapsulate(*dk, c)) << "ciphertext of wrong length accepted";
          return;
        }
        ASSERT_TRUE(dk) << dk.error().message;
        EXPECT_EQ(hex_encode(dk->encapsulation_key().bytes()), hex_encode(ek));
        const auto got = decapsulate(*dk, c);
        ASSERT_TRUE(got);
        EXPECT_EQ(hex_encode(key_of(*got)), hex_encode(k));
      });
}

TEST(MlKem768Cctv, StrcmpDecapsulation) {
  E2EE_REQUIRE_VECTORS("cctv-mlkem/strcmp-ML-KEM-768.txt");
  const auto blocks = test::read_key_value_blocks(test::vector_path("cctv-mlkem/strcmp-ML-KEM-768.txt"));
  ASSERT_EQ(blocks.size(), 1u);
  std::map<std::string, Bytes> v(blocks[0].begin(), blocks[0].end());
  ASSERT_EQ(v.size(), 3u) << "expected exactly dk, c, K";
  auto dk = DecapsulationKey::parse(v.at("dk"));
  ASSERT_TRUE(dk) << dk.error().message;
  const auto got = decapsulate(*dk, v.at("c"));
  ASSERT_TRUE(got);
  EXPECT_EQ(hex_encode(key_of(*got)), hex_encode(v.at("K")));
}

TEST(MlKem768Cctv, ModulusCheckRejectsEveryKey) {
  E2EE_REQUIRE_VECTORS("cctv-mlkem/modulus-ML-KEM-768.txt.gz");
  const auto lines = test::read_lines(test::vector_path("cctv-mlkem/modulus-ML-KEM-768.txt.gz"));
  std::size_t checked = 0;
  for (const auto& line : lines) {
    if (line.empty()) continue;
    const auto ek = hex_decode(line);
    ASSERT_TRUE(ek) << "line " << checked;
    ASSERT_EQ(ek->size(), kEncapsulationKeyBytes);
    const auto parsed = EncapsulationKey::parse(*ek);
    ASSERT_FALSE(parsed) << "unreduced key accepted, line " << checked;
    EXPECT_EQ(parsed.error().code, Errc::invalid_key);
    const auto alone = EncapsulationKey::check(*ek);  // the checks without building the key
    ASSERT_FALSE(alone) << "unreduced key passed check(), line " << checked;
    EXPECT_EQ(alone.error().code, Errc::invalid_key);
    ++checked;
  }
  EXPECT_EQ(checked, 780u);
}

}  // namespace
}  // namespace e2ee::crypto::mlkem768

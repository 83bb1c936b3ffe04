// ML-KEM-768 behaviour through the public API: round trips, implicit rejection, and every way a
// peer can hand us malformed bytes.

#include "crypto/mlkem768.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>

#include "common/encoding.hpp"
#include "crypto/detail/cpu_features.hpp"

namespace e2ee::crypto::mlkem768 {
namespace {

Bytes key_of(const SharedSecret& s) { return Bytes(s.data(), s.data() + s.size()); }

// ctest runs this binary a second time with E2EE_NO_AVX2=1 (crypto_mlkem768.portable_code): that
// run must really be on the portable code, or it would only repeat the first.
TEST(MlKem768, RunsThePortableCodeWhenToldTo) {
#if E2EE_X86_AVX2
  const char* off = std::getenv("E2EE_NO_AVX2");
  if (off != nullptr && *off != '\0' && std::strcmp(off, "0") != 0) {
    EXPECT_FALSE(crypto::detail::cpu_has_avx2());
  } else {
    std::printf("ML-KEM runs the %s code here\n", crypto::detail::cpu_has_avx2() ? "AVX2" : "portable");
  }
#else
  GTEST_SKIP() << "SKIPPED: not an x86-64 build; there is only the portable code";
#endif
}

TEST(MlKem768, RandomRoundTrips) {
  for (int i = 0; i < 50; ++i) {
    const auto dk = DecapsulationKey::generate();
    const auto enc = encapsulate(dk.encapsulation_key());
    const auto k = decapsulate(dk, enc.ciphertext);
    ASSERT_TRUE(k);
    ASSERT_EQ(key_of(*k), key_of(enc.shared_secret));
  }
}

TEST(MlKem768, KeysFromTheSameSeedAreIdenticalAndSeedsMatter) {
  Bytes seed(64, 0x42);
  auto a = DecapsulationKey::from_seed(seed);
  auto b = DecapsulationKey::from_seed(seed);
  seed[0] ^= 1;
  auto c = DecapsulationKey::from_seed(seed);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->encapsulation_key().bytes(), b->encapsulation_key().bytes());
  EXPECT_EQ(a->expanded_bytes(), b->expanded_bytes());
  EXPECT_NE(a->encapsulation_key().bytes(), c->encapsulation_key().bytes());
  // Changing only z (the second half) leaves ek alone and changes dk.
  Bytes seed_z(64, 0x42);
  seed_z[63] ^= 1;
  auto d = DecapsulationKey::from_seed(seed_z);
  EXPECT_EQ(a->encapsulation_key().bytes(), d->encapsulation_key().bytes());
  EXPECT_NE(a->expanded_bytes(), d->expanded_bytes());
}

TEST(MlKem768, ExpandedKeyRoundTripsThroughParse) {
  const auto dk = DecapsulationKey::generate();
  const auto expanded = dk.expanded_bytes();
  ASSERT_EQ(expanded.size(), kDecapsulationKeyBytes);
  auto parsed = DecapsulationKey::parse(ByteView(expanded.data(), expanded.size()));
  ASSERT_TRUE(parsed);
  const auto enc = encapsulate(dk.encapsulation_key());
  EXPECT_EQ(key_of(*decapsulate(*parsed, enc.ciphertext)), key_of(enc.shared_secret));
}

TEST(MlKem768, DeterministicEncapsulationDependsOnMessageAndKey) {
  const auto dk = DecapsulationKey::generate();
  std::array<std::uint8_t, 32> m{};
  const auto e1 = encapsulate_derand(dk.encapsulation_key(), m);
  const auto e2 = encapsulate_derand(dk.encapsulation_key(), m);
  m[31] = 1;
  const auto e3 = encapsulate_derand(dk.encapsulation_key(), m);
  EXPECT_EQ(e1.ciphertext, e2.ciphertext);
  EXPECT_EQ(key_of(e1.shared_secret), key_of(e2.shared_secret));
  EXPECT_NE(e1.ciphertext, e3.ciphertext);
  EXPECT_NE(key_of(e1.shared_secret), key_of(e3.shared_secret));
}

TEST(MlKem768, TamperedCiphertextGivesTheDeterministicRejectionKey) {
  const auto dk = DecapsulationKey::generate();
  const auto enc = encapsulate(dk.encapsulation_key());
  for (std::size_t pos : {std::size_t{0}, std::size_t{500}, kCiphertextBytes - 1}) {
    auto bad = enc.ciphertext;
    bad[pos] ^= 0x01;
    const auto k1 = decapsulate(dk, bad);
    const auto k2 = decapsulate(dk, bad);
    ASSERT_TRUE(k1 && k2);
    EXPECT_NE(key_of(*k1), key_of(enc.shared_secret)) << pos;
    EXPECT_EQ(key_of(*k1), key_of(*k2)) << pos;  // implicit rejection is a function of (z, c)
  }
}

TEST(MlKem768, RejectsWrongLengths) {
  const auto dk = DecapsulationKey::generate();
  const auto& ek = dk.encapsulation_key().bytes();
  EXPECT_EQ(EncapsulationKey::parse(ByteView(ek).first(kEncapsulationKeyBytes - 1)).error().code, Errc::invalid_length);
  Bytes longer(ek.begin(), ek.end());
  longer.push_back(0);
  EXPECT_EQ(EncapsulationKey::parse(longer).error().code, Errc::invalid_length);
  EXPECT_EQ(EncapsulationKey::parse({}).error().code, Errc::invalid_length);
  const auto enc = encapsulate(dk.encapsulation_key());
  EXPECT_EQ(decapsulate(dk, ByteView(enc.ciphertext).first(kCiphertextBytes - 1)).error().code, Errc::invalid_length);
  EXPECT_EQ(DecapsulationKey::from_seed(Bytes(63)).error().code, Errc::invalid_length);
  EXPECT_EQ(DecapsulationKey::parse(Bytes(2399)).error().code, Errc::invalid_length);
}

TEST(MlKem768, RejectsUnreducedEncapsulationKey) {
  const auto dk = DecapsulationKey::generate();
  Bytes ek(dk.encapsulation_key().bytes().begin(), dk.encapsulation_key().bytes().end());
  // Set the first 12-bit coefficient to 0xFFF >= q.
  ek[0] = 0xff;
  ek[1] |= 0x0f;
  const auto parsed = EncapsulationKey::parse(ek);
  ASSERT_FALSE(parsed);
  EXPECT_EQ(parsed.error().code, Errc::invalid_key);
  EXPECT_EQ(EncapsulationKey::check(ek).error().code, Errc::invalid_key);
  // The last coefficient of the last polynomial: check() decodes all three.
  Bytes last(dk.encapsulation_key().bytes().begin(), dk.encapsulation_key().bytes().end());
  last[3 * 384 - 1] = 0xff;
  last[3 * 384 - 2] |= 0xf0;
  EXPECT_EQ(EncapsulationKey::check(last).error().code, Errc::invalid_key);
  EXPECT_FALSE(EncapsulationKey::parse(last));
}

TEST(MlKem768, CheckAcceptsWhatParseAcceptsAndRefusesWrongLengths) {
  for (int i = 0; i < 20; ++i) {
    const auto dk = DecapsulationKey::generate();
    EXPECT_TRUE(EncapsulationKey::check(dk.encapsulation_key().bytes()));
  }
  const auto dk = DecapsulationKey::generate();
  Bytes ek(dk.encapsulation_key().bytes().begin(), dk.encapsulation_key().bytes().end());
  ek.pop_back();
  EXPECT_EQ(EncapsulationKey::check(ek).error().code, Errc::invalid_length);
  ek.resize(kEncapsulationKeyBytes + 1);
  EXPECT_EQ(EncapsulationKey::check(ek).error().code, Errc::invalid_length);
  EXPECT_EQ(EncapsulationKey::check(Bytes{}).error().code, Errc::invalid_length);
}

TEST(MlKem768, ParseRejectsCorruptedHashAndEmbeddedKey) {
  const auto dk = DecapsulationKey::generate();
  const auto good = dk.expanded_bytes();
  Bytes bad_hash(good.begin(), good.end());
  bad_hash[1152 + 1184] ^= 1;
  EXPECT_EQ(DecapsulationKey::parse(bad_hash).error().code, Errc::invalid_key);
  Bytes bad_ek(good.begin(), good.end());
  bad_ek[1152 + 10] ^= 1;
  EXPECT_EQ(DecapsulationKey::parse(bad_ek).error().code, Errc::invalid_key);
}

TEST(MlKem768, CopiedEncapsulationKeyIsIndependentAndEquivalent) {
  const auto dk = DecapsulationKey::generate();
  EncapsulationKey copy = dk.encapsulation_key();
  std::array<std::uint8_t, 32> m{7};
  EXPECT_EQ(encapsulate_derand(copy, m).ciphertext, encapsulate_derand(dk.encapsulation_key(), m).ciphertext);
}

}  // namespace
}  // namespace e2ee::crypto::mlkem768

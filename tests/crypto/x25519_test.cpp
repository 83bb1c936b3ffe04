// X25519 (RFC 7748): Wycheproof's full XDH file, the RFC's own vectors, and the length and
// low-order checks every peer key goes through.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "common/encoding.hpp"
#include "crypto/ecdh.hpp"
#include "support/vectors.hpp"

namespace e2ee::crypto::x25519 {
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

bool has_flag(const std::vector<std::string>& flags, std::string_view f) {
  return std::find(flags.begin(), flags.end(), f) != flags.end();
}

TEST(X25519Wycheproof, XdhComp) {
  E2EE_REQUIRE_VECTORS("wycheproof/x25519_test.json");
  std::size_t zero_rejected = 0, accepted = 0;
  const std::size_t n = test::for_each_wycheproof_case(
      "wycheproof/x25519_test.json", "xdh_comp_schema_v1.json",
      [&](test::Fields& group, const test::WycheproofCase& tc) {
        EXPECT_EQ(group.str("type"), "XdhComp");
        EXPECT_EQ(group.str("curve"), "curve25519");
        const Bytes pub = tc.fields.hex("public");
        const Bytes priv = tc.fields.hex("private");
        const Bytes shared = tc.fields.hex("shared");
        ASSERT_EQ(priv.size(), kKeyBytes);
        const auto result = ecdh(std::span<const std::uint8_t, kKeyBytes>(priv.data(), kKeyBytes), pub);

        const bool zero_secret =
            shared.size() == 32 && std::all_of(shared.begin(), shared.end(), [](std::uint8_t b) { return b == 0; });
        // Our contract (RFC 7748 section 6.1): a low-order peer key that forces the all-zero
        // secret is refused, whatever Wycheproof's verdict ("acceptable" for these).
        if (has_flag(tc.flags, "ZeroSharedSecret") || zero_secret) {
          EXPECT_TRUE(has_flag(tc.flags, "ZeroSharedSecret") && zero_secret) << "flag and value disagree";
          ASSERT_FALSE(result) << "all-zero shared secret accepted";
          EXPECT_EQ(result.error().code, Errc::invalid_key);
          ++zero_rejected;
          return;
        }
        switch (tc.result) {
          case test::Expected::valid:
            ASSERT_TRUE(result) << result.error().message;
            EXPECT_EQ(hex(result->span()), hex(shared));
            ++accepted;
            break;
          case test::Expected::invalid:
            EXPECT_FALSE(result) << "invalid case accepted";
            break;
          case test::Expected::acceptable:
            // Twist points and non-canonical u (>= p, or with bit 255 set) are computed as
            // RFC 7748 says; if we compute, it must be Wycheproof's value.
            if (result) {
              EXPECT_EQ(hex(result->span()), hex(shared));
              ++accepted;
            }
            break;
        }
      });
  EXPECT_EQ(n, 518u);
  // 31 cases carry ZeroSharedSecret; every other case is computed (none rejected as "maybe").
  EXPECT_EQ(zero_rejected, 31u);
  EXPECT_EQ(accepted, n - zero_rejected);
}

TEST(X25519, Rfc7748Section61) {
  // RFC 7748 section 6.1.
  const auto alice_priv = key32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const auto bob_priv = key32("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  const std::string alice_pub = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a";
  const std::string bob_pub = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f";
  const std::string k = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";

  EXPECT_EQ(hex(public_from_private(alice_priv)), alice_pub);
  EXPECT_EQ(hex(public_from_private(bob_priv)), bob_pub);
  auto ab = ecdh(alice_priv, unhex(bob_pub));
  auto ba = ecdh(bob_priv, unhex(alice_pub));
  ASSERT_TRUE(ab && ba);
  EXPECT_EQ(hex(ab->span()), k);
  EXPECT_EQ(hex(ba->span()), k);
}

TEST(X25519, Rfc7748Section52Iterated) {
  // RFC 7748 section 5.2: k = u = 9; repeat k, u = X25519(k, u), k. Values after 1 and 1000
  // iterations are the RFC's.
  std::array<std::uint8_t, 32> k{9}, u{9};
  for (int i = 1; i <= 1000; ++i) {
    auto next = ecdh(k, u);
    ASSERT_TRUE(next) << i;
    u = k;
    std::copy(next->span().begin(), next->span().end(), k.begin());
    if (i == 1) {
      EXPECT_EQ(hex(k), "422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
  }
  EXPECT_EQ(hex(k), "684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
}

TEST(X25519, PeerKeyMustBe32Bytes) {
  const auto kp = generate();
  for (std::size_t len : {0, 1, 31, 33, 64}) {
    Bytes peer(len, 9);
    auto r = ecdh(kp.private_key.span(), peer);
    ASSERT_FALSE(r) << len;
    EXPECT_EQ(r.error().code, Errc::invalid_length);
  }
}

TEST(X25519, LowOrderPointsRejected) {
  const auto kp = generate();
  // u = 0 (order 1 / 4 on the twist) and u = 1 (order 4): every scalar maps them to zero.
  for (const Bytes& peer : {Bytes(32, 0), unhex("0100000000000000000000000000000000000000000000000000000000000000"),
                            // u = p - 1 (order 2), and p itself, which reduces to u = 0
                            unhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
                            unhex("edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")}) {
    auto r = ecdh(kp.private_key.span(), peer);
    ASSERT_FALSE(r) << hex(peer);
    EXPECT_EQ(r.error().code, Errc::invalid_key);
  }
}

TEST(X25519, GeneratedKeysAgree) {
  const auto a = generate();
  const auto b = generate();
  EXPECT_NE(hex(a.private_key.span()), hex(b.private_key.span()));
  EXPECT_EQ(hex(public_from_private(a.private_key.span())), hex(a.public_key));
  auto ab = ecdh(a.private_key.span(), b.public_key);
  auto ba = ecdh(b.private_key.span(), a.public_key);
  ASSERT_TRUE(ab && ba);
  EXPECT_EQ(hex(ab->span()), hex(ba->span()));
}

}  // namespace
}  // namespace e2ee::crypto::x25519

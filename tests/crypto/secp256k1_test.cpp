// secp256k1 public-key parsing, private keys, ECDH and Ethereum addresses.
//
// The Wycheproof file encodes public keys as DER SubjectPublicKeyInfo. Production code never sees
// SPKI (the protocols send raw 64/65-byte points), so the SPKI layer lives here in the test, as
// a deliberately small strict-DER decoder that checks only structure and the curve identifier and
// hands the point bytes over untouched. Rejection is therefore split between two layers, and the
// test asserts which one rejects each invalid case:
//
//   test SPKI decoder   InvalidAsn (acceptable; the few that keep the DER intact and damage the
//                       point bytes are rejected by PublicKey::parse), UnnamedCurve (explicit parameters: WrongOrder,
//                       ModifiedGenerator, ModifiedCofactor, NegativeCofactor, NoCofactor,
//                       LargeCofactor, ModifiedPrime, ModifiedCurveParameter, WeakPublicKey),
//                       ModifiedGroup and WrongCurve with an uncompressed point (a named curve
//                       other than secp256k1)
//   PublicKey::parse    InvalidCurveAttack and ModifiedPublicPoint (off-curve points),
//                       InvalidEncoding (empty point), InvalidCompressedPublic and
//                       WrongCurve + CompressedPoint (x with no point on the curve)
//
// Every case whose point is not a secp256k1 point (Wycheproof gives no shared secret for those)
// is additionally fed straight to PublicKey::parse, so a bad point is rejected by OUR code even
// when the SPKI layer has already refused its curve identifier.

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <set>
#include <string>
#include <tuple>

#include "common/encoding.hpp"
#include "crypto/ecdh.hpp"
#include "support/vectors.hpp"

namespace e2ee::crypto::secp256k1 {
namespace {

Bytes unhex(std::string_view h) {
  auto b = hex_decode(h);
  EXPECT_TRUE(b.has_value()) << "bad hex in test: " << h;
  return b.value_or(Bytes{});
}

std::string hex(ByteView b) { return hex_encode(b); }

bool has_flag(const std::vector<std::string>& flags, std::string_view f) {
  return std::find(flags.begin(), flags.end(), f) != flags.end();
}

// ---- minimal strict DER (X.690 section 10) for SubjectPublicKeyInfo ----

struct Tlv {
  std::uint8_t tag;
  ByteView content;
};

// One TLV at `pos`: single-byte tag, definite length in minimal form.
std::optional<Tlv> read_tlv(ByteView in, std::size_t& pos) {
  if (pos + 2 > in.size()) return std::nullopt;
  const std::uint8_t tag = in[pos++];
  if ((tag & 0x1f) == 0x1f) return std::nullopt;  // multi-byte tags never occur in SPKI
  std::size_t len = in[pos++];
  if (len == 0x80) return std::nullopt;  // indefinite length is BER, not DER
  if (len > 0x80) {
    const std::size_t n = len & 0x7f;
    if (n > 2 || pos + n > in.size() || in[pos] == 0) return std::nullopt;
    len = 0;
    for (std::size_t i = 0; i < n; ++i) len = (len << 8) | in[pos++];
    if (len < 0x80) return std::nullopt;  // long form where short form fits
  }
  if (len > in.size() - pos) return std::nullopt;
  Tlv t{tag, in.subspan(pos, len)};
  pos += len;
  return t;
}

// The whole of `in` must be exactly one TLV with tag `tag`.
std::optional<ByteView> expect_only(ByteView in, std::uint8_t tag) {
  std::size_t pos = 0;
  auto t = read_tlv(in, pos);
  if (!t || t->tag != tag || pos != in.size()) return std::nullopt;
  return t->content;
}

enum class CurveId { secp256k1, other_named, explicit_parameters };

struct Spki {
  CurveId curve;
  Bytes point;
};

constexpr std::uint8_t kSequence = 0x30, kOid = 0x06, kBitString = 0x03;

std::optional<Spki> decode_spki(ByteView der) {
  auto spki = expect_only(der, kSequence);
  if (!spki) return std::nullopt;
  std::size_t pos = 0;
  auto alg = read_tlv(*spki, pos);
  auto key = read_tlv(*spki, pos);
  if (!alg || !key || alg->tag != kSequence || key->tag != kBitString || pos != spki->size()) return std::nullopt;

  std::size_t apos = 0;
  auto oid = read_tlv(alg->content, apos);
  auto params = read_tlv(alg->content, apos);
  if (!oid || !params || oid->tag != kOid || apos != alg->content.size()) return std::nullopt;
  // id-ecPublicKey, RFC 5480 section 2.1.1: 1.2.840.10045.2.1
  static const Bytes kEcPublicKey = unhex("2a8648ce3d0201");
  if (!std::equal(oid->content.begin(), oid->content.end(), kEcPublicKey.begin(), kEcPublicKey.end()))
    return std::nullopt;

  Spki out{};
  if (params->tag == kOid) {
    // secp256k1, SEC 2 section A.2: 1.3.132.0.10
    static const Bytes kSecp256k1 = unhex("2b8104000a");
    out.curve = std::equal(params->content.begin(), params->content.end(), kSecp256k1.begin(), kSecp256k1.end())
                    ? CurveId::secp256k1
                    : CurveId::other_named;
  } else if (params->tag == kSequence) {
    out.curve = CurveId::explicit_parameters;  // RFC 5480 forbids these; we never accept them
  } else {
    return std::nullopt;
  }
  // BIT STRING: first content byte counts unused bits, which must be 0 for a point.
  if (key->content.empty() || key->content[0] != 0) return std::nullopt;
  out.point.assign(key->content.begin() + 1, key->content.end());
  return out;
}

// Wycheproof writes the scalar as a signed big-endian integer: a leading 00 when the top bit is
// set, and no leading zero bytes otherwise.
Bytes normalise_private(Bytes raw) {
  while (raw.size() > kPrivateKeyBytes && raw.front() == 0) raw.erase(raw.begin());
  if (raw.size() < kPrivateKeyBytes) raw.insert(raw.begin(), kPrivateKeyBytes - raw.size(), 0);
  return raw;
}

enum class Layer { none, spki, parse, ecdh };

const char* name(Layer l) {
  switch (l) {
    case Layer::none: return "none (accepted)";
    case Layer::spki: return "test SPKI decoder";
    case Layer::parse: return "PublicKey::parse";
    case Layer::ecdh: return "ecdh";
  }
  return "?";
}

// Which layer this file's header comment promises will reject an invalid case.
Layer expected_rejecting_layer(const std::vector<std::string>& flags) {
  if (has_flag(flags, "InvalidAsn") || has_flag(flags, "UnnamedCurve") || has_flag(flags, "ModifiedGroup"))
    return Layer::spki;
  if (has_flag(flags, "WrongCurve") && !has_flag(flags, "CompressedPoint")) return Layer::spki;
  return Layer::parse;
}

TEST(Secp256k1Wycheproof, EcdhSecp256k1) {
  E2EE_REQUIRE_VECTORS("wycheproof/ecdh_secp256k1_test.json");
  std::size_t valid = 0, invalid = 0, acceptable = 0, acceptable_accepted = 0;
  std::set<std::string> flags_by_spki, flags_by_parse;
  const std::size_t n = test::for_each_wycheproof_case(
      "wycheproof/ecdh_secp256k1_test.json", "ecdh_test_schema_v1.json",
      [&](test::Fields& group, const test::WycheproofCase& tc) {
        // Group fields are re-read for every case; Fields tolerates that.
        EXPECT_EQ(group.str("type"), "EcdhTest");
        EXPECT_EQ(group.str("curve"), "secp256k1");
        EXPECT_EQ(group.str("encoding"), "asn");
        const Bytes spki_der = tc.fields.hex("public");
        const Bytes priv_bytes = normalise_private(tc.fields.hex("private"));
        const Bytes shared = tc.fields.hex("shared");

        ASSERT_EQ(priv_bytes.size(), kPrivateKeyBytes);
        auto priv = PrivateKey::from_bytes(priv_bytes);
        ASSERT_TRUE(priv) << "every Wycheproof private key is in [1, n-1]: " << priv.error().message;

        Layer rejected_by = Layer::none;
        std::optional<SecretArray<32>> secret;
        const auto spki = decode_spki(spki_der);
        if (!spki || spki->curve != CurveId::secp256k1) {
          rejected_by = Layer::spki;
        } else if (auto pub = PublicKey::parse(spki->point); !pub) {
          rejected_by = Layer::parse;
          EXPECT_TRUE(pub.error().code == Errc::invalid_key || pub.error().code == Errc::invalid_length)
              << to_string(pub.error().code);
        } else if (auto s = ecdh(*priv, *pub); !s) {
          rejected_by = Layer::ecdh;
        } else {
          secret = *s;
        }

        // Independently of the curve identifier: a point that is not on secp256k1 (Wycheproof
        // then gives no shared secret) must fail OUR parse. And a valid secp256k1 point under a
        // foreign named-curve OID (WrongCurve tcIds 492, 493) must give Wycheproof's secret,
        // which shows the SPKI layer, not a broken point, is what refuses those cases.
        if (spki) {
          auto direct = PublicKey::parse(spki->point);
          if (shared.empty()) {
            EXPECT_FALSE(direct) << "a point without a shared secret must be rejected by PublicKey::parse";
          } else if (direct && spki->curve == CurveId::other_named) {
            auto s = ecdh(*priv, *direct);
            ASSERT_TRUE(s);
            EXPECT_EQ(hex(s->span()), hex(shared));
          }
        }

        switch (tc.result) {
          case test::Expected::valid:
            ++valid;
            ASSERT_EQ(rejected_by, Layer::none) << "rejected by " << name(rejected_by);
            EXPECT_EQ(hex(secret->span()), hex(shared));
            break;
          case test::Expected::invalid: {
            ++invalid;
            EXPECT_NE(rejected_by, Layer::none) << "an invalid public key was accepted";
            const Layer want = expected_rejecting_layer(tc.flags);
            EXPECT_EQ(name(rejected_by), std::string(name(want)));
            for (const auto& f : tc.flags) (rejected_by == Layer::spki ? flags_by_spki : flags_by_parse).insert(f);
            break;
          }
          case test::Expected::acceptable:
            ++acceptable;
            if (secret) {
              ++acceptable_accepted;
              EXPECT_EQ(hex(secret->span()), hex(shared));
            } else if (has_flag(tc.flags, "InvalidAsn")) {
              // Some of these keep the DER well-formed and damage the BIT STRING's content
              // (tcIds 729-731, 745, 746, 748: bytes appended, prepended, altered, truncated), so
              // the point itself is what fails.
              EXPECT_TRUE(rejected_by == Layer::spki || rejected_by == Layer::parse) << name(rejected_by);
            } else {
              EXPECT_EQ(name(rejected_by), std::string(name(expected_rejecting_layer(tc.flags))));
            }
            break;
        }
      });
  EXPECT_EQ(n, 752u);
  EXPECT_EQ(valid + invalid + acceptable, n);
  // The one acceptable case we take is the compressed public key (tcId 2); the rest are
  // malformed DER or explicit curve parameters, which the SPKI layer refuses.
  EXPECT_EQ(acceptable_accepted, 1u);
  // The split documented at the top of this file, as observed.
  EXPECT_EQ(flags_by_parse, (std::set<std::string>{"InvalidCurveAttack", "ModifiedPublicPoint", "InvalidPublic",
                                                   "InvalidEncoding", "InvalidCompressedPublic", "CompressedPoint",
                                                   "WrongCurve"}));
}

// ---- parsing ----

// SEC 2 section 2.4.1 generator G (y even).
constexpr std::string_view kGx = "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798";
constexpr std::string_view kGy = "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8";
// p - Gy, the y of -G = (n-1)G; computed with Python integers: (2**256 - 2**32 - 977) - Gy.
constexpr std::string_view kMinusGy = "b7c52588d95c3b9aa25b0403f1eef75702e84bb7597aabe663b82f6f04ef2777";
// The public key of the scalar 0x11..11 from ../shared/specs/near-phala-protocol.md section 12;
// its y is odd, so it exercises the 0x03 prefix.
constexpr std::string_view kOddX = "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa";
constexpr std::string_view kOddY = "385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1";

Bytes cat(std::initializer_list<std::string_view> parts) {
  Bytes out;
  for (auto p : parts) append(out, unhex(p));
  return out;
}

void expect_rejected(ByteView encoded, Errc code, const char* why) {
  auto r = PublicKey::parse(encoded);
  ASSERT_FALSE(r) << why;
  EXPECT_EQ(r.error().code, code) << why << ": " << r.error().message;
}

TEST(Secp256k1PublicKey, ThreeEncodingsGiveTheSameKey) {
  for (const auto& [x, y, prefix] : {std::tuple{kGx, kGy, "02"}, std::tuple{kOddX, kOddY, "03"}}) {
    auto full = PublicKey::parse(cat({"04", x, y}));
    auto raw = PublicKey::parse(cat({x, y}));
    auto comp = PublicKey::parse(cat({prefix, x}));
    ASSERT_TRUE(full && raw && comp);
    EXPECT_EQ(*full, *raw);
    EXPECT_EQ(*full, *comp);
    EXPECT_EQ(hex(full->uncompressed()), hex(cat({"04", x, y})));
    EXPECT_EQ(hex(comp->raw()), hex(cat({x, y})));
    EXPECT_EQ(hex(raw->compressed()), hex(cat({prefix, x})));
  }
  // Same x, other y: a different key, and compression must keep them apart.
  auto g = PublicKey::parse(cat({"04", kGx, kGy}));
  auto minus_g = PublicKey::parse(cat({"04", kGx, kMinusGy}));
  ASSERT_TRUE(g && minus_g);
  EXPECT_NE(*g, *minus_g);
  EXPECT_EQ(hex(minus_g->compressed()), hex(cat({"03", kGx})));
  auto minus_g_comp = PublicKey::parse(cat({"03", kGx}));
  ASSERT_TRUE(minus_g_comp);
  EXPECT_EQ(*minus_g_comp, *minus_g);
}

TEST(Secp256k1PublicKey, OffCurvePointsRejectedInEveryForm) {
  Bytes bad_y = unhex(kGy);
  bad_y.back() ^= 0x01;  // (Gx, Gy ^ 1) is not on the curve
  expect_rejected(cat({"04", kGx, hex(bad_y)}), Errc::invalid_key, "uncompressed off-curve");
  expect_rejected(cat({kGx, hex(bad_y)}), Errc::invalid_key, "raw off-curve");
  // x = 0: y^2 = 7 has no solution mod p (Wycheproof tcId 529 calls it a twist point).
  expect_rejected(cat({"02", std::string(64, '0')}), Errc::invalid_key, "compressed x without a point");
  expect_rejected(cat({"03", std::string(64, '0')}), Errc::invalid_key, "compressed x without a point");
  // x >= p in compressed form.
  expect_rejected(cat({"02", std::string(64, 'f')}), Errc::invalid_key, "compressed x >= p");
}

TEST(Secp256k1PublicKey, NonCanonicalCoordinatesRejected) {
  // A coordinate below 2^256 - p can also be written as itself + p, which still fits 32 bytes
  // and names the same point, but is not a field element and must fail. Two such points, found
  // and checked with Python integers (p = 2**256 - 2**32 - 977):
  //   (1, pow(8, (p+1)//4, p))            8 is a square mod p because p = 7 mod 8
  //   (pow(-6 % p, (p+2)//9, p), 1)       -6 is a cube mod p, and p = 7 mod 9
  constexpr std::string_view kSqrt8 = "4218f20ae6c646b363db68605822fb14264ca8d2587fdd6fbc750d587e76a7ee";
  constexpr std::string_view kCbrtMinus6 = "1fe1e5ef3fceb5c135ab7741333ce5a6e80d68167653f6b2b24bcbcfaaaff507";
  const std::string one = std::string(63, '0') + "1";
  const std::string one_plus_p = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc30";
  ASSERT_TRUE(PublicKey::parse(cat({"04", one, kSqrt8}))) << "the canonical point must parse";
  ASSERT_TRUE(PublicKey::parse(cat({"04", kCbrtMinus6, one}))) << "the canonical point must parse";
  expect_rejected(cat({"04", one_plus_p, kSqrt8}), Errc::invalid_key, "x = 1 + p");
  expect_rejected(cat({one_plus_p, kSqrt8}), Errc::invalid_key, "raw x = 1 + p");
  expect_rejected(cat({"04", kCbrtMinus6, one_plus_p}), Errc::invalid_key, "y = 1 + p");
  expect_rejected(cat({"02", one_plus_p}), Errc::invalid_key, "compressed x = 1 + p");
}

TEST(Secp256k1PublicKey, PrefixesOtherThanTheirFormRejected) {
  expect_rejected(cat({"05", kGx}), Errc::invalid_key, "compressed prefix 05");
  expect_rejected(cat({"04", kGx}), Errc::invalid_key, "uncompressed prefix on 33 bytes");
  expect_rejected(cat({"00", kGx}), Errc::invalid_key, "prefix 00 on 33 bytes");
  // OpenSSL's decoder accepts the X9.62 "hybrid" form 06/07 (y parity in the prefix); we don't.
  expect_rejected(cat({"06", kGx, kGy}), Errc::invalid_key, "hybrid 06");
  expect_rejected(cat({"07", kGx, kGy}), Errc::invalid_key, "hybrid 07");
  expect_rejected(cat({"02", kGx, kGy}), Errc::invalid_key, "compressed prefix on 65 bytes");
  expect_rejected(cat({"00", kGx, kGy}), Errc::invalid_key, "prefix 00 on 65 bytes");
}

TEST(Secp256k1PublicKey, PointAtInfinityRejected) {
  // SEC 1 section 2.3.3 encodes infinity as the single byte 00.
  expect_rejected(unhex("00"), Errc::invalid_length, "infinity (00)");
  // Zero coordinates, the common in-band stand-in for infinity: (0, 0) is not on the curve.
  expect_rejected(Bytes(64, 0), Errc::invalid_key, "raw zeros");
  expect_rejected(cat({"04", std::string(128, '0')}), Errc::invalid_key, "04 || zeros");
  expect_rejected(Bytes(33, 0), Errc::invalid_key, "33 zero bytes");
}

TEST(Secp256k1PublicKey, WrongLengthsRejected) {
  const Bytes full = cat({"04", kGx, kGy});
  for (std::size_t len : {0, 1, 31, 32, 34, 63, 66, 97}) {
    Bytes b(len, 0x04);
    std::copy_n(full.begin(), std::min(len, full.size()), b.begin());
    expect_rejected(b, Errc::invalid_length, "wrong length");
  }
}

// ---- private keys ----

// n (SEC 2 section 2.4.1)
constexpr std::string_view kN = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";
constexpr std::string_view kNMinus1 = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140";

void expect_private_rejected(ByteView scalar, Errc code, const char* why) {
  auto r = PrivateKey::from_bytes(scalar);
  ASSERT_FALSE(r) << why;
  EXPECT_EQ(r.error().code, code) << why;
}

TEST(Secp256k1PrivateKey, RangeIsOneToNMinusOne) {
  expect_private_rejected(Bytes(32, 0), Errc::invalid_key, "0");
  expect_private_rejected(unhex(kN), Errc::invalid_key, "n");
  expect_private_rejected(unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142"), Errc::invalid_key,
                          "n + 1");
  // Greater than n in the top byte only, and in the last differing byte only.
  expect_private_rejected(unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364241"), Errc::invalid_key,
                          "n + 0x100");
  expect_private_rejected(Bytes(32, 0xff), Errc::invalid_key, "2^256 - 1");
  expect_private_rejected(Bytes(31, 1), Errc::invalid_length, "31 bytes");
  expect_private_rejected(Bytes(33, 1), Errc::invalid_length, "33 bytes");
  expect_private_rejected(Bytes{}, Errc::invalid_length, "empty");

  Bytes one(32, 0);
  one[31] = 1;
  auto k1 = PrivateKey::from_bytes(one);
  ASSERT_TRUE(k1);
  EXPECT_EQ(hex(k1->public_key().raw()), std::string(kGx) + std::string(kGy));
  auto kn1 = PrivateKey::from_bytes(unhex(kNMinus1));
  ASSERT_TRUE(kn1);
  EXPECT_EQ(hex(kn1->public_key().raw()), std::string(kGx) + std::string(kMinusGy));
  // Just below n in a middle byte, to exercise the borrow chain of the range check.
  auto below = PrivateKey::from_bytes(unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03abfd25e8cd0364141"));
  EXPECT_TRUE(below);
}

TEST(Secp256k1PrivateKey, EthereumAddresses) {
  // Widely published addresses of the private keys 1, 2 and 3 (e.g. ethers.js and web3 test
  // suites); re-checked once with @noble/curves 2.4.0 + @noble/hashes keccak_256.
  const struct {
    std::uint8_t d;
    const char* address;
  } cases[] = {{1, "7e5f4552091a69125d5dfcb7b8c2659029395bdf"},
               {2, "2b5ad5c4795c026514f8317c7a215e218dccd6cf"},
               {3, "6813eb9362372eef6200f3b1dbc3f819671cba69"}};
  for (const auto& c : cases) {
    Bytes d(32, 0);
    d[31] = c.d;
    auto k = PrivateKey::from_bytes(d);
    ASSERT_TRUE(k);
    EXPECT_EQ(hex(k->public_key().ethereum_address()), c.address);
  }
}

TEST(Secp256k1PrivateKey, GenerateGivesDistinctConsistentKeys) {
  const auto a = PrivateKey::generate();
  const auto b = PrivateKey::generate();
  EXPECT_NE(hex(a.bytes().span()), hex(b.bytes().span()));
  auto again = PrivateKey::from_bytes(a.bytes().span());
  ASSERT_TRUE(again);
  EXPECT_EQ(again->public_key(), a.public_key());
}

TEST(Secp256k1Ecdh, BothSidesAgreeAndDifferentPeersDiffer) {
  const auto a = PrivateKey::generate();
  const auto b = PrivateKey::generate();
  const auto c = PrivateKey::generate();
  auto ab = ecdh(a, b.public_key());
  auto ba = ecdh(b, a.public_key());
  auto ac = ecdh(a, c.public_key());
  ASSERT_TRUE(ab && ba && ac);
  EXPECT_EQ(hex(ab->span()), hex(ba->span()));
  EXPECT_NE(hex(ab->span()), hex(ac->span()));
}

TEST(Secp256k1Ecdh, SharedSecretIsLeftPaddedX) {
  // d = 1 against a peer point P gives P's own x coordinate: checks that the output is x (not y
  // or a hash) and big-endian. The spec key's x has no leading zero, so also check G.
  Bytes one(32, 0);
  one[31] = 1;
  auto k1 = PrivateKey::from_bytes(one);
  auto p = PublicKey::parse(cat({"04", kOddX, kOddY}));
  ASSERT_TRUE(k1 && p);
  auto s = ecdh(*k1, *p);
  ASSERT_TRUE(s);
  EXPECT_EQ(hex(s->span()), kOddX);
  // (1, sqrt(8)) has x = 1: the secret must be 31 zero bytes then 01, not a short string.
  auto small_x = PublicKey::parse(cat({"04", std::string(63, '0') + "1",
                                       "4218f20ae6c646b363db68605822fb14264ca8d2587fdd6fbc750d587e76a7ee"}));
  ASSERT_TRUE(small_x);
  auto s2 = ecdh(*k1, *small_x);
  ASSERT_TRUE(s2);
  EXPECT_EQ(hex(s2->span()), std::string(63, '0') + "1");
}

}  // namespace
}  // namespace e2ee::crypto::secp256k1

// Field envelopes of Venice, NEAR AI and dstack (src/protocol/field/envelope.hpp).
//
// Expected values come from outside the code under test: the specs' known-answer vectors
// (near-phala-protocol.md §12, computed with Python `cryptography`; venice-protocol.md §4.4, the
// same ECDSA vector also opened by npm venice-e2ee), NEAR inference-proxy's PyNaCl vector, and
// libsodium / OpenSSL called directly in this file for the NaCl box and NEAR v2 layouts.

#include "protocol/field/envelope.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>

#include <algorithm>
#include <array>
#include <set>
#include <string>
#include <vector>

#include "common/encoding.hpp"
#include "protocol/field/envelope_detail.hpp"

namespace e2ee::protocol::field {
namespace {

Bytes unhex(std::string_view h) {
  auto b = hex_decode(h);
  EXPECT_TRUE(b.has_value()) << "bad hex in test: " << h;
  return b.value_or(Bytes{});
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

template <typename T>
::testing::AssertionResult fails_with(const Result<T>& r, Errc want) {
  if (r) return ::testing::AssertionFailure() << "succeeded; expected " << to_string(want);
  if (r.error().code != want)
    return ::testing::AssertionFailure() << "failed with " << to_string(r.error().code) << " (" << r.error().message
                                         << "); expected " << to_string(want);
  return ::testing::AssertionSuccess();
}

std::string str(const Bytes& b) { return std::string(b.begin(), b.end()); }

constexpr Scheme kAllSchemes[] = {Scheme::ecdsa, Scheme::ed25519_aes_gcm, Scheme::ed25519_box, Scheme::ed25519_xchacha};

// ---- known answers: near-phala-protocol.md §12 and venice-protocol.md §4.4 ----

constexpr std::string_view kServerPubRaw =
    "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa"
    "385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1";
constexpr std::string_view kEphPub65 =
    "04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
    "6728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a";
constexpr std::string_view kIv = "000102030405060708090a0b";
constexpr std::string_view kV1CtTag = "a84e92c951" "a98a94fe8f00168f40909b61642df01c";
constexpr std::string_view kV2Aad = "v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000";
constexpr std::string_view kV2CtTag = "a84e92c951" "0ce7a9d341d3ad37aaf6918123dac554";

constexpr std::string_view kEdServerPub = "17cb79fb2b4120f2b1ec65e4198d6e08b28e813feb01e4a400839b85e18080ce";
constexpr std::string_view kEdEphPub = "ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b";
constexpr std::string_view kEdCtTag = "4df58905c8" "3c1877d1b32a643528ed3931a2a06fc7";

std::string ecdsa_wire_v1() { return std::string(kEphPub65) + std::string(kIv) + std::string(kV1CtTag); }
std::string ecdsa_wire_v2() { return std::string(kEphPub65) + std::string(kIv) + std::string(kV2CtTag); }
std::string ed_wire() { return std::string(kEdEphPub) + std::string(kIv) + std::string(kEdCtTag); }

KeyPair key_of(Algo algo, std::uint8_t fill) { return std::move(KeyPair::from_secret(algo, Bytes(32, fill)).value()); }

TEST(FieldEnvelopeKat, EcdsaServerKeyIsPublishedAsSpecSays) {
  const KeyPair server = key_of(Algo::ecdsa, 0x11);
  EXPECT_EQ(hex_encode(server.public_raw()), kServerPubRaw);  // 128 hex, X‖Y without 04 (§2)
  EXPECT_EQ(hex_encode(server.public_uncompressed()), "04" + std::string(kServerPubRaw));
}

TEST(FieldEnvelopeKat, EcdsaV1WireOpens) {
  const KeyPair server = key_of(Algo::ecdsa, 0x11);
  auto plain = open_hex(Scheme::ecdsa, server, ecdsa_wire_v1());
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(str(*plain), "hello");
  // Either case on input (§4.3).
  auto upper_case = open_hex(Scheme::ecdsa, server, upper(ecdsa_wire_v1()));
  ASSERT_TRUE(upper_case);
  EXPECT_EQ(str(*upper_case), "hello");
  // v1 has no AAD: the same bytes do not open under an AAD.
  EXPECT_TRUE(fails_with(open_hex(Scheme::ecdsa, server, ecdsa_wire_v1(), as_bytes(kV2Aad)), Errc::authentication_failed));
}

TEST(FieldEnvelopeKat, EcdsaV2WireOpensOnlyWithItsAad) {
  const KeyPair server = key_of(Algo::ecdsa, 0x11);
  auto plain = open_hex(Scheme::ecdsa, server, ecdsa_wire_v2(), as_bytes(kV2Aad));
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(str(*plain), "hello");
  EXPECT_TRUE(fails_with(open_hex(Scheme::ecdsa, server, ecdsa_wire_v2()), Errc::authentication_failed));
  // Every component of the AAD matters.
  const std::vector<std::string> changed = {
      "v1|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000",
      "v2|resp|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000",
      "v2|req|algo=ed25519|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000",
      "v2|req|algo=ecdsa|model=n|m=0|c=-|n=nonce1234567890123|ts=1700000000",
      "v2|req|algo=ecdsa|model=m|m=1|c=-|n=nonce1234567890123|ts=1700000000",
      "v2|req|algo=ecdsa|model=m|m=0|c=0|n=nonce1234567890123|ts=1700000000",
      "v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890124|ts=1700000000",
      "v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000001",
      "v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=01700000000",
      std::string(kV2Aad) + " ",
  };
  for (const auto& aad : changed) {
    EXPECT_TRUE(fails_with(open_hex(Scheme::ecdsa, server, ecdsa_wire_v2(), as_bytes(aad)), Errc::authentication_failed))
        << aad;
  }
}

TEST(FieldEnvelopeKat, EcdsaSealReproducesTheVectorsByteForByte) {
  auto to = PeerKey::parse_hex(Algo::ecdsa, kServerPubRaw);
  ASSERT_TRUE(to) << to.error().message;
  auto v1 = detail::seal_hex_with(Scheme::ecdsa, *to, Bytes(32, 0x22), unhex(kIv), as_bytes("hello"));
  ASSERT_TRUE(v1) << v1.error().message;
  EXPECT_EQ(*v1, ecdsa_wire_v1());
  auto v2 = detail::seal_hex_with(Scheme::ecdsa, *to, Bytes(32, 0x22), unhex(kIv), as_bytes("hello"), as_bytes(kV2Aad));
  ASSERT_TRUE(v2);
  EXPECT_EQ(*v2, ecdsa_wire_v2());
  // The 65-byte form of the same key seals identically (Venice publishes 130 hex with 04).
  auto to65 = PeerKey::parse_hex(Algo::ecdsa, "04" + std::string(kServerPubRaw));
  ASSERT_TRUE(to65);
  EXPECT_EQ(detail::seal_hex_with(Scheme::ecdsa, *to65, Bytes(32, 0x22), unhex(kIv), as_bytes("hello")).value(),
            ecdsa_wire_v1());
}

TEST(FieldEnvelopeKat, VeniceVectorIsTheEcdsaVector) {
  // venice-protocol.md §4.4: model key 32×0x11, ephemeral 32×0x22, no AAD, wire = pub65 ‖ IV ‖
  // a84e92c951 ‖ a98a94fe…; in the response direction whoever holds 0x11 opens it the same way.
  const std::string wire = std::string(kEphPub65) + "000102030405060708090a0b" + "a84e92c951" +
                           "a98a94fe8f00168f40909b61642df01c";
  EXPECT_EQ(wire.size(), 2u * (65 + 12 + 5 + 16));
  auto plain = open_hex(Scheme::ecdsa, key_of(Algo::ecdsa, 0x11), wire);
  ASSERT_TRUE(plain);
  EXPECT_EQ(str(*plain), "hello");
}

TEST(FieldEnvelopeKat, DstackEd25519WireOpensAndReproduces) {
  const KeyPair server = key_of(Algo::ed25519, 0x33);
  EXPECT_EQ(hex_encode(server.public_raw()), kEdServerPub);
  EXPECT_TRUE(server.public_uncompressed().empty());
  auto plain = open_hex(Scheme::ed25519_aes_gcm, server, ed_wire());
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(str(*plain), "hello");

  auto to = PeerKey::parse_hex(Algo::ed25519, kEdServerPub);
  ASSERT_TRUE(to) << to.error().message;
  auto sealed = detail::seal_hex_with(Scheme::ed25519_aes_gcm, *to, Bytes(32, 0x44), unhex(kIv), as_bytes("hello"));
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(*sealed, ed_wire());
  // The same bytes are not a NEAR envelope of either version.
  EXPECT_FALSE(open_hex(Scheme::ed25519_xchacha, server, ed_wire()));
  EXPECT_FALSE(open_hex(Scheme::ed25519_box, server, ed_wire()));
}

// ---- NEAR Ed25519 v1 (NaCl box): NEAR's PyNaCl vector and libsodium itself ----

// nearai/inference-proxy src/encryption.rs test_nacl_libsodium_cross_compat: the RFC 8032 test 1
// seed, and a wire made by PyNaCl 1.6.2 Box(ephemeral, server_x25519).encrypt(b"cross-compat test").
constexpr std::string_view kRfc8032Seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
constexpr std::string_view kPyNaClWire =
    "4f3d96155afaa5a7aa4a988fcbd318f973dd3ae41f2a31e91ab768e0774baa75"
    "05b5b46e1a991ea89e91c900ae6ea5e7b5a915e30fd4307aa710fd21515eaf95"
    "555ccfa2a1a3efcad963fd7bc5bf2ece02e0b17a9fe0f55fba";

struct SodiumKeys {
  Bytes ed_pk, x_sk, x_pk;
};
// The recipient's keys as libsodium derives them from an Ed25519 seed.
SodiumKeys sodium_keys(ByteView seed) {
  EXPECT_GE(sodium_init(), 0);
  SodiumKeys k{Bytes(32), Bytes(32), Bytes(32)};
  unsigned char sk[64];
  EXPECT_EQ(crypto_sign_seed_keypair(k.ed_pk.data(), sk, seed.data()), 0);
  EXPECT_EQ(crypto_sign_ed25519_sk_to_curve25519(k.x_sk.data(), sk), 0);
  EXPECT_EQ(crypto_sign_ed25519_pk_to_curve25519(k.x_pk.data(), k.ed_pk.data()), 0);
  sodium_memzero(sk, sizeof sk);
  return k;
}

TEST(FieldEnvelopeNearBox, OpensPyNaClXSalsaVector) {
  const Bytes seed = unhex(kRfc8032Seed);
  // Provenance check of the vector's keys (the values NEAR's test pins for libsodium).
  const SodiumKeys k = sodium_keys(seed);
  EXPECT_EQ(hex_encode(k.x_sk), "307c83864f2833cb427a2ef1c00a013cfdff2768d980c0a3a520f006904de94f");
  EXPECT_EQ(hex_encode(k.x_pk), "d85e07ec22b0ad881537c2f44d662d1a143cf830c57aca4305d85c7a90f6b62e");

  auto own = KeyPair::from_secret(Algo::ed25519, seed);
  ASSERT_TRUE(own);
  auto plain = open_hex(Scheme::ed25519_box, *own, kPyNaClWire);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(str(*plain), "cross-compat test");
  EXPECT_FALSE(open_hex(Scheme::ed25519_xchacha, *own, kPyNaClWire));
}

TEST(FieldEnvelopeNearBox, SealsRustCryptosChaChaBoxLayout) {
  // NEAR's server seals v1 with RustCrypto's ChaChaBox: HChaCha20 box key, then IETF
  // XChaCha20-Poly1305 with the tag last. Rebuilt here from libsodium's primitives.
  const Bytes seed(32, 0x5a);
  const SodiumKeys k = sodium_keys(seed);
  auto to = PeerKey::parse(Algo::ed25519, k.ed_pk);
  ASSERT_TRUE(to);
  Sealer sealer(Scheme::ed25519_box, *to);
  const std::string msg = "NEAR v1 box, sealed by us";
  auto hex = sealer.seal_hex(as_bytes(msg));
  ASSERT_TRUE(hex) << hex.error().message;
  const Bytes wire = unhex(*hex);
  ASSERT_EQ(wire.size(), 32 + 24 + 16 + msg.size());
  const unsigned char* eph = wire.data();
  const unsigned char* nonce = wire.data() + 32;
  const unsigned char* boxed = wire.data() + 56;
  const std::size_t boxed_len = wire.size() - 56;
  unsigned char box_key[32];
  ASSERT_EQ(crypto_box_curve25519xchacha20poly1305_beforenm(box_key, eph, k.x_sk.data()), 0);
  Bytes out(msg.size());
  unsigned long long out_len = 0;
  ASSERT_EQ(crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &out_len, nullptr, boxed, boxed_len, nullptr, 0, nonce,
                                                       box_key),
            0);
  EXPECT_EQ(str(out), msg);
  // Neither libsodium box opens it: it is not the secretbox layout.
  EXPECT_NE(crypto_box_open_easy(out.data(), boxed, boxed_len, nonce, eph, k.x_sk.data()), 0);
  EXPECT_NE(crypto_box_curve25519xchacha20poly1305_open_easy(out.data(), boxed, boxed_len, nonce, eph, k.x_sk.data()), 0);
}

TEST(FieldEnvelopeNearBox, OpensBoxesSealedWithEitherCipher) {
  const Bytes seed(32, 0x6b);
  const SodiumKeys k = sodium_keys(seed);
  auto own = KeyPair::from_secret(Algo::ed25519, seed);
  ASSERT_TRUE(own);
  for (const bool xchacha : {true, false}) {
    SCOPED_TRACE(xchacha ? "xchacha20" : "xsalsa20");
    unsigned char eph_pk[32], eph_sk[32], nonce[24];
    crypto_box_keypair(eph_pk, eph_sk);
    randombytes_buf(nonce, sizeof nonce);
    const std::string msg = "sealed by libsodium \xe2\x9c\x93";
    Bytes boxed(msg.size() + 16);
    const auto* m = reinterpret_cast<const unsigned char*>(msg.data());
    int rc;
    if (xchacha) {  // ChaChaBox: HChaCha20 box key, IETF XChaCha20-Poly1305, tag last
      unsigned char box_key[32];
      ASSERT_EQ(crypto_box_curve25519xchacha20poly1305_beforenm(box_key, k.x_pk.data(), eph_sk), 0);
      unsigned long long len = 0;
      rc = crypto_aead_xchacha20poly1305_ietf_encrypt(boxed.data(), &len, m, msg.size(), nullptr, 0, nullptr, nonce, box_key);
    } else {
      rc = crypto_box_easy(boxed.data(), m, msg.size(), nonce, k.x_pk.data(), eph_sk);
    }
    ASSERT_EQ(rc, 0);
    Bytes wire(eph_pk, eph_pk + 32);
    wire.insert(wire.end(), nonce, nonce + 24);
    append(wire, boxed);
    auto plain = open_hex(Scheme::ed25519_box, *own, hex_encode(wire));
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(str(*plain), msg);
  }
}

// ---- NEAR Ed25519 v2 (X25519 → HKDF → XChaCha20-Poly1305): by hand with libsodium and OpenSSL ----

// HKDF-SHA256, salt empty, L = 32, written out from RFC 5869 over OpenSSL's HMAC.
Bytes hkdf_by_hand(ByteView ikm, std::string_view info) {
  unsigned char prk[32];
  unsigned int prk_len = 0;
  HMAC(EVP_sha256(), "", 0, ikm.data(), ikm.size(), prk, &prk_len);
  Bytes message = to_bytes(info);
  message.push_back(0x01);
  unsigned char okm[32];
  unsigned int okm_len = 0;
  HMAC(EVP_sha256(), prk, static_cast<int>(prk_len), message.data(), message.size(), okm, &okm_len);
  return Bytes(okm, okm + 32);
}

TEST(FieldEnvelopeNearV2, OpensWhatLibsodiumSealsAndTheReverse) {
  const Bytes seed(32, 0x7c);
  const SodiumKeys k = sodium_keys(seed);
  auto own = KeyPair::from_secret(Algo::ed25519, seed);
  ASSERT_TRUE(own);

  // Client → us, built by hand (NV py/encrypted_agent_loop_verifier.py encrypt_to_server).
  unsigned char eph_pk[32], eph_sk[32], nonce[24], shared[32];
  crypto_box_keypair(eph_pk, eph_sk);
  randombytes_buf(nonce, sizeof nonce);
  ASSERT_EQ(crypto_scalarmult(shared, eph_sk, k.x_pk.data()), 0);
  const Bytes key = hkdf_by_hand(ByteView(shared, 32), "ed25519_encryption");
  const std::string msg = "v2 by hand";
  Bytes ct(msg.size() + 16);
  unsigned long long ct_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct.data(), &ct_len, reinterpret_cast<const unsigned char*>(msg.data()),
                                             msg.size(), nullptr, 0, nullptr, nonce, key.data());
  Bytes wire(eph_pk, eph_pk + 32);
  wire.insert(wire.end(), nonce, nonce + 24);
  append(wire, ct);
  auto plain = open_hex(Scheme::ed25519_xchacha, *own, hex_encode(wire));
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(str(*plain), msg);
  EXPECT_FALSE(open_hex(Scheme::ed25519_box, *own, hex_encode(wire)));  // v1 and v2 do not mix

  // Us → client, taken apart by hand.
  auto to = PeerKey::parse(Algo::ed25519, k.ed_pk);
  ASSERT_TRUE(to);
  Sealer sealer(Scheme::ed25519_xchacha, *to);
  auto hex = sealer.seal_hex(as_bytes(msg));
  ASSERT_TRUE(hex);
  const Bytes ours = unhex(*hex);
  ASSERT_EQ(ours.size(), 32 + 24 + msg.size() + 16);
  ASSERT_EQ(crypto_scalarmult(shared, k.x_sk.data(), ours.data()), 0);
  const Bytes key2 = hkdf_by_hand(ByteView(shared, 32), "ed25519_encryption");
  Bytes out(msg.size());
  unsigned long long out_len = 0;
  ASSERT_EQ(crypto_aead_xchacha20poly1305_ietf_decrypt(out.data(), &out_len, nullptr, ours.data() + 56, ours.size() - 56,
                                                       nullptr, 0, ours.data() + 32, key2.data()),
            0);
  EXPECT_EQ(str(out), msg);
}

// ---- round trips and properties, every scheme ----

struct Party {
  KeyPair own;
  PeerKey pub;
};
Party party(Algo algo) {
  KeyPair own = KeyPair::generate(algo);
  auto pub = PeerKey::parse(algo, own.public_raw());
  EXPECT_TRUE(pub);
  return Party{std::move(own), std::move(pub).value()};
}

class EveryScheme : public ::testing::TestWithParam<Scheme> {};

TEST_P(EveryScheme, RoundTripsTextEmptyAndLargePlaintexts) {
  const Scheme scheme = GetParam();
  const Party to = party(algo_of(scheme));
  Sealer sealer(scheme, to.pub);
  std::string large(100000, '\0');
  for (std::size_t i = 0; i < large.size(); ++i) large[i] = static_cast<char>(i * 7 + 3);
  for (const std::string& msg : {std::string("hello"), std::string(), std::string("\xe6\x97\xa5\xe6\x9c\xac"), large}) {
    auto hex = sealer.seal_hex(as_bytes(msg));
    ASSERT_TRUE(hex) << hex.error().message;
    EXPECT_EQ(hex->size(), 2 * (min_envelope_bytes(scheme) + msg.size()));
    EXPECT_TRUE(looks_like_envelope(scheme, *hex));
    EXPECT_EQ(*hex, hex_encode(unhex(*hex))) << "emitted in lower case";
    auto plain = open_hex(scheme, to.own, *hex);
    ASSERT_TRUE(plain) << plain.error().message;
    EXPECT_EQ(str(*plain), msg);
  }
}

TEST_P(EveryScheme, AadBindsWhereTheSchemeHasIt) {
  const Scheme scheme = GetParam();
  const Party to = party(algo_of(scheme));
  Sealer sealer(scheme, to.pub);
  const std::string aad = "v2|req|algo=x|model=m|m=0|c=-|n=nnnnnnnnnnnnnnnn|ts=5";
  if (scheme == Scheme::ed25519_box) {
    EXPECT_TRUE(fails_with(sealer.seal_hex(as_bytes("x"), as_bytes(aad)), Errc::invalid_argument));
    auto hex = sealer.seal_hex(as_bytes("x"));
    ASSERT_TRUE(hex);
    EXPECT_TRUE(fails_with(open_hex(scheme, to.own, *hex, as_bytes(aad)), Errc::invalid_argument));
    return;
  }
  auto hex = sealer.seal_hex(as_bytes("bound"), as_bytes(aad));
  ASSERT_TRUE(hex);
  EXPECT_TRUE(open_hex(scheme, to.own, *hex, as_bytes(aad)));
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, *hex), Errc::authentication_failed));
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, *hex, as_bytes(aad + "x")), Errc::authentication_failed));
  std::string flipped = aad;
  flipped[10] ^= 1;
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, *hex, as_bytes(flipped)), Errc::authentication_failed));
}

TEST_P(EveryScheme, TamperingAnyByteFails) {
  const Scheme scheme = GetParam();
  const Party to = party(algo_of(scheme));
  Sealer sealer(scheme, to.pub);
  auto hex = sealer.seal_hex(as_bytes("tamper me"));
  ASSERT_TRUE(hex);
  const Bytes wire = unhex(*hex);
  for (std::size_t i = 0; i < wire.size(); ++i) {
    for (const std::uint8_t bit : {0x01, 0x80}) {
      Bytes bad = wire;
      bad[i] ^= bit;
      auto r = open_hex(scheme, to.own, hex_encode(bad));
      ASSERT_FALSE(r) << "byte " << i << " bit " << int(bit) << " was not authenticated";
      // The ephemeral-key region may also fail key validation; everything else fails the tag.
      if (i >= (scheme == Scheme::ecdsa ? 65u : 32u)) {
        EXPECT_EQ(r.error().code, Errc::authentication_failed) << "byte " << i;
      } else {
        EXPECT_TRUE(r.error().code == Errc::authentication_failed || r.error().code == Errc::invalid_key) << "byte " << i;
      }
    }
  }
  // Truncated by one byte, and extended by one byte: still at least the minimum, tag fails.
  Bytes shorter(wire.begin(), wire.end() - 1);
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, hex_encode(shorter)), Errc::authentication_failed));
  Bytes longer = wire;
  longer.push_back(0);
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, hex_encode(longer)), Errc::authentication_failed));
}

TEST_P(EveryScheme, MalformedEnvelopesAreRefused) {
  const Scheme scheme = GetParam();
  const Party to = party(algo_of(scheme));
  const std::size_t min = min_envelope_bytes(scheme);
  const std::string ok_len(2 * min, 'a');
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, ""), Errc::malformed));
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, std::string(2 * min - 2, 'a')), Errc::malformed));  // one byte short
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, ok_len + "a"), Errc::malformed));                  // odd length
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, ok_len.substr(2) + "zz"), Errc::malformed));       // not hex
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, "0x" + ok_len), Errc::malformed));
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, ok_len.substr(2) + " a"), Errc::malformed));  // whitespace
  EXPECT_TRUE(fails_with(open_hex(scheme, to.own, "hello world"), Errc::malformed));
  EXPECT_FALSE(looks_like_envelope(scheme, ok_len.substr(2)));
  EXPECT_FALSE(looks_like_envelope(scheme, ok_len + "a"));
  EXPECT_FALSE(looks_like_envelope(scheme, ok_len.substr(1) + "g"));
  EXPECT_TRUE(looks_like_envelope(scheme, ok_len));
  EXPECT_TRUE(looks_like_envelope(scheme, upper(ok_len) + "Ff"));
}

TEST_P(EveryScheme, EphemeralKeyPerEnvelopeOrPerSealer) {
  const Scheme scheme = GetParam();
  const Party to = party(algo_of(scheme));
  const std::size_t eph = scheme == Scheme::ecdsa ? 65 : 32;
  const std::size_t nonce = (scheme == Scheme::ecdsa || scheme == Scheme::ed25519_aes_gcm) ? 12 : 24;
  for (const bool one : {false, true}) {
    Sealer sealer(scheme, to.pub, one);
    std::set<std::string> ephs, nonces;
    for (int i = 0; i < 4; ++i) {
      const std::string hex = sealer.seal_hex(as_bytes("same text")).value();
      ephs.insert(hex.substr(0, 2 * eph));
      nonces.insert(hex.substr(2 * eph, 2 * nonce));
      EXPECT_TRUE(open_hex(scheme, to.own, hex));  // a receiver takes the key from each envelope
    }
    EXPECT_EQ(ephs.size(), one ? 1u : 4u);
    EXPECT_EQ(nonces.size(), 4u) << "a fresh nonce for every envelope";
  }
}

TEST_P(EveryScheme, WrongRecipientAndWrongSchemeFail) {
  const Scheme scheme = GetParam();
  const Party to = party(algo_of(scheme));
  const Party other = party(algo_of(scheme));
  Sealer sealer(scheme, to.pub);
  const std::string hex = sealer.seal_hex(as_bytes("for someone else")).value();
  EXPECT_TRUE(fails_with(open_hex(scheme, other.own, hex), Errc::authentication_failed));
  const Party wrong_algo = party(algo_of(scheme) == Algo::ecdsa ? Algo::ed25519 : Algo::ecdsa);
  EXPECT_TRUE(fails_with(open_hex(scheme, wrong_algo.own, hex), Errc::invalid_argument));
  Sealer mismatched(scheme, wrong_algo.pub);
  EXPECT_TRUE(fails_with(mismatched.seal_hex(as_bytes("x")), Errc::invalid_argument));
}

TEST_P(EveryScheme, ErrorsCarryNoPlaintextOrKeyBytes) {
  const Scheme scheme = GetParam();
  const Party to = party(algo_of(scheme));
  const Party other = party(algo_of(scheme));
  const std::string secret = "SECRET-MARKER-7f3a";
  const std::string hex = Sealer(scheme, to.pub).seal_hex(as_bytes(secret)).value();
  auto r = open_hex(scheme, other.own, hex);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.find(secret), std::string::npos);
  EXPECT_EQ(r.error().message.find(hex.substr(0, 16)), std::string::npos);
  EXPECT_EQ(r.error().message.find(hex_encode(other.own.public_raw()).substr(0, 16)), std::string::npos);
}

std::string scheme_label(const ::testing::TestParamInfo<Scheme>& p) {
  switch (p.param) {
    case Scheme::ecdsa: return "ecdsa";
    case Scheme::ed25519_aes_gcm: return "ed25519_aes_gcm";
    case Scheme::ed25519_box: return "ed25519_box";
    case Scheme::ed25519_xchacha: return "ed25519_xchacha";
  }
  return "unknown";
}

INSTANTIATE_TEST_SUITE_P(Schemes, EveryScheme, ::testing::ValuesIn(kAllSchemes), scheme_label);

TEST(FieldEnvelope, MinimumSizes) {
  EXPECT_EQ(min_envelope_bytes(Scheme::ecdsa), 93u);  // 186 hex: Venice's MIN_ENCRYPTED_HEX_LEN
  EXPECT_EQ(min_envelope_bytes(Scheme::ed25519_aes_gcm), 60u);
  EXPECT_EQ(min_envelope_bytes(Scheme::ed25519_box), 72u);
  EXPECT_EQ(min_envelope_bytes(Scheme::ed25519_xchacha), 72u);
}

// ---- bad ephemeral keys inside envelopes ----

TEST(FieldEnvelopeBadKeys, EcdsaEphemeralMustBeAnUncompressedCurvePoint) {
  const KeyPair server = key_of(Algo::ecdsa, 0x11);
  const std::string tail = std::string(kIv) + std::string(kV1CtTag);
  const std::string point = std::string(kEphPub65).substr(2);
  for (const std::string prefix : {"02", "03", "05", "06", "07", "00"}) {
    EXPECT_TRUE(fails_with(open_hex(Scheme::ecdsa, server, prefix + point + tail), Errc::invalid_key)) << prefix;
  }
  std::string off_curve = std::string(kEphPub65);
  off_curve.back() = off_curve.back() == '0' ? '1' : '0';  // Y changed: no longer on the curve
  EXPECT_TRUE(fails_with(open_hex(Scheme::ecdsa, server, off_curve + tail), Errc::invalid_key));
  EXPECT_TRUE(fails_with(open_hex(Scheme::ecdsa, server, "04" + std::string(128, '0') + tail), Errc::invalid_key));
  // x = p (not reduced), an otherwise "valid looking" encoding.
  const std::string x_is_p = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f";
  EXPECT_TRUE(fails_with(open_hex(Scheme::ecdsa, server, "04" + x_is_p + point.substr(64) + tail), Errc::invalid_key));
}

// X25519 points of small order (0, 1, order 8, p-1, and the non-reduced p, p+1): each forces an
// all-zero shared secret for every clamped scalar.
const std::vector<std::string> kLowOrderX25519 = {
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
};

TEST(FieldEnvelopeBadKeys, NonCanonicalX25519EphemeralIsInvalidKey) {
  // RFC 7748 receivers ignore bit 255 and reduce u mod p, so these alias honest keys; no honest
  // sender emits them, and accepting them would give one envelope several encodings.
  const KeyPair own = key_of(Algo::ed25519, 0x33);
  std::string top_bit = ed_wire();
  top_bit[62] = 'f';  // byte 31 of the ephemeral key: 0x6b -> 0xfb
  EXPECT_TRUE(fails_with(open_hex(Scheme::ed25519_aes_gcm, own, top_bit), Errc::invalid_key));
  // u = p + 2 (aliases u = 2) and 2^255 - 1.
  for (const std::string u : {"efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                              "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"}) {
    EXPECT_TRUE(fails_with(open_hex(Scheme::ed25519_aes_gcm, own, u + ed_wire().substr(64)), Errc::invalid_key)) << u;
  }
}

TEST(FieldEnvelopeBadKeys, LowOrderX25519EphemeralIsInvalidKey) {
  const KeyPair own = key_of(Algo::ed25519, 0x33);
  for (const Scheme scheme : {Scheme::ed25519_aes_gcm, Scheme::ed25519_box, Scheme::ed25519_xchacha}) {
    const std::size_t rest = min_envelope_bytes(scheme) - 32 + 5;
    for (const auto& point : kLowOrderX25519) {
      EXPECT_TRUE(fails_with(open_hex(scheme, own, point + std::string(2 * rest, '5')), Errc::invalid_key)) << point;
    }
  }
}

// ---- keys ----

TEST(FieldPeerKey, EcdsaEncodings) {
  auto raw = PeerKey::parse_hex(Algo::ecdsa, kServerPubRaw);
  auto full = PeerKey::parse_hex(Algo::ecdsa, "04" + std::string(kServerPubRaw));
  auto prefixed = PeerKey::parse_hex(Algo::ecdsa, "0x" + upper(std::string(kServerPubRaw)));
  ASSERT_TRUE(raw && full && prefixed);
  EXPECT_TRUE(*raw == *full);
  EXPECT_TRUE(*raw == *prefixed);
  EXPECT_EQ(hex_encode(full->public_raw()), kServerPubRaw);
  EXPECT_EQ(raw->algo(), Algo::ecdsa);
  // Compressed form of the same point: refused (no protocol here sends it; risk R1).
  const std::string x = std::string(kServerPubRaw).substr(0, 64);
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, "03" + x), Errc::invalid_key));
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, "02" + x), Errc::invalid_key));
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, "05" + std::string(kServerPubRaw)), Errc::invalid_key));
  std::string off = std::string(kServerPubRaw);
  off.back() = off.back() == '1' ? '2' : '1';
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, off), Errc::invalid_key));
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, std::string(128, '0')), Errc::invalid_key));
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, std::string(kServerPubRaw).substr(2)), Errc::invalid_length));
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, "zz"), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ecdsa, std::string(kServerPubRaw) + "0"), Errc::invalid_argument));
}

TEST(FieldPeerKey, Ed25519Validation) {
  auto good = PeerKey::parse_hex(Algo::ed25519, kEdServerPub);
  ASSERT_TRUE(good);
  EXPECT_EQ(hex_encode(good->public_raw()), kEdServerPub);
  // The base point is fine; small-order, mixed-order and non-canonical encodings are not.
  EXPECT_TRUE(PeerKey::parse_hex(Algo::ed25519, "5866666666666666666666666666666666666666666666666666666666666666"));
  for (const std::string bad : {
           "0100000000000000000000000000000000000000000000000000000000000000",  // identity
           "0000000000000000000000000000000000000000000000000000000000000000",  // order 4
           "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // order 2
           "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",  // order 8
           "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",  // order 8
           "9599999999999999999999999999999999999999999999999999999999999999",  // B + (order-2 point)
           "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p, non-canonical
           "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",  // y = p + 1, non-canonical
           "0200000000000000000000000000000000000000000000000000000000000000",  // y = 2: not on the curve
       }) {
    EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ed25519, bad), Errc::invalid_key)) << bad;
  }
  EXPECT_TRUE(fails_with(PeerKey::parse_hex(Algo::ed25519, std::string(kEdServerPub).substr(2)), Errc::invalid_length));
}

TEST(FieldKeyPair, FromSecretAndAddress) {
  EXPECT_TRUE(fails_with(KeyPair::from_secret(Algo::ecdsa, Bytes(31, 1)), Errc::invalid_length));
  EXPECT_TRUE(fails_with(KeyPair::from_secret(Algo::ed25519, Bytes(33, 1)), Errc::invalid_length));
  EXPECT_TRUE(fails_with(KeyPair::from_secret(Algo::ecdsa, Bytes(32, 0)), Errc::invalid_key));
  EXPECT_TRUE(fails_with(
      KeyPair::from_secret(Algo::ecdsa, unhex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141")),
      Errc::invalid_key));  // the group order n
  // Private key 1 is the generator, whose Ethereum address is the well-known 0x7E5F…5Bdf.
  Bytes one(32, 0);
  one.back() = 1;
  auto key = KeyPair::from_secret(Algo::ecdsa, one);
  ASSERT_TRUE(key);
  EXPECT_EQ(hex_encode(key->ethereum_address()), "7e5f4552091a69125d5dfcb7b8c2659029395bdf");
  EXPECT_EQ(key->algo(), Algo::ecdsa);
  const KeyPair ed = KeyPair::generate(Algo::ed25519);
  EXPECT_EQ(ed.algo(), Algo::ed25519);
  EXPECT_EQ(ed.ethereum_address(), (std::array<std::uint8_t, 20>{}));
  EXPECT_EQ(ed.public_raw().size(), 32u);
  // Generated keys differ.
  EXPECT_NE(KeyPair::generate(Algo::ecdsa).public_raw(), KeyPair::generate(Algo::ecdsa).public_raw());
  EXPECT_NE(KeyPair::generate(Algo::ed25519).public_raw(), ed.public_raw());
}

TEST(FieldKeyPair, Ed25519SeedOpensWhatIsSealedToItsPublicKey) {
  // The recipient's X25519 key is derived from the seed (clamp(SHA-512(seed)[0:32])) and the
  // sender's from the Ed25519 public key (birational map): the two must meet. The §12 vector
  // checks the same pairing with fixed numbers; this checks it for a random seed.
  const KeyPair own = KeyPair::generate(Algo::ed25519);
  auto pub = PeerKey::parse(Algo::ed25519, own.public_raw());
  ASSERT_TRUE(pub);
  for (const Scheme s : {Scheme::ed25519_aes_gcm, Scheme::ed25519_box, Scheme::ed25519_xchacha}) {
    auto hex = Sealer(s, *pub).seal_hex(as_bytes("meet"));
    ASSERT_TRUE(hex);
    EXPECT_TRUE(open_hex(s, own, *hex));
  }
}

TEST(FieldAlgo, Names) {
  EXPECT_EQ(algo_name(Algo::ecdsa), "ecdsa");
  EXPECT_EQ(algo_name(Algo::ed25519), "ed25519");
  EXPECT_EQ(algo_of(Scheme::ecdsa), Algo::ecdsa);
  EXPECT_EQ(algo_of(Scheme::ed25519_aes_gcm), Algo::ed25519);
  EXPECT_EQ(algo_of(Scheme::ed25519_box), Algo::ed25519);
  EXPECT_EQ(algo_of(Scheme::ed25519_xchacha), Algo::ed25519);
}

}  // namespace
}  // namespace e2ee::protocol::field

// Header negotiation of the field-E2EE families (near-phala-protocol.md §3, §10.1; venice §5).

#include "gateway/field_negotiation.hpp"

#include <gtest/gtest.h>

#include "common/encoding.hpp"

namespace e2ee::gateway {
namespace {

namespace field = protocol::field;
using Clock = std::chrono::system_clock;

struct Fixture {
  FieldKeys keys{field::KeyPair::generate(field::Algo::ecdsa), field::KeyPair::generate(field::Algo::ed25519)};
  field::KeyPair client_ecdsa = field::KeyPair::generate(field::Algo::ecdsa);
  field::KeyPair client_ed = field::KeyPair::generate(field::Algo::ed25519);
  Clock::time_point now = Clock::time_point(std::chrono::seconds(1700000000));

  std::variant<std::monostate, FieldSession, FieldError> run(const http::Headers& h) const {
    return negotiate_field_e2ee(h, keys, std::chrono::seconds(300), now);
  }
  http::Headers dstack(std::string algo = "ecdsa") const {
    http::Headers h;
    h.set("X-Signing-Algo", algo);
    const bool ec = algo == "ecdsa" || algo == "ECDSA";
    h.set("X-Client-Pub-Key", hex_encode(ec ? client_ecdsa.public_raw() : client_ed.public_raw()));
    h.set("X-Model-Pub-Key", hex_encode(ec ? keys.ecdsa.public_raw() : keys.ed25519.public_raw()));
    return h;
  }
};

const FieldSession& session(const std::variant<std::monostate, FieldSession, FieldError>& r) {
  if (auto* e = std::get_if<FieldError>(&r)) ADD_FAILURE() << e->type << ": " << e->message;
  return std::get<FieldSession>(r);
}

std::string type_of(const std::variant<std::monostate, FieldSession, FieldError>& r) {
  auto* e = std::get_if<FieldError>(&r);
  return e ? e->type : "";
}

TEST(FieldNegotiation, NoHeadersIsAPlainRequest) {
  Fixture f;
  EXPECT_TRUE(std::holds_alternative<std::monostate>(f.run({})));
  http::Headers only_v2;
  only_v2.set("X-E2EE-Nonce", "nonce1234567890123");
  only_v2.set("X-E2EE-Timestamp", "1700000000");
  EXPECT_TRUE(std::holds_alternative<std::monostate>(f.run(only_v2))) << "version headers alone do not switch E2EE on";
}

TEST(FieldNegotiation, DstackEcdsaV1) {
  Fixture f;
  const auto r = f.run(f.dstack("ECDSA"));
  const auto& s = session(r);
  EXPECT_EQ(s.family, FieldFamily::dstack);
  EXPECT_EQ(s.schemes, std::vector<field::Scheme>{field::Scheme::ecdsa});
  EXPECT_EQ(s.version, 1);
  EXPECT_TRUE(s.one_ephemeral);
  EXPECT_FALSE(s.policy.v2);
}

TEST(FieldNegotiation, DstackV2ExplicitAndImplicitAndTheVersionOneQuirk) {
  Fixture f;
  for (const char* version : {"2", "", "1"}) {
    auto h = f.dstack();
    if (*version) h.set("X-E2EE-Version", version);
    h.set("X-E2EE-Nonce", "nonce1234567890123");
    h.set("X-E2EE-Timestamp", "1700000100");
    const auto r = f.run(h);
    const auto& s = session(r);
    EXPECT_EQ(s.version, 2) << "X-E2EE-Version '" << version << "'";
    ASSERT_TRUE(s.policy.v2);
    EXPECT_EQ(s.policy.v2->nonce, "nonce1234567890123");
    EXPECT_EQ(s.policy.v2->timestamp, 1700000100);
  }
}

TEST(FieldNegotiation, ErrorsCarryTheReferenceTypes) {
  Fixture f;
  auto missing = f.dstack();
  missing.remove("X-Model-Pub-Key");
  EXPECT_EQ(type_of(f.run(missing)), "e2ee_header_missing");
  EXPECT_EQ(type_of(f.run(f.dstack("rsa"))), "e2ee_invalid_signing_algo");
  auto nonhex = f.dstack();
  nonhex.set("X-Client-Pub-Key", "zz");
  EXPECT_EQ(type_of(f.run(nonhex)), "e2ee_invalid_public_key");
  auto version = f.dstack();
  version.set("X-E2EE-Version", "3");
  EXPECT_EQ(type_of(f.run(version)), "e2ee_invalid_version");
  auto half = f.dstack();
  half.set("X-E2EE-Nonce", "nonce1234567890123");
  EXPECT_EQ(type_of(f.run(half)), "e2ee_header_missing");
  auto v2_bare = f.dstack();
  v2_bare.set("X-E2EE-Version", "2");
  EXPECT_EQ(type_of(f.run(v2_bare)), "e2ee_header_missing");
  auto short_nonce = f.dstack();
  short_nonce.set("X-E2EE-Nonce", "short-nonce1234");  // 15 characters
  short_nonce.set("X-E2EE-Timestamp", "1700000000");
  EXPECT_EQ(type_of(f.run(short_nonce)), "e2ee_invalid_nonce");
  for (const char* ts : {"abc", "17e8", "", "1700000000.5"}) {
    auto bad_ts = f.dstack();
    bad_ts.set("X-E2EE-Nonce", "nonce1234567890123");
    bad_ts.set("X-E2EE-Timestamp", ts);
    EXPECT_TRUE(type_of(f.run(bad_ts)) == "e2ee_invalid_timestamp" || type_of(f.run(bad_ts)) == "e2ee_header_missing") << ts;
  }
  // 301 s either side of `now`, and the int64 extremes (now - ts must not overflow: it once
  // let INT64_MIN + now pass as fresh; found by fuzz/field_negotiation).
  for (const char* ts : {"1699999699", "1700000301", "-9223372036854775808", "9223372036854775807",
                         "-9223372035154775808"}) {
    auto old = f.dstack();
    old.set("X-E2EE-Nonce", "nonce1234567890123");
    old.set("X-E2EE-Timestamp", ts);
    EXPECT_EQ(type_of(f.run(old)), "e2ee_invalid_timestamp") << ts;
  }
}

TEST(FieldNegotiation, TheClientKeyIsValidatedBeforeAnythingElse) {
  Fixture f;
  auto off_curve = f.dstack();
  std::string key = hex_encode(f.client_ecdsa.public_raw());
  key[127] = key[127] == '0' ? '1' : '0';  // change y: the point leaves the curve
  off_curve.set("X-Client-Pub-Key", key);
  EXPECT_EQ(type_of(f.run(off_curve)), "e2ee_invalid_public_key");
  auto compressed_wrong_len = f.dstack();
  compressed_wrong_len.set("X-Client-Pub-Key", "02" + std::string(60, 'a'));
  EXPECT_EQ(type_of(f.run(compressed_wrong_len)), "e2ee_invalid_public_key");
  auto low_order = f.dstack("ed25519");
  low_order.set("X-Client-Pub-Key", std::string(64, '0'));  // the identity point: small order
  EXPECT_EQ(type_of(f.run(low_order)), "e2ee_invalid_public_key");
}

TEST(FieldNegotiation, StaleModelKeyIs400ForDstackAnd421ForNear) {
  Fixture f;
  const auto other = field::KeyPair::generate(field::Algo::ecdsa);
  auto dstack = f.dstack();
  dstack.set("X-Model-Pub-Key", hex_encode(other.public_raw()));
  auto r = f.run(dstack);
  EXPECT_EQ(type_of(r), "e2ee_model_key_mismatch");
  EXPECT_EQ(std::get<FieldError>(r).status, 400);
  auto near = dstack;
  near.set("X-Encryption-Version", "1");
  r = f.run(near);
  EXPECT_EQ(std::get<FieldError>(r).status, 421);
  EXPECT_EQ(type_of(r), "provider_error");
  // The 65-byte form of our own key matches too.
  auto uncompressed = f.dstack();
  uncompressed.set("X-Model-Pub-Key", hex_encode(f.keys.ecdsa.public_uncompressed()));
  EXPECT_TRUE(std::holds_alternative<FieldSession>(f.run(uncompressed)));
}

// near-phala-protocol.md §3 step 5: dstack normalises the ECDSA model key to 65 bytes, and any
// other length is a ValueError (invalid_e2ee_request), not a mismatch.
TEST(FieldNegotiation, AnEcdsaModelKeyOfTheWrongLengthIsAnInvalidRequest) {
  Fixture f;
  const Bytes own = f.keys.ecdsa.public_uncompressed();
  Bytes compressed{static_cast<std::uint8_t>((own[64] & 1) ? 0x03 : 0x02)};
  compressed.insert(compressed.end(), own.begin() + 1, own.begin() + 33);
  Bytes wrong_prefix = own;
  wrong_prefix[0] = 0x05;
  for (const Bytes& key : {compressed, wrong_prefix, Bytes(own.begin(), own.begin() + 40)}) {
    auto h = f.dstack();
    h.set("X-Model-Pub-Key", hex_encode(key));
    const auto r = f.run(h);
    EXPECT_EQ(type_of(r), "invalid_e2ee_request") << hex_encode(key);
    ASSERT_TRUE(std::holds_alternative<FieldError>(r));
    EXPECT_EQ(std::get<FieldError>(r).status, 400);
  }
  auto near = f.dstack();
  near.set("X-Model-Pub-Key", hex_encode(compressed));
  near.set("X-Encrypt-All-Fields", "true");
  EXPECT_EQ(type_of(f.run(near)), "provider_error") << "NEAR's answer to any key it does not hold is the 421";
}

// §4.1 and §9: a failed tag and a too-short envelope are e2ee_decryption_failed; the rest of the
// ValueErrors (not hex, a bad envelope key, non-UTF-8 plaintext) are invalid_e2ee_request.
TEST(FieldNegotiation, RequestOpenErrorsMapToTheReferenceTypes) {
  EXPECT_EQ(request_open_error(make_error(Errc::authentication_failed, "messages[0].content: envelope did not authenticate")).type,
            "e2ee_decryption_failed");
  const FieldError short_one =
      request_open_error(make_error(Errc::malformed, "messages[1].content: envelope too short: 50 bytes, minimum 93"));
  EXPECT_EQ(short_one.type, "e2ee_decryption_failed");
  EXPECT_EQ(short_one.status, 400);
  EXPECT_NE(short_one.message.find("too short"), std::string::npos) << short_one.message;
  for (const Error& e : {make_error(Errc::malformed, "messages[0].content: decrypted text is not valid UTF-8"),
                         make_error(Errc::invalid_argument, "messages[0].content: encrypted field must be hex-encoded"),
                         make_error(Errc::invalid_key, "messages[0].content: envelope's ephemeral key is not a valid secp256k1 point"),
                         make_error(Errc::malformed, "messages.content: duplicate key")}) {
    const FieldError mapped = request_open_error(e);
    EXPECT_EQ(mapped.type, "invalid_e2ee_request") << e.message;
    EXPECT_EQ(mapped.status, 400);
  }
}

TEST(FieldNegotiation, Ed25519SchemesByFamilyAndVersion) {
  Fixture f;
  EXPECT_EQ(session(f.run(f.dstack("ed25519"))).schemes,
            (std::vector<field::Scheme>{field::Scheme::ed25519_aes_gcm, field::Scheme::ed25519_box}))
      << "without any version header both v1 wire formats are possible";
  auto v2 = f.dstack("ed25519");
  v2.set("X-E2EE-Version", "2");
  v2.set("X-E2EE-Nonce", "nonce1234567890123");
  v2.set("X-E2EE-Timestamp", "1700000000");
  EXPECT_EQ(session(f.run(v2)).schemes, std::vector<field::Scheme>{field::Scheme::ed25519_aes_gcm});
  auto near1 = f.dstack("ed25519");
  near1.set("X-Encryption-Version", "1");
  EXPECT_EQ(session(f.run(near1)).schemes, std::vector<field::Scheme>{field::Scheme::ed25519_box});
  auto near2 = f.dstack("ed25519");
  near2.set("X-Encryption-Version", "2");
  near2.set("X-Encrypt-All-Fields", "TRUE");
  const auto r = f.run(near2);
  const auto& s = session(r);
  EXPECT_EQ(s.schemes, std::vector<field::Scheme>{field::Scheme::ed25519_xchacha});
  EXPECT_EQ(s.family, FieldFamily::near);
  EXPECT_TRUE(s.policy.all_fields);
  EXPECT_FALSE(s.one_ephemeral) << "NEAR uses a fresh ephemeral key per field";
}

TEST(FieldNegotiation, NearV1BoxWithDstackV2HeadersIsRefusedUpFront) {
  Fixture f;
  for (const char* near_version : {"1", ""}) {
    auto h = f.dstack("ed25519");
    if (*near_version) h.set("X-Encryption-Version", near_version);
    else h.set("X-Encrypt-All-Fields", "true");  // NEAR without a version
    h.set("X-E2EE-Nonce", "nonce1234567890123");
    h.set("X-E2EE-Timestamp", "1700000000");
    if (!*near_version) h.remove("X-E2EE-Version");
    const auto r = f.run(h);
    if (std::holds_alternative<FieldSession>(r)) {
      EXPECT_NE(std::get<FieldSession>(r).policy.scheme, field::Scheme::ed25519_box)
          << "a v2 context on a box scheme can never decrypt (found by fuzz/field_negotiation)";
    } else {
      EXPECT_EQ(type_of(r), "e2ee_invalid_version") << "X-Encryption-Version '" << near_version << "'";
    }
  }
  auto h = f.dstack("ed25519");
  h.set("X-Encryption-Version", "1");
  h.set("X-E2EE-Nonce", "nonce1234567890123");
  h.set("X-E2EE-Timestamp", "1700000000");
  EXPECT_EQ(type_of(f.run(h)), "e2ee_invalid_version");
}

// The proxy's dstack flavour may ask for NEAR's wider coverage: dstack's wire (AES-GCM for
// Ed25519, the v2 AAD, X-E2EE-Version echoed) with all_fields, and a stale key is dstack's 400.
TEST(FieldNegotiation, DstackWithXEncryptAllFieldsStaysDstack) {
  Fixture f;
  for (const char* version : {"1", "2"}) {
    auto h = f.dstack("ed25519");
    h.set("X-E2EE-Version", version);
    if (std::string(version) == "2") {
      h.set("X-E2EE-Nonce", "nonce1234567890123");
      h.set("X-E2EE-Timestamp", "1700000000");
    }
    h.set("X-Encrypt-All-Fields", "true");
    const auto r = f.run(h);
    const auto& s = session(r);
    EXPECT_EQ(s.family, FieldFamily::dstack) << "X-E2EE-Version " << version;
    EXPECT_EQ(s.schemes.front(), field::Scheme::ed25519_aes_gcm) << "X-E2EE-Version " << version;
    EXPECT_TRUE(s.policy.all_fields);
    EXPECT_EQ(s.version, std::stoi(version));
    EXPECT_TRUE(s.one_ephemeral);
    auto stale = h;
    stale.set("X-Model-Pub-Key", hex_encode(field::KeyPair::generate(field::Algo::ed25519).public_raw()));
    const auto e = f.run(stale);
    EXPECT_EQ(type_of(e), "e2ee_model_key_mismatch");
  }
  // Without any dstack header X-Encrypt-All-Fields still means NEAR.
  auto near = f.dstack("ed25519");
  near.set("X-Encrypt-All-Fields", "true");
  EXPECT_EQ(session(f.run(near)).family, FieldFamily::near);
  EXPECT_EQ(session(f.run(near)).schemes, std::vector<field::Scheme>{field::Scheme::ed25519_box});
}

TEST(FieldNegotiation, VeniceHeaders) {
  Fixture f;
  http::Headers h;
  h.set("X-Venice-TEE-Client-Pub-Key", hex_encode(f.client_ecdsa.public_uncompressed()));
  h.set("X-Venice-TEE-Model-Pub-Key", hex_encode(f.keys.ecdsa.public_uncompressed()));
  h.set("X-Venice-TEE-Signing-Algo", "ecdsa");
  const auto r = f.run(h);
  EXPECT_EQ(session(r).family, FieldFamily::venice);
  auto short_key = h;
  short_key.set("X-Venice-TEE-Client-Pub-Key", hex_encode(f.client_ecdsa.public_raw()));  // 128 hex, no 04
  EXPECT_EQ(type_of(f.run(short_key)), "e2ee_invalid_public_key");
  auto stale = h;
  stale.set("X-Venice-TEE-Model-Pub-Key", hex_encode(field::KeyPair::generate(field::Algo::ecdsa).public_uncompressed()));
  EXPECT_EQ(type_of(f.run(stale)), "e2ee_model_key_mismatch");
}

// EIP-55's own examples (https://eips.ethereum.org/EIPS/eip-55).
TEST(ChecksumAddress, Eip55Examples) {
  for (const char* expected : {"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
                               "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb"}) {
    std::string lower;
    for (const char* p = expected + 2; *p; ++p) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(*p)));
    const auto bytes = hex_decode(lower);
    std::array<std::uint8_t, 20> address{};
    std::copy(bytes->begin(), bytes->end(), address.begin());
    EXPECT_EQ(checksum_address(address), expected);
  }
}

}  // namespace
}  // namespace e2ee::gateway

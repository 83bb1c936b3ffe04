// The pure checks in front of every field-level E2EE session: the TDX quote parser and the
// report verifiers of Venice, dstack and NEAR AI. Quotes are built here from the layout in
// venice-protocol.md §2.3 item 5, so each refusal is provoked by changing one thing.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/encoding.hpp"
#include "crypto/hash.hpp"
#include "protocol/field/envelope.hpp"
#include "proxy/field/attestation.hpp"
#include "proxy/field/tdx_quote.hpp"

namespace e2ee::proxy::field {
namespace {

namespace json = boost::json;
using protocol::field::KeyPair;

struct QuoteSpec {
  std::uint16_t version = 4;
  std::uint32_t tee_type = 0x81;
  bool debug = false;
  std::size_t length = 1024;  // real quotes carry a signature section after the body
};

Bytes make_quote(ByteView report_data, const QuoteSpec& spec = {}) {
  Bytes q(spec.length, 0xAB);
  q[0] = static_cast<std::uint8_t>(spec.version);
  q[1] = static_cast<std::uint8_t>(spec.version >> 8);
  q[2] = 2;  // ECDSA-256 attestation key
  q[3] = 0;
  for (int i = 0; i < 4; ++i) q[4 + i] = static_cast<std::uint8_t>(spec.tee_type >> (8 * i));
  std::size_t body = 48;
  if (spec.version == 5) {
    q[48] = 2;  // TD report 1.0
    q[49] = 0;
    const std::uint32_t size = 584;
    for (int i = 0; i < 4; ++i) q[50 + i] = static_cast<std::uint8_t>(size >> (8 * i));
    body += 6;
  }
  if (q.size() >= body + 128) {
    std::fill(q.begin() + static_cast<std::ptrdiff_t>(body + 120), q.begin() + static_cast<std::ptrdiff_t>(body + 128), 0);
    if (spec.debug) q[body + 120] |= 0x01;
  }
  if (q.size() >= body + 584) std::copy(report_data.begin(), report_data.end(), q.begin() + static_cast<std::ptrdiff_t>(body + 520));
  return q;
}

Bytes report_data_for(ByteView identity, ByteView nonce) {
  Bytes rd(64, 0);
  std::copy(identity.begin(), identity.end(), rd.begin());
  std::copy(nonce.begin(), nonce.end(), rd.begin() + 32);
  return rd;
}

AttestationNonce fixed_nonce(std::uint8_t fill) {
  AttestationNonce n;
  n.bytes.fill(fill);
  return n;
}

// ---- quote parsing ------------------------------------------------------------------------------

TEST(TdxQuote, ParsesVersion4Layout) {
  Bytes rd(64);
  for (std::size_t i = 0; i < 64; ++i) rd[i] = static_cast<std::uint8_t>(i);
  const Bytes q = make_quote(rd);
  auto parsed = parse_tdx_quote(q);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->version, 4);
  EXPECT_EQ(parsed->tee_type, 0x81u);
  EXPECT_FALSE(parsed->debug());
  EXPECT_EQ(Bytes(parsed->report_data.begin(), parsed->report_data.end()), rd);
  // The absolute REPORTDATA offset of the spec: 568..632.
  EXPECT_EQ(Bytes(q.begin() + 568, q.begin() + 632), rd);
}

TEST(TdxQuote, ParsesVersion5WithItsBodyDescriptor) {
  Bytes rd(64, 0x5A);
  auto parsed = parse_tdx_quote(make_quote(rd, {5, 0x81, true, 1024}));
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_TRUE(parsed->debug());
  EXPECT_EQ(Bytes(parsed->report_data.begin(), parsed->report_data.end()), rd);
}

TEST(TdxQuote, MinimumLengthIs632) {
  const Bytes rd(64, 1);
  EXPECT_TRUE(parse_tdx_quote(make_quote(rd, {4, 0x81, false, 632})));
  auto short_quote = parse_tdx_quote(make_quote(rd, {4, 0x81, false, 631}));
  ASSERT_FALSE(short_quote);
  EXPECT_NE(short_quote.error().message.find("too short"), std::string::npos);
}

TEST(TdxQuote, RefusesSgxAndUnknownVersions) {
  const Bytes rd(64, 1);
  auto sgx = parse_tdx_quote(make_quote(rd, {4, 0x00, false, 1024}));
  ASSERT_FALSE(sgx);
  EXPECT_NE(sgx.error().message.find("not a TDX quote"), std::string::npos);
  EXPECT_FALSE(parse_tdx_quote(make_quote(rd, {3, 0x81, false, 1024})));
}

TEST(TdxQuote, DecodesHexWithPrefixBase64AndBase64Url) {
  const Bytes raw = {0xfb, 0xff, 0x01, 0x02, 0xfe};
  EXPECT_EQ(*decode_quote_text(hex_encode(raw)), raw);
  EXPECT_EQ(*decode_quote_text("0x" + hex_encode(raw)), raw);
  std::string upper = hex_encode(raw);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  EXPECT_EQ(*decode_quote_text(upper), raw);
  EXPECT_EQ(*decode_quote_text(base64_encode(raw)), raw);
  EXPECT_EQ(*decode_quote_text(base64url_encode(raw)), raw);
  EXPECT_FALSE(decode_quote_text("not a quote!"));
  EXPECT_FALSE(decode_quote_text(""));
}

// ---- binding --------------------------------------------------------------------------------------

TEST(ReportData, BindsIdentityZeroPaddingAndNonce) {
  const Bytes address(20, 0xAA);
  const auto nonce = fixed_nonce(7);
  const Bytes rd = report_data_for(address, nonce.bytes);
  EXPECT_TRUE(check_report_data(rd, address, nonce.bytes, NonceBinding::raw));

  Bytes other_address = address;
  other_address[19] ^= 1;
  EXPECT_FALSE(check_report_data(rd, other_address, nonce.bytes, NonceBinding::raw));
  EXPECT_FALSE(check_report_data(rd, address, fixed_nonce(8).bytes, NonceBinding::raw));

  Bytes dirty_padding = rd;
  dirty_padding[25] = 1;
  auto padded = check_report_data(dirty_padding, address, nonce.bytes, NonceBinding::raw);
  ASSERT_FALSE(padded);
  EXPECT_NE(padded.error().message.find("padding"), std::string::npos);
}

TEST(ReportData, Sha256NonceOnlyWhereAllowed) {
  const Bytes address(20, 0xAA);
  const auto nonce = fixed_nonce(7);
  const auto hashed = crypto::sha256(nonce.bytes);
  const Bytes rd = report_data_for(address, hashed);
  EXPECT_TRUE(check_report_data(rd, address, nonce.bytes, NonceBinding::raw_or_sha256));
  EXPECT_FALSE(check_report_data(rd, address, nonce.bytes, NonceBinding::raw));
}

TEST(ReportData, Ed25519IdentityFillsTheFirst32Bytes) {
  const Bytes key(32, 0x42);
  const auto nonce = fixed_nonce(9);
  EXPECT_TRUE(check_report_data(report_data_for(key, nonce.bytes), key, nonce.bytes, NonceBinding::raw));
}

TEST(QuoteBinding, RefusesDebugTd) {
  const Bytes address(20, 0xAA);
  const auto nonce = fixed_nonce(7);
  const Bytes q = make_quote(report_data_for(address, nonce.bytes), {4, 0x81, true, 1024});
  auto checked = check_quote_binding(hex_encode(q), address, nonce.bytes, NonceBinding::raw);
  ASSERT_FALSE(checked);
  EXPECT_NE(checked.error().message.find("debug"), std::string::npos);
}

TEST(KeyIdentity, EcdsaIsTheEthereumAddressEd25519IsTheKey) {
  // venice-protocol.md §4.4: model private key 32×0x11.
  const Bytes secret(32, 0x11);
  auto pair = KeyPair::from_secret(Algo::ecdsa, secret);
  ASSERT_TRUE(pair);
  auto peer = PeerKey::parse(Algo::ecdsa, pair->public_raw());
  ASSERT_TRUE(peer);
  EXPECT_EQ(hex_encode(pair->public_raw()),
            "4f355bdcb7cc0af728ef3cceb9615d90684bb5b2ca5f859ab0f0b704075871aa385b6b1b8ead809ca67454d9683fcf2ba03456d6fe2c4abe2b07f0fbdbb2f1c1");
  const auto digest = crypto::keccak256(pair->public_raw());
  EXPECT_EQ(key_identity(*peer), Bytes(digest.begin() + 12, digest.end()));
  const auto address = pair->ethereum_address();
  EXPECT_EQ(key_identity(*peer), Bytes(address.begin(), address.end()));

  auto ed = KeyPair::generate(Algo::ed25519);
  auto ed_peer = PeerKey::parse(Algo::ed25519, ed.public_raw());
  ASSERT_TRUE(ed_peer);
  EXPECT_EQ(key_identity(*ed_peer), ed.public_raw());
}

// ---- reports --------------------------------------------------------------------------------------

struct Model {
  KeyPair pair;
  Bytes identity;
  std::string key_hex;      // signing_public_key as dstack publishes it (128 hex for ecdsa)
  std::string address;      // signing_address
};

Model make_model(Algo algo) {
  KeyPair pair = KeyPair::generate(algo);
  Model m{std::move(pair), {}, {}, {}};
  auto peer = PeerKey::parse(algo, m.pair.public_raw());
  m.identity = key_identity(*peer);
  m.key_hex = hex_encode(m.pair.public_raw());
  m.address = algo == Algo::ecdsa ? "0x" + hex_encode(m.identity) : m.key_hex;
  return m;
}

json::object dstack_report(const Model& m, Algo algo, const AttestationNonce& nonce) {
  json::object r;
  r["signing_address"] = m.address;
  r["signing_algo"] = std::string(protocol::field::algo_name(algo));
  r["request_nonce"] = nonce.hex();
  r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes)));
  r["nvidia_payload"] = "{}";
  r["signing_public_key"] = m.key_hex;
  return r;
}

std::string text(const json::object& o) { return json::serialize(o); }

class DstackReport : public ::testing::TestWithParam<Algo> {};

TEST_P(DstackReport, AcceptsACorrectReport) {
  const Algo algo = GetParam();
  const Model m = make_model(algo);
  const auto nonce = AttestationNonce::random();
  auto verified = verify_dstack_report(text(dstack_report(m, algo, nonce)), algo, nonce, false);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->key.public_raw(), m.pair.public_raw());
  EXPECT_EQ(verified->key_text, m.key_hex);
  EXPECT_TRUE(verified->quote_checked);
  EXPECT_EQ(verified->identity, m.address);
}

TEST_P(DstackReport, RefusesEachBrokenBinding) {
  const Algo algo = GetParam();
  const Model m = make_model(algo);
  const auto nonce = AttestationNonce::random();
  const auto refused = [&](const json::object& r, std::string_view why) {
    auto verified = verify_dstack_report(text(r), algo, nonce, false);
    ASSERT_FALSE(verified) << why;
    EXPECT_NE(verified.error().message.find("dstack attestation refused"), std::string::npos) << why;
  };
  {
    auto r = dstack_report(m, algo, nonce);  // a report made for another nonce
    const auto other = AttestationNonce::random();
    r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, other.bytes)));
    refused(r, "quote bound to another nonce");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r["request_nonce"] = AttestationNonce::random().hex();
    refused(r, "nonce echo");
  }
  {
    auto r = dstack_report(m, algo, nonce);  // the quote binds another key
    const Model other = make_model(algo);
    r["intel_quote"] = hex_encode(make_quote(report_data_for(other.identity, nonce.bytes)));
    refused(r, "identity");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r["signing_address"] = make_model(algo).address;
    refused(r, "signing_address");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes), {4, 0x81, true, 1024}));
    refused(r, "debug");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes), {4, 0x00, false, 1024}));
    refused(r, "SGX tee type");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes), {4, 0x81, false, 600}));
    refused(r, "short quote");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r["signing_algo"] = algo == Algo::ecdsa ? "ed25519" : "ecdsa";
    refused(r, "algo echo");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r.erase("signing_algo");
    refused(r, "missing algo echo");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r["signing_public_key"] = std::string(m.key_hex.size(), 'f');
    refused(r, "invalid point");
  }
  {
    auto r = dstack_report(m, algo, nonce);
    r.erase("intel_quote");
    refused(r, "no quote");
  }
}

TEST_P(DstackReport, MissingQuoteOnlyWhenAllowed) {
  const Algo algo = GetParam();
  const Model m = make_model(algo);
  const auto nonce = AttestationNonce::random();
  auto r = dstack_report(m, algo, nonce);
  r.erase("intel_quote");
  auto verified = verify_dstack_report(text(r), algo, nonce, true);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_FALSE(verified->quote_checked);
  // Even then the nonce echo must be ours.
  r["request_nonce"] = AttestationNonce::random().hex();
  EXPECT_FALSE(verify_dstack_report(text(r), algo, nonce, true));
}

std::string algo_case(const ::testing::TestParamInfo<Algo>& param) { return std::string(protocol::field::algo_name(param.param)); }
INSTANTIATE_TEST_SUITE_P(Algos, DstackReport, ::testing::Values(Algo::ecdsa, Algo::ed25519), algo_case);

TEST(DstackReport, AcceptsTheUncompressedKeyFormAndBase64Quote) {
  const Model m = make_model(Algo::ecdsa);
  const auto nonce = AttestationNonce::random();
  auto r = dstack_report(m, Algo::ecdsa, nonce);
  r["signing_public_key"] = "04" + m.key_hex;
  r["intel_quote"] = base64_encode(make_quote(report_data_for(m.identity, nonce.bytes)));
  std::string upper = m.address;
  for (std::size_t i = 2; i < upper.size(); ++i) upper[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(upper[i])));
  r["signing_address"] = upper;  // web3 checksum case
  EXPECT_TRUE(verify_dstack_report(text(r), Algo::ecdsa, nonce, false));
}

// ---- Venice -------------------------------------------------------------------------------------

json::object venice_report(const Model& m, std::string_view model, const AttestationNonce& nonce, bool boolean_shape = false) {
  json::object r;
  r["verified"] = true;
  r["nonce"] = nonce.hex();
  r["model"] = std::string(model);
  r["tee_provider"] = "phala";
  r["signing_public_key"] = "04" + m.key_hex;
  r["signing_address"] = m.address;
  r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes)));
  r["nvidia_payload"] = "{\"nonce\":\"x\"}";
  json::object sv;
  sv["tdx"] = json::object{{"valid", true}, {"signatureValid", true}};
  sv["nvidia"] = json::object{{"valid", true}};
  if (boolean_shape) {
    sv["signingAddressBinding"] = true;
    sv["nonceBinding"] = true;
  } else {
    sv["signingAddressBinding"] = json::object{{"bound", true}};
    sv["nonceBinding"] = json::object{{"bound", true}, {"method", "raw"}};
  }
  r["server_verification"] = std::move(sv);
  return r;
}

TEST(VeniceReport, AcceptsBothServerVerificationShapesAndKeyFields) {
  const Model m = make_model(Algo::ecdsa);
  const auto nonce = AttestationNonce::random();
  auto verified = verify_venice_report(text(venice_report(m, "e2ee-glm-5", nonce)), "e2ee-glm-5", nonce);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->key.public_raw(), m.pair.public_raw());
  EXPECT_TRUE(verify_venice_report(text(venice_report(m, "e2ee-glm-5", nonce, true)), "e2ee-glm-5", nonce));

  auto r = venice_report(m, "e2ee-glm-5", nonce);
  r.erase("signing_public_key");
  r["signing_key"] = m.key_hex;  // the documented name, 128 hex without 04
  EXPECT_TRUE(verify_venice_report(text(r), "e2ee-glm-5", nonce));
}

TEST(VeniceReport, AcceptsTheSha256NonceVariant) {
  const Model m = make_model(Algo::ecdsa);
  const auto nonce = AttestationNonce::random();
  auto r = venice_report(m, "e2ee-glm-5", nonce);
  const auto hashed = crypto::sha256(nonce.bytes);
  r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, hashed)));
  EXPECT_TRUE(verify_venice_report(text(r), "e2ee-glm-5", nonce));
}

TEST(VeniceReport, AllowMissingQuoteAcceptsAQuotelessSelfHostedReportButStillChecksTheRest) {
  const Model m = make_model(Algo::ecdsa);
  const auto nonce = AttestationNonce::random();
  // What e2ee-gateway outside a TEE serves: no quote, so it cannot claim "verified".
  auto r = venice_report(m, "e2ee-glm-5", nonce);
  r["intel_quote"] = nullptr;
  r["verified"] = false;
  r["server_verification"].as_object()["tdx"] = json::object{{"valid", false}};
  EXPECT_FALSE(verify_venice_report(text(r), "e2ee-glm-5", nonce)) << "without the override: refused";
  auto allowed = verify_venice_report(text(r), "e2ee-glm-5", nonce, true);
  ASSERT_TRUE(allowed) << allowed.error().message;
  EXPECT_FALSE(allowed->quote_checked);
  EXPECT_EQ(allowed->key.public_raw(), m.pair.public_raw());

  auto replayed = r;
  replayed["nonce"] = AttestationNonce::random().hex();
  EXPECT_FALSE(verify_venice_report(text(replayed), "e2ee-glm-5", nonce, true)) << "the nonce echo still counts";
  auto other_model = r;
  other_model["model"] = "e2ee-other";
  EXPECT_FALSE(verify_venice_report(text(other_model), "e2ee-glm-5", nonce, true));
  auto wrong_address = r;
  wrong_address["signing_address"] = "0x" + std::string(40, '1');
  EXPECT_FALSE(verify_venice_report(text(wrong_address), "e2ee-glm-5", nonce, true));

  // A quote that is present is checked in full even with the override.
  auto debug = venice_report(m, "e2ee-glm-5", nonce);
  debug["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes), {4, 0x81, true, 1024}));
  EXPECT_FALSE(verify_venice_report(text(debug), "e2ee-glm-5", nonce, true));
}

TEST(VeniceReport, RefusesEachCheck) {
  const Model m = make_model(Algo::ecdsa);
  const auto nonce = AttestationNonce::random();
  const auto refused = [&](const json::object& r, std::string_view expected) {
    auto verified = verify_venice_report(text(r), "e2ee-glm-5", nonce);
    ASSERT_FALSE(verified) << expected;
    EXPECT_NE(verified.error().message.find(expected), std::string::npos) << verified.error().message;
  };
  const auto base = [&] { return venice_report(m, "e2ee-glm-5", nonce); };
  {  // 1
    auto r = base();
    r["verified"] = false;
    refused(r, "verified");
  }
  {  // 2
    auto r = base();
    r["nonce"] = AttestationNonce::random().hex();
    refused(r, "nonce");
  }
  {  // 3
    auto r = base();
    r["model"] = "e2ee-other";
    refused(r, "model 'e2ee-other'");
  }
  {  // 4: absent, and compressed
    auto r = base();
    r.erase("signing_public_key");
    refused(r, "no model key");
    auto c = base();
    c["signing_public_key"] = "02" + m.key_hex.substr(0, 64);
    refused(c, "uncompressed");
  }
  {  // 5: no quote, SGX quote, short quote
    auto r = base();
    r.erase("intel_quote");
    refused(r, "intel_quote");
    auto sgx = base();
    sgx["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes), {4, 0, false, 1024}));
    refused(sgx, "not a TDX quote");
    auto shorty = base();
    shorty["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes), {4, 0x81, false, 631}));
    refused(shorty, "too short");
  }
  {  // 6
    auto r = base();
    r["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, nonce.bytes), {4, 0x81, true, 1024}));
    refused(r, "debug");
  }
  {  // 7: wrong address bound, wrong nonce bound
    auto r = base();
    r["intel_quote"] = hex_encode(make_quote(report_data_for(make_model(Algo::ecdsa).identity, nonce.bytes)));
    refused(r, "identity");
    auto n = base();
    n["intel_quote"] = hex_encode(make_quote(report_data_for(m.identity, AttestationNonce::random().bytes)));
    refused(n, "nonce");
  }
  {  // 8
    auto r = base();
    r["signing_address"] = make_model(Algo::ecdsa).address;
    refused(r, "signing_address");
  }
  {  // 9: server self-report
    auto r = base();
    r.erase("server_verification");
    refused(r, "server_verification");
    auto tdx = base();
    tdx["server_verification"].as_object()["tdx"] = json::object{{"valid", false}, {"error", "bad"}};
    refused(tdx, "TDX verification failed");
    auto nv = base();
    nv["server_verification"].as_object()["nvidia"] = json::object{{"valid", false}};
    refused(nv, "NVIDIA");
    auto nb = base();
    nb["server_verification"].as_object()["nonceBinding"] = false;
    refused(nb, "nonce as bound");
    auto nbo = base();
    nbo["server_verification"].as_object()["nonceBinding"] = json::object{{"bound", false}};
    refused(nbo, "nonce as bound");
    auto ab = base();
    ab["server_verification"].as_object()["signingAddressBinding"] = json::object{{"bound", false}};
    refused(ab, "signing address as not bound");
    auto sig = base();
    sig["server_verification"].as_object()["tdx"] = json::object{{"valid", true}, {"certificateChainValid", false}};
    refused(sig, "certificateChainValid");
  }
  EXPECT_FALSE(verify_venice_report("not json", "e2ee-glm-5", nonce));
}

// ---- NEAR AI ------------------------------------------------------------------------------------

TEST(NearAiReport, PicksTheModelsVerifiedEntry) {
  const Model a = make_model(Algo::ecdsa);
  const Model b = make_model(Algo::ecdsa);
  const auto nonce = AttestationNonce::random();
  auto other_model = dstack_report(a, Algo::ecdsa, nonce);
  other_model["model_name"] = "other/model";
  auto broken = dstack_report(a, Algo::ecdsa, nonce);
  broken["model_name"] = "zai-org/GLM";
  broken["intel_quote"] = hex_encode(make_quote(report_data_for(a.identity, nonce.bytes), {4, 0x81, true, 1024}));
  auto good = dstack_report(b, Algo::ecdsa, nonce);
  good["model_name"] = "zai-org/GLM";
  json::object doc;
  doc["gateway_attestation"] = dstack_report(make_model(Algo::ecdsa), Algo::ecdsa, nonce);
  doc["model_attestations"] = json::array{other_model, broken, good};
  auto verified = verify_nearai_report(text(doc), "zai-org/GLM", Algo::ecdsa, nonce, false);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->key.public_raw(), b.pair.public_raw());
}

TEST(NearAiReport, RefusesWhenNoEntryVerifies) {
  const Model a = make_model(Algo::ed25519);
  const auto nonce = AttestationNonce::random();
  auto wrong_nonce = dstack_report(a, Algo::ed25519, nonce);
  wrong_nonce["model"] = "m";
  wrong_nonce["intel_quote"] = hex_encode(make_quote(report_data_for(a.identity, AttestationNonce::random().bytes)));
  json::object doc;
  doc["model_attestations"] = json::array{wrong_nonce};
  auto verified = verify_nearai_report(text(doc), "m", Algo::ed25519, nonce, false);
  ASSERT_FALSE(verified);
  EXPECT_NE(verified.error().message.find("NEAR AI attestation refused"), std::string::npos);
  json::object none;
  none["model_attestations"] = json::array{};
  EXPECT_FALSE(verify_nearai_report(text(none), "m", Algo::ed25519, nonce, false));
}

TEST(NearAiReport, ReadsAFlatReportAndToleratesMissingEchoes) {
  const Model m = make_model(Algo::ed25519);
  const auto nonce = AttestationNonce::random();
  auto r = dstack_report(m, Algo::ed25519, nonce);
  r.erase("request_nonce");
  r.erase("signing_algo");
  auto verified = verify_nearai_report(text(r), "any", Algo::ed25519, nonce, false);
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_TRUE(verified->quote_checked);
}

TEST(AttestationNonce, IsFreshAnd64Hex) {
  const auto a = AttestationNonce::random();
  const auto b = AttestationNonce::random();
  EXPECT_NE(a.hex(), b.hex());
  EXPECT_EQ(a.hex().size(), 64u);
}

}  // namespace
}  // namespace e2ee::proxy::field

// Field coverage of chat requests and responses (src/protocol/field/fields.hpp): which paths come
// back encrypted (fixtures written by hand, envelopes masked as "<E>"), byte-faithfulness of
// everything else, round trips client ↔ server for every scheme × v1/v2 × policy, the AAD
// strings (spelled out literally here, from near-phala-protocol.md §8 and the header's
// extension), the spec vectors through the field API, and every fail-closed rule.

#include "protocol/field/fields.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "common/encoding.hpp"
#include "protocol/field/envelope_detail.hpp"

namespace e2ee::protocol::field {
namespace {

namespace json = boost::json;

template <typename T>
::testing::AssertionResult fails_with(const Result<T>& r, Errc want) {
  if (r) return ::testing::AssertionFailure() << "succeeded; expected " << to_string(want);
  if (r.error().code != want)
    return ::testing::AssertionFailure() << "failed with " << to_string(r.error().code) << " (" << r.error().message
                                         << "); expected " << to_string(want);
  return ::testing::AssertionSuccess();
}

// Every JSON string that is a hex envelope (≥ 60 bytes: the smallest scheme's minimum) becomes "<E>".
std::string mask(const std::string& text) {
  static const std::regex envelope("\"[0-9a-f]{120,}\"");
  return std::regex_replace(text, envelope, "\"<E>\"");
}

std::vector<std::string> envelopes_in(const std::string& text) {
  static const std::regex envelope("\"([0-9a-f]{120,})\"");
  std::vector<std::string> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), envelope); it != std::sregex_iterator(); ++it)
    out.push_back((*it)[1].str());
  return out;
}

struct Keys {
  KeyPair model;   // the gateway's
  PeerKey model_pub;
  KeyPair client;  // the proxy's
  PeerKey client_pub;
};
Keys keys_for(Algo algo) {
  KeyPair model = KeyPair::generate(algo);
  KeyPair client = KeyPair::generate(algo);
  PeerKey model_pub = PeerKey::parse(algo, model.public_raw()).value();
  PeerKey client_pub = PeerKey::parse(algo, client.public_raw()).value();
  return Keys{std::move(model), std::move(model_pub), std::move(client), std::move(client_pub)};
}

const V2Context kV2{"nonce-0123456789abcdef", 1700000123};

FieldPolicy policy(Scheme scheme, bool v2, bool all = false, bool as_json = true) {
  FieldPolicy p;
  p.scheme = scheme;
  if (v2) p.v2 = kV2;
  p.all_fields = all;
  p.arrays_as_json = as_json;
  return p;
}

// ---- fixtures ----

// Unusual but valid formatting everywhere outside the fields: it must survive byte for byte.
const std::string kRequest = R"({ "model" : "m-1", "seed": 18446744073709551616, "temperature":1.00000000000000000001,
  "messages": [
    {"role":"system","content":"be brief"},
    {"role":"user","name":"alice","content":[{"type":"text","text":"look"} , {"type":"image_url","image_url":{"url":"data:x"}}]},
    {"role":"assistant","content":null,"reasoning_content":"thinking","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"sunny é\n"},
    {"role":"assistant","content":"","refusal":"no","function_call":{"name":"f","arguments":"{}"},"audio":{"data":"AAAA"}}
  ],
  "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object",  "properties":{"city":{"type":"string"}}}}},{"type":"web_search"}],
  "tool_choice":{"type":"function","function":{"name":"get_weather"}},
  "function_call": {"name": "f"},
  "stream":true }
)";

// What the client sends, by policy (hand-written: the field list of fields.hpp).
const std::string kRequestContentOnly = R"({ "model" : "m-1", "seed": 18446744073709551616, "temperature":1.00000000000000000001,
  "messages": [
    {"role":"system","content":"<E>"},
    {"role":"user","name":"alice","content":"<E>"},
    {"role":"assistant","content":null,"reasoning_content":"thinking","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"<E>"},
    {"role":"assistant","content":"<E>","refusal":"no","function_call":{"name":"f","arguments":"{}"},"audio":{"data":"AAAA"}}
  ],
  "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object",  "properties":{"city":{"type":"string"}}}}},{"type":"web_search"}],
  "tool_choice":{"type":"function","function":{"name":"get_weather"}},
  "function_call": {"name": "f"},
  "stream":true }
)";

const std::string kRequestPerPart = R"({ "model" : "m-1", "seed": 18446744073709551616, "temperature":1.00000000000000000001,
  "messages": [
    {"role":"system","content":"<E>"},
    {"role":"user","name":"alice","content":[{"type":"text","text":"<E>"} , {"type":"image_url","image_url":{"url":"data:x"}}]},
    {"role":"assistant","content":null,"reasoning_content":"thinking","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"<E>"},
    {"role":"assistant","content":"<E>","refusal":"no","function_call":{"name":"f","arguments":"{}"},"audio":{"data":"AAAA"}}
  ],
  "tools":[{"type":"function","function":{"name":"get_weather","description":"Weather","parameters":{"type":"object",  "properties":{"city":{"type":"string"}}}}},{"type":"web_search"}],
  "tool_choice":{"type":"function","function":{"name":"get_weather"}},
  "function_call": {"name": "f"},
  "stream":true }
)";

const std::string kRequestAllFields = R"({ "model" : "m-1", "seed": 18446744073709551616, "temperature":1.00000000000000000001,
  "messages": [
    {"role":"system","content":"<E>"},
    {"role":"user","name":"<E>","content":"<E>"},
    {"role":"assistant","content":null,"reasoning_content":"<E>","tool_calls":[{"id":"call_1","type":"function","function":{"name":"<E>","arguments":"<E>"}}]},
    {"role":"tool","tool_call_id":"call_1","content":"<E>"},
    {"role":"assistant","content":"<E>","refusal":"<E>","function_call":{"name":"<E>","arguments":"<E>"},"audio":{"data":"<E>"}}
  ],
  "tools":[{"type":"function","function":{"name":"<E>","description":"<E>","parameters":"<E>"}},{"type":"web_search"}],
  "tool_choice":{"type":"function","function":{"name":"<E>"}},
  "function_call": {"name": "<E>"},
  "stream":true }
)";

const std::string kCompletion =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m-1","system_fingerprint":null,)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hello!","reasoning_content":"hmm","reasoning":"hmm too",)"
    R"("refusal":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}],)"
    R"("function_call":{"name":"g","arguments":"{}"},"audio":{"id":"a1","data":"UklGRg=="}},)"
    R"("logprobs":{"content":[{"token":"Hello","logprob":-0.1,"bytes":[72,101,108,108,111],"top_logprobs":[{"token":"Hi","logprob":-2.3,"bytes":[72, 105]}]}],"refusal":null},)"
    R"("finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":"","reasoning_content":""},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})";

const std::string kCompletionDefault =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m-1","system_fingerprint":null,)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"<E>","reasoning_content":"<E>","reasoning":"<E>",)"
    R"("refusal":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}],)"
    R"("function_call":{"name":"g","arguments":"{}"},"audio":{"id":"a1","data":"<E>"}},)"
    R"("logprobs":{"content":[{"token":"Hello","logprob":-0.1,"bytes":[72,101,108,108,111],"top_logprobs":[{"token":"Hi","logprob":-2.3,"bytes":[72, 105]}]}],"refusal":null},)"
    R"("finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":"<E>","reasoning_content":"<E>"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})";

const std::string kCompletionAllFields =
    R"({"id":"chatcmpl-1","object":"chat.completion","created":1700000000,"model":"m-1","system_fingerprint":null,)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"<E>","reasoning_content":"<E>","reasoning":"<E>",)"
    R"("refusal":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"<E>","arguments":"<E>"}}],)"
    R"("function_call":{"name":"<E>","arguments":"<E>"},"audio":{"id":"a1","data":"<E>"}},)"
    R"("logprobs":{"content":[{"token":"<E>","logprob":-0.1,"bytes":"<E>","top_logprobs":[{"token":"<E>","logprob":-2.3,"bytes":"<E>"}]}],"refusal":null},)"
    R"("finish_reason":"stop"},{"index":1,"message":{"role":"assistant","content":"<E>","reasoning_content":"<E>"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}})";

// A stream as vLLM sends it: role chunk, text, reasoning, tool call, usage-only chunk.
const std::vector<std::string> kChunks = {
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"","role":"assistant"}}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{ "content" : "" }}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"Let me","content":""}}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" world"},"finish_reason":null}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
};
// The same chunks as the server sends them (all_fields; "" delta content dropped, PH #6).
const std::vector<std::string> kChunksSealed = {
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"},"logprobs":null,"finish_reason":null}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{  }}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"<E>"}}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"<E>"},"finish_reason":null}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"<E>","arguments":"<E>"}}]}}]})",
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}})",
};

// What the client gets back: the originals, less the dropped "" delta content.
const std::vector<std::string> kChunksOpened = {
    kChunksSealed[0],
    kChunksSealed[1],
    kChunksSealed[2],
    R"({"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"Let me"}}]})",
    kChunks[4],
    kChunks[5],
    kChunks[6],
};

// ---- AAD strings ----

TEST(FieldAad, RequestAndResponseStrings) {
  const V2Context v2{"nonce1234567890123", 1700000000};
  // near-phala-protocol.md §8 / §12, as dstack's test writes it.
  EXPECT_EQ(request_aad(Algo::ecdsa, v2, "m", 0, std::nullopt),
            "v2|req|algo=ecdsa|model=m|m=0|c=-|n=nonce1234567890123|ts=1700000000");
  EXPECT_EQ(request_aad(Algo::ed25519, v2, "org/model:v1", 12, 3),
            "v2|req|algo=ed25519|model=org/model:v1|m=12|c=3|n=nonce1234567890123|ts=1700000000");
  EXPECT_EQ(request_aad(Algo::ecdsa, V2Context{"n", -5}, "", 0, 0), "v2|req|algo=ecdsa|model=|m=0|c=0|n=n|ts=-5");
  EXPECT_EQ(response_aad(Algo::ecdsa, v2, "m", "chatcmpl-9", 2, "reasoning_content"),
            "v2|resp|algo=ecdsa|model=m|id=chatcmpl-9|choice=2|field=reasoning_content|n=nonce1234567890123|ts=1700000000");
  // Our extension (fields.hpp).
  EXPECT_EQ(request_aad_field(Algo::ecdsa, v2, "m", 2, "tool_calls.0.function.arguments"),
            "v2|req|algo=ecdsa|model=m|m=2|c=tool_calls.0.function.arguments|n=nonce1234567890123|ts=1700000000");
  EXPECT_EQ(request_aad_field(Algo::ed25519, v2, "m", std::nullopt, "tools.1.function.parameters"),
            "v2|req|algo=ed25519|model=m|m=-|c=tools.1.function.parameters|n=nonce1234567890123|ts=1700000000");
}

// ---- the spec vectors through the field API ----

constexpr std::string_view kEphPub65 =
    "04466d7fcae563e5cb09a0d1870bb580344804617879a14949cf22285f1bae3f27"
    "6728176c3c6431f8eeda4538dc37c865e2784f3a9e77d044f33e407797e1278a";

TEST(FieldSpecKat, DstackV2RequestVectorDecrypts) {
  const std::string wire = std::string(kEphPub65) + "000102030405060708090a0b" + "a84e92c951" + "0ce7a9d341d3ad37aaf6918123dac554";
  const KeyPair model = KeyPair::from_secret(Algo::ecdsa, Bytes(32, 0x11)).value();
  FieldPolicy p = policy(Scheme::ecdsa, false);
  p.v2 = V2Context{"nonce1234567890123", 1700000000};
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":")" + wire + R"("}]})";
  auto plain = decrypt_request(body, p, model);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(*plain, R"({"model":"m","messages":[{"role":"user","content":"hello"}]})");
  // The same envelope in message 1, or with another model name, is not accepted.
  EXPECT_TRUE(fails_with(decrypt_request(R"({"model":"m","messages":[{"role":"system","content":"00"},{"role":"user","content":")" +
                                             wire + R"("}]})",
                                         p, model),
                         Errc::malformed));  // "00" is hex but too short: message 0 fails first
  EXPECT_TRUE(fails_with(decrypt_request(R"({"model":"m2","messages":[{"role":"user","content":")" + wire + R"("}]})", p, model),
                         Errc::authentication_failed));
  p.v2->timestamp += 1;
  EXPECT_TRUE(fails_with(decrypt_request(body, p, model), Errc::authentication_failed));
}

TEST(FieldSpecKat, VeniceChunkVectorDecrypts) {
  // venice-protocol.md §4.4 as a streamed delta: whoever holds 32×0x11 opens it.
  const std::string wire = std::string(kEphPub65) + "000102030405060708090a0b" + "a84e92c951" + "a98a94fe8f00168f40909b61642df01c";
  const KeyPair client = KeyPair::from_secret(Algo::ecdsa, Bytes(32, 0x11)).value();
  const std::string chunk = R"({"id":"x","choices":[{"index":0,"delta":{"content":")" + wire + R"("},"finish_reason":null}]})";
  auto plain = decrypt_response(chunk, policy(Scheme::ecdsa, false), client);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(*plain, R"({"id":"x","choices":[{"index":0,"delta":{"content":"hello"},"finish_reason":null}]})");
}

TEST(FieldSpecKat, DstackEd25519VectorDecrypts) {
  const std::string wire = std::string("ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b") +
                           "000102030405060708090a0b" + "4df58905c8" + "3c1877d1b32a643528ed3931a2a06fc7";
  const KeyPair model = KeyPair::from_secret(Algo::ed25519, Bytes(32, 0x33)).value();
  auto plain = decrypt_request(R"({"messages":[{"role":"user","content":")" + wire + R"("}]})",
                               policy(Scheme::ed25519_aes_gcm, false), model);
  ASSERT_TRUE(plain) << plain.error().message;
  EXPECT_EQ(*plain, R"({"messages":[{"role":"user","content":"hello"}]})");
}

// ---- coverage fixtures ----

TEST(FieldCoverage, RequestPathsByPolicy) {
  const Keys k = keys_for(Algo::ecdsa);
  auto content_only = encrypt_request(kRequest, policy(Scheme::ecdsa, false), k.model_pub);
  ASSERT_TRUE(content_only) << content_only.error().message;
  EXPECT_EQ(mask(*content_only), kRequestContentOnly);
  auto per_part = encrypt_request(kRequest, policy(Scheme::ecdsa, false, false, false), k.model_pub);
  ASSERT_TRUE(per_part) << per_part.error().message;
  EXPECT_EQ(mask(*per_part), kRequestPerPart);
  auto all = encrypt_request(kRequest, policy(Scheme::ecdsa, true, true), k.model_pub);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(mask(*all), kRequestAllFields);
  // Every field got its own ephemeral key (Venice and NEAR decrypt each on its own).
  std::set<std::string> ephs;
  for (const auto& e : envelopes_in(*all)) ephs.insert(e.substr(0, 130));
  EXPECT_EQ(ephs.size(), envelopes_in(*all).size());
  EXPECT_EQ(envelopes_in(*all).size(), 17u);
}

TEST(FieldCoverage, ResponsePathsByPolicy) {
  const Keys k = keys_for(Algo::ecdsa);
  ResponseSealer plain_sealer(policy(Scheme::ecdsa, false), k.client_pub, false);
  auto sealed = plain_sealer.encrypt(kCompletion);
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(mask(*sealed), kCompletionDefault);
  ResponseSealer all_sealer(policy(Scheme::ecdsa, true, true), k.client_pub, true);
  auto all = all_sealer.encrypt(kCompletion);
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(mask(*all), kCompletionAllFields);
  for (std::size_t i = 0; i < kChunks.size(); ++i) {
    auto chunk = all_sealer.encrypt(kChunks[i]);
    ASSERT_TRUE(chunk) << i << ": " << chunk.error().message;
    EXPECT_EQ(mask(*chunk), kChunksSealed[i]) << i;
  }
}

TEST(FieldCoverage, ReasoningFieldOffLeavesReasoningAlone) {
  const Keys k = keys_for(Algo::ecdsa);
  FieldPolicy p = policy(Scheme::ecdsa, false);
  p.reasoning_field = false;
  const std::string chunk = R"({"choices":[{"index":0,"delta":{"reasoning":"plain","content":"x"}}]})";
  auto sealed = ResponseSealer(p, k.client_pub, false).encrypt(chunk);
  ASSERT_TRUE(sealed);
  EXPECT_EQ(mask(*sealed), R"({"choices":[{"index":0,"delta":{"reasoning":"plain","content":"<E>"}}]})");
  auto opened = decrypt_response(*sealed, p, k.client);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*opened, chunk);
  // With reasoning_field (the default) the client refuses that plaintext `reasoning`.
  EXPECT_TRUE(fails_with(decrypt_response(*sealed, policy(Scheme::ecdsa, false), k.client), Errc::malformed));
}

// ---- round trips: every scheme × v1/v2 × policy, both directions ----

struct Combo {
  Scheme scheme;
  bool v2;
};
std::string combo_name(const ::testing::TestParamInfo<Combo>& info) {
  std::string s;
  switch (info.param.scheme) {
    case Scheme::ecdsa: s = "ecdsa"; break;
    case Scheme::ed25519_aes_gcm: s = "ed25519_aes_gcm"; break;
    case Scheme::ed25519_box: s = "ed25519_box"; break;
    case Scheme::ed25519_xchacha: s = "ed25519_xchacha"; break;
  }
  return s + (info.param.v2 ? "_v2" : "_v1");
}

class RoundTrip : public ::testing::TestWithParam<Combo> {};

TEST_P(RoundTrip, RequestComesBackByteForByte) {
  const Combo c = GetParam();
  const Keys k = keys_for(algo_of(c.scheme));
  for (const bool all : {false, true}) {
    for (const bool as_json : {true, false}) {
      SCOPED_TRACE(std::string(all ? "all_fields" : "content") + (as_json ? " arrays_as_json" : " per-part"));
      const FieldPolicy p = policy(c.scheme, c.v2, all, as_json);
      auto sealed = encrypt_request(kRequest, p, k.model_pub);
      ASSERT_TRUE(sealed) << sealed.error().message;
      EXPECT_EQ(sealed->find("be brief"), std::string::npos);
      EXPECT_EQ(sealed->find("sunny"), std::string::npos);
      EXPECT_EQ(sealed->find("look"), std::string::npos);
      EXPECT_EQ(sealed->find("thinking") == std::string::npos, all);
      auto opened = decrypt_request(*sealed, p, k.model);
      ASSERT_TRUE(opened) << opened.error().message;
      EXPECT_EQ(*opened, kRequest);
      // The wrong model key opens nothing.
      const Keys other = keys_for(algo_of(c.scheme));
      EXPECT_TRUE(fails_with(decrypt_request(*sealed, p, other.model), Errc::authentication_failed));
    }
  }
}

TEST_P(RoundTrip, ResponseComesBackByteForByte) {
  const Combo c = GetParam();
  const Keys k = keys_for(algo_of(c.scheme));
  for (const bool all : {false, true}) {
    for (const bool one : {false, true}) {
      SCOPED_TRACE(std::string(all ? "all_fields" : "default") + (one ? " one ephemeral" : " per field"));
      const FieldPolicy p = policy(c.scheme, c.v2, all);
      ResponseSealer sealer(p, k.client_pub, one);
      auto sealed = sealer.encrypt(kCompletion);
      ASSERT_TRUE(sealed) << sealed.error().message;
      EXPECT_EQ(sealed->find("Hello!"), std::string::npos);
      EXPECT_EQ(sealed->find("hmm"), std::string::npos);
      auto opened = decrypt_response(*sealed, p, k.client);
      ASSERT_TRUE(opened) << opened.error().message;
      EXPECT_EQ(*opened, kCompletion);
      for (std::size_t i = 0; i < kChunks.size(); ++i) {
        auto chunk = sealer.encrypt(kChunks[i]);
        ASSERT_TRUE(chunk) << chunk.error().message;
        auto back = decrypt_response(*chunk, p, k.client);
        ASSERT_TRUE(back) << back.error().message;
        EXPECT_EQ(*back, kChunksOpened[i]) << i;
      }
      const Keys other = keys_for(algo_of(c.scheme));
      EXPECT_TRUE(fails_with(decrypt_response(*sealed, p, other.client), Errc::authentication_failed));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Schemes, RoundTrip,
                         ::testing::Values(Combo{Scheme::ecdsa, false}, Combo{Scheme::ecdsa, true},
                                           Combo{Scheme::ed25519_aes_gcm, false}, Combo{Scheme::ed25519_aes_gcm, true},
                                           Combo{Scheme::ed25519_box, false}, Combo{Scheme::ed25519_xchacha, false},
                                           Combo{Scheme::ed25519_xchacha, true}),
                         combo_name);

TEST(FieldRoundTrip, OneEphemeralPerResponseSealerOrPerField) {
  const Keys k = keys_for(Algo::ecdsa);
  for (const bool one : {true, false}) {
    ResponseSealer sealer(policy(Scheme::ecdsa, true, true), k.client_pub, one);
    std::set<std::string> ephs;
    std::size_t count = 0;
    for (const auto& chunk : {kCompletion, kChunks[3], kChunks[4], kChunks[5]}) {
      for (const auto& e : envelopes_in(sealer.encrypt(chunk).value())) {
        ephs.insert(e.substr(0, 130));
        ++count;
      }
    }
    EXPECT_GT(count, 10u);
    EXPECT_EQ(ephs.size(), one ? 1u : count);
  }
}

// ---- AAD binding in the walkers: literal AAD strings, and moved envelopes ----

TEST(FieldAadBinding, RequestEnvelopesCarryTheSpecAad) {
  const Keys k = keys_for(Algo::ecdsa);
  auto sealed = encrypt_request(kRequest, policy(Scheme::ecdsa, true, true, false), k.model_pub);
  ASSERT_TRUE(sealed);
  const json::value v = json::parse(*sealed);
  auto open = [&](const json::value& field, const std::string& aad) {
    auto r = open_hex(Scheme::ecdsa, k.model, std::string(field.as_string()), as_bytes(aad));
    return r ? std::string(as_text(*r)) : "<" + r.error().message + ">";
  };
  const auto& m = v.at("messages").as_array();
  const std::string tail = "|n=nonce-0123456789abcdef|ts=1700000123";
  EXPECT_EQ(open(m[0].at("content"), "v2|req|algo=ecdsa|model=m-1|m=0|c=-" + tail), "be brief");
  EXPECT_EQ(open(m[1].at("content").as_array()[0].at("text"), "v2|req|algo=ecdsa|model=m-1|m=1|c=0" + tail), "look");
  EXPECT_EQ(open(m[1].at("name"), "v2|req|algo=ecdsa|model=m-1|m=1|c=name" + tail), "alice");
  EXPECT_EQ(open(m[2].at("reasoning_content"), "v2|req|algo=ecdsa|model=m-1|m=2|c=reasoning_content" + tail), "thinking");
  EXPECT_EQ(open(m[2].at("tool_calls").as_array()[0].at("function").at("arguments"),
                 "v2|req|algo=ecdsa|model=m-1|m=2|c=tool_calls.0.function.arguments" + tail),
            "{\"city\":\"Paris\"}");
  EXPECT_EQ(open(m[3].at("content"), "v2|req|algo=ecdsa|model=m-1|m=3|c=-" + tail), "sunny \xc3\xa9\n");
  EXPECT_EQ(open(m[4].at("content"), "v2|req|algo=ecdsa|model=m-1|m=4|c=-" + tail), "");
  EXPECT_EQ(open(m[4].at("audio").at("data"), "v2|req|algo=ecdsa|model=m-1|m=4|c=audio.data" + tail), "AAAA");
  EXPECT_EQ(open(m[4].at("function_call").at("name"), "v2|req|algo=ecdsa|model=m-1|m=4|c=function_call.name" + tail), "f");
  // parameters: its own bytes, as the client wrote them.
  EXPECT_EQ(open(v.at("tools").as_array()[0].at("function").at("parameters"),
                 "v2|req|algo=ecdsa|model=m-1|m=-|c=tools.0.function.parameters" + tail),
            R"({"type":"object",  "properties":{"city":{"type":"string"}}})");
  EXPECT_EQ(open(v.at("tool_choice").at("function").at("name"), "v2|req|algo=ecdsa|model=m-1|m=-|c=tool_choice.function.name" + tail),
            "get_weather");
  EXPECT_EQ(open(v.at("function_call").at("name"), "v2|req|algo=ecdsa|model=m-1|m=-|c=function_call.name" + tail), "f");
}

TEST(FieldAadBinding, ResponseEnvelopesCarryTheSpecAad) {
  const Keys k = keys_for(Algo::ed25519);
  ResponseSealer sealer(policy(Scheme::ed25519_aes_gcm, true, true), k.client_pub, true);
  auto sealed = sealer.encrypt(kCompletion);
  ASSERT_TRUE(sealed);
  const json::value v = json::parse(*sealed);
  auto open = [&](const json::value& field, const std::string& field_name, int choice = 0) {
    const std::string aad = "v2|resp|algo=ed25519|model=m-1|id=chatcmpl-1|choice=" + std::to_string(choice) +
                            "|field=" + field_name + "|n=nonce-0123456789abcdef|ts=1700000123";
    auto r = open_hex(Scheme::ed25519_aes_gcm, k.client, std::string(field.as_string()), as_bytes(aad));
    return r ? std::string(as_text(*r)) : "<" + r.error().message + ">";
  };
  const auto& c0 = v.at("choices").as_array()[0];
  const auto& msg = c0.at("message");
  EXPECT_EQ(open(msg.at("content"), "content"), "Hello!");
  EXPECT_EQ(open(msg.at("reasoning_content"), "reasoning_content"), "hmm");
  EXPECT_EQ(open(msg.at("reasoning"), "reasoning"), "hmm too");
  EXPECT_EQ(open(msg.at("audio").at("data"), "audio.data"), "UklGRg==");
  EXPECT_EQ(open(msg.at("tool_calls").as_array()[0].at("function").at("name"), "tool_calls.0.function.name"), "f");
  EXPECT_EQ(open(msg.at("function_call").at("arguments"), "function_call.arguments"), "{}");
  const auto& top = c0.at("logprobs").at("content").as_array()[0].at("top_logprobs").as_array()[0];
  EXPECT_EQ(open(top.at("token"), "logprobs.content.0.top_logprobs.0.token"), "Hi");
  EXPECT_EQ(open(top.at("bytes"), "logprobs.content.0.top_logprobs.0.bytes"), "[72, 105]");
  EXPECT_EQ(open(v.at("choices").as_array()[1].at("message").at("content"), "content", 1), "");
}

// Swaps the first occurrences of two JSON string values in `text`.
std::string swap_values(std::string text, const std::string& a, const std::string& b) {
  const auto pa = text.find(a), pb = text.find(b);
  EXPECT_NE(pa, std::string::npos);
  EXPECT_NE(pb, std::string::npos);
  EXPECT_NE(pa, pb);
  if (pa < pb) {
    text.replace(pb, b.size(), a);
    text.replace(pa, a.size(), b);
  } else {
    text.replace(pa, a.size(), b);
    text.replace(pb, b.size(), a);
  }
  return text;
}

TEST(FieldAadBinding, MovedOrRelabelledEnvelopesFailInV2AndOpenInV1) {
  for (const Scheme scheme : {Scheme::ecdsa, Scheme::ed25519_aes_gcm, Scheme::ed25519_xchacha}) {
    const Keys k = keys_for(algo_of(scheme));
    const std::string req = R"({"model":"m","messages":[{"role":"user","content":"one"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}]})";
    for (const bool v2 : {true, false}) {
      SCOPED_TRACE(std::string(v2 ? "v2 " : "v1 ") + std::to_string(static_cast<int>(scheme)));
      const FieldPolicy p = policy(scheme, v2, false, false);
      const std::string sealed = encrypt_request(req, p, k.model_pub).value();
      const auto env = envelopes_in(sealed);
      ASSERT_EQ(env.size(), 3u);
      const auto want = v2 ? Errc::authentication_failed : Errc::invalid_argument;
      // Message 0's content moved to message 1's part 0 (and back): m and c differ.
      auto swapped = decrypt_request(swap_values(sealed, env[0], env[1]), p, k.model);
      if (v2) {
        EXPECT_TRUE(fails_with(swapped, want));
      } else {
        EXPECT_TRUE(swapped);  // v1 has no AAD: the known weakness v2 fixes
      }
      // Parts 0 and 1 of one message swapped.
      auto parts = decrypt_request(swap_values(sealed, env[1], env[2]), p, k.model);
      EXPECT_EQ(static_cast<bool>(parts), !v2);
      // Another request model.
      std::string model = sealed;
      model.replace(model.find("\"m\""), 3, "\"n\"");
      EXPECT_EQ(static_cast<bool>(decrypt_request(model, p, k.model)), !v2);
      // The server's v2 context differs from the client's (nonce or timestamp).
      if (v2) {
        FieldPolicy other = p;
        other.v2 = V2Context{kV2.nonce + "x", kV2.timestamp};
        EXPECT_TRUE(fails_with(decrypt_request(sealed, other, k.model), Errc::authentication_failed));
        other.v2 = V2Context{kV2.nonce, kV2.timestamp - 1};
        EXPECT_TRUE(fails_with(decrypt_request(sealed, other, k.model), Errc::authentication_failed));
        // A v1 envelope offered to a v2 server.
        FieldPolicy v1 = p;
        v1.v2.reset();
        EXPECT_TRUE(fails_with(decrypt_request(encrypt_request(req, v1, k.model_pub).value(), p, k.model),
                               Errc::authentication_failed));
      }
    }
  }
}

TEST(FieldAadBinding, ResponseEnvelopesMovedBetweenChoicesOrFieldsOrResponsesFail) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, true, true);
  const std::string chunk =
      R"({"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"A","reasoning_content":"R"}},{"index":1,"delta":{"content":"B"}}]})";
  ResponseSealer sealer(p, k.client_pub, true);
  const std::string sealed = sealer.encrypt(chunk).value();
  const auto env = envelopes_in(sealed);
  ASSERT_EQ(env.size(), 3u);
  ASSERT_TRUE(decrypt_response(sealed, p, k.client));
  EXPECT_TRUE(fails_with(decrypt_response(swap_values(sealed, env[0], env[2]), p, k.client), Errc::authentication_failed));
  EXPECT_TRUE(fails_with(decrypt_response(swap_values(sealed, env[0], env[1]), p, k.client), Errc::authentication_failed));
  std::string id = sealed;
  id.replace(id.find("\"c1\""), 4, "\"c2\"");
  EXPECT_TRUE(fails_with(decrypt_response(id, p, k.client), Errc::authentication_failed));
  std::string model = sealed;
  model.replace(model.find("\"m\""), 3, "\"x\"");
  EXPECT_TRUE(fails_with(decrypt_response(model, p, k.client), Errc::authentication_failed));
  // choice.index is not what is bound: the array position is (R5).
  std::string index = sealed;
  index.replace(index.find("\"index\":0"), 9, "\"index\":7");
  EXPECT_TRUE(decrypt_response(index, p, k.client));
  FieldPolicy other = p;
  other.v2->nonce = "another-nonce-0000";
  EXPECT_TRUE(fails_with(decrypt_response(sealed, other, k.client), Errc::authentication_failed));
}

// ---- multimodal conventions ----

TEST(FieldMultimodal, ServerTurnsAJsonArrayPlaintextIntoContent) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, false);
  Sealer to_model(Scheme::ecdsa, k.model_pub);
  auto body_with = [&](std::string_view plaintext) {
    return R"({"messages":[{"role":"user","content":")" + to_model.seal_hex(as_bytes(plaintext)).value() + R"("}]})";
  };
  struct Case {
    std::string plaintext, content;
  };
  const std::vector<Case> cases = {
      {R"([{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}])",
       R"([{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}])"},
      {" [1, 2]\n", " [1, 2]\n"},                        // still the array, bytes kept
      {"[]", "[]"},
      {R"({"a":1})", R"("{\"a\":1}")"},                   // JSON but not an array: stays text
      {"42", R"("42")"},
      {"[1,", R"("[1,")"},                                // not JSON
      {"[NaN]", R"("[NaN]")"},                            // Python would take it; strict JSON does not
      {"say \"hi\"\n\ttab \x01", R"("say \"hi\"\n\ttab \u0001")"},
  };
  for (const auto& c : cases) {
    auto out = decrypt_request(body_with(c.plaintext), p, k.model);
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(*out, R"({"messages":[{"role":"user","content":)" + c.content + "}]}") << c.plaintext;
  }
}

TEST(FieldMultimodal, ServerOpensPerPartArraysAndPassesOtherParts) {
  const Keys k = keys_for(Algo::ed25519);
  const FieldPolicy p = policy(Scheme::ed25519_aes_gcm, true, false, false);
  const std::string req =
      R"({"model":"vl","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}},{"type":"text","text":"what is this?"},{"type":"input_audio","input_audio":{"data":"AA"}}]}]})";
  auto sealed = encrypt_request(req, p, k.model_pub);
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(mask(*sealed).find("what is this"), std::string::npos);
  EXPECT_NE(sealed->find("https://x/y.png"), std::string::npos);  // the documented per-part leak
  auto opened = decrypt_request(*sealed, p, k.model);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*opened, req);
}

TEST(FieldMultimodal, ClientRefusesPartsItCannotEncryptPerPart) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, false, false, false);
  // dstack opens only type "text"; any other part's text would reach it in plaintext.
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[{"role":"user","content":[{"type":"input_text","text":"x"}]}]})", p,
                                         k.model_pub),
                         Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[{"role":"user","content":["bare string part"]}]})", p, k.model_pub),
                         Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[{"role":"user","content":[{"type":"text","text":7}]}]})", p,
                                         k.model_pub),
                         Errc::invalid_argument));
  // As one JSON string, the same arrays are fine.
  EXPECT_TRUE(encrypt_request(R"({"messages":[{"role":"user","content":["bare string part"]}]})",
                              policy(Scheme::ecdsa, false), k.model_pub));
}

TEST(FieldMultimodal, ResponseArrayContentPartsAreEncrypted) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, true);
  const std::string resp =
      R"({"id":"r","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"part one"},{"type":"image","url":"u"},{"type":"output_text","text":"two"}]}}]})";
  auto sealed = ResponseSealer(p, k.client_pub, false).encrypt(resp);
  ASSERT_TRUE(sealed) << sealed.error().message;
  EXPECT_EQ(mask(*sealed),
            R"({"id":"r","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":[{"type":"text","text":"<E>"},{"type":"image","url":"u"},{"type":"output_text","text":"<E>"}]}}]})");
  const json::value v = json::parse(*sealed);
  const auto& part2 = v.at("choices").as_array()[0].at("message").at("content").as_array()[2].at("text");
  const std::string aad = "v2|resp|algo=ecdsa|model=m|id=r|choice=0|field=content.2|n=nonce-0123456789abcdef|ts=1700000123";
  EXPECT_TRUE(open_hex(Scheme::ecdsa, k.client, std::string(part2.as_string()), as_bytes(aad)));
  auto opened = decrypt_response(*sealed, p, k.client);
  ASSERT_TRUE(opened) << opened.error().message;
  EXPECT_EQ(*opened, resp);
  // A plaintext part text is refused by the client.
  EXPECT_TRUE(fails_with(decrypt_response(resp, p, k.client), Errc::malformed));
}

// ---- empty strings (R7) ----

TEST(FieldEmptyStrings, ServerDropsEmptyDeltaContentWhereverItSits) {
  const Keys k = keys_for(Algo::ecdsa);
  ResponseSealer sealer(policy(Scheme::ecdsa, false), k.client_pub, false);
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"choices":[{"delta":{"content":""}}]})", R"({"choices":[{"delta":{}}]})"},
      {R"({"choices":[{"delta":{ "content" : "" }}]})", R"({"choices":[{"delta":{  }}]})"},  // the spaces around stay
      {R"({"choices":[{"delta":{"content":"","role":"assistant"}}]})", R"({"choices":[{"delta":{"role":"assistant"}}]})"},
      {R"({"choices":[{"delta":{"role":"assistant", "content":"" , "x":1}}]})", R"({"choices":[{"delta":{"role":"assistant" , "x":1}}]})"},
      {R"({"choices":[{"delta":{"a":"\"","con\u0074ent":""}}]})", R"({"choices":[{"delta":{"a":"\""}}]})"},
      {R"({"choices":[{"delta":{"k\\":1,"content":""}}]})", R"({"choices":[{"delta":{"k\\":1}}]})"},
      {R"({"choices":[{"delta":{"content":"","k\\\"":1}}]})", R"({"choices":[{"delta":{"k\\\"":1}}]})"},
  };
  for (const auto& [in, out] : cases) {
    auto sealed = sealer.encrypt(in);
    ASSERT_TRUE(sealed) << in << ": " << sealed.error().message;
    EXPECT_EQ(*sealed, out) << in;
  }
}

TEST(FieldEmptyStrings, ServerEncryptsOtherEmptyStrings) {
  const Keys k = keys_for(Algo::ecdsa);
  ResponseSealer sealer(policy(Scheme::ecdsa, false, true), k.client_pub, false);
  auto sealed = sealer.encrypt(
      R"({"choices":[{"message":{"content":"","reasoning_content":""}},{"delta":{"reasoning_content":"","tool_calls":[{"function":{"arguments":""}}]}}]})");
  ASSERT_TRUE(sealed);
  EXPECT_EQ(mask(*sealed),
            R"({"choices":[{"message":{"content":"<E>","reasoning_content":"<E>"}},{"delta":{"reasoning_content":"<E>","tool_calls":[{"function":{"arguments":"<E>"}}]}}]})");
}

TEST(FieldEmptyStrings, ClientEncryptsEmptyContentAndServerRules) {
  const Keys k = keys_for(Algo::ecdsa);
  const std::string req = R"({"model":"m","messages":[{"role":"user","content":""}]})";
  for (const bool v2 : {false, true}) {
    const FieldPolicy p = policy(Scheme::ecdsa, v2);
    auto sealed = encrypt_request(req, p, k.model_pub);
    ASSERT_TRUE(sealed);
    EXPECT_EQ(mask(*sealed), R"({"model":"m","messages":[{"role":"user","content":"<E>"}]})");
    EXPECT_EQ(decrypt_request(*sealed, p, k.model).value(), req);
    // A plaintext "" reaching the server: NEAR-style v1 clients send it; in v2 it is refused.
    if (v2) {
      EXPECT_TRUE(fails_with(decrypt_request(req, p, k.model), Errc::invalid_argument));
    } else {
      EXPECT_EQ(decrypt_request(req, p, k.model).value(), req);
    }
  }
}

TEST(FieldEmptyStrings, ClientPassesOnlyEmptyAndWhitespace) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, false, true);
  for (const std::string blank : {"", " ", "\\n", " \\n\\t\\r ", "\\f\\u000b"}) {
    const std::string chunk = R"({"choices":[{"delta":{"content":")" + blank + R"(","reasoning_content":")" + blank + R"("}}]})";
    auto out = decrypt_response(chunk, p, k.client);
    ASSERT_TRUE(out) << blank << ": " << out.error().message;
    EXPECT_EQ(*out, chunk);
  }
  // Non-ASCII whitespace (U+00A0, U+2003) is text, and text must be encrypted.
  for (const std::string text : {"\\u00a0", "\xe2\x80\x83", "Hello", "0", "deadbeef", "."}) {
    EXPECT_TRUE(fails_with(decrypt_response(R"({"choices":[{"delta":{"content":")" + text + R"("}}]})", p, k.client),
                           Errc::malformed))
        << text;
  }
}

// ---- fail closed ----

TEST(FieldFailClosed, ClientRefusesPlaintextInEveryCoveredResponseField) {
  const Keys k = keys_for(Algo::ed25519);
  const FieldPolicy p = policy(Scheme::ed25519_xchacha, false, true);
  const std::string secret = "PLAINTEXT-LEAK-MARKER";
  const std::vector<std::string> chunks = {
      R"({"choices":[{"delta":{"content":"X"}}]})",
      R"({"choices":[{"message":{"content":"X"}}]})",
      R"({"choices":[{"delta":{"reasoning_content":"X"}}]})",
      R"({"choices":[{"delta":{"reasoning":"X"}}]})",
      R"({"choices":[{"delta":{"refusal":"X"}}]})",
      R"({"choices":[{"delta":{"audio":{"data":"X"}}}]})",
      R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"X"}}]}}]})",
      R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"arguments":"X"}}]}}]})",
      R"({"choices":[{"message":{"function_call":{"name":"X","arguments":"{}"}}}]})",
      R"({"choices":[{"delta":{"content":[{"type":"text","text":"X"}]}}]})",
      R"({"choices":[{"logprobs":{"content":[{"token":"X","bytes":null}]}}]})",
      R"({"choices":[{"logprobs":{"refusal":[{"token":"","bytes":null,"top_logprobs":[{"token":"X"}]}]}}]})",
  };
  for (std::string chunk : chunks) {
    chunk.replace(chunk.find("\"X\""), 3, "\"" + secret + "\"");
    auto r = decrypt_response(chunk, p, k.client);
    ASSERT_FALSE(r) << chunk;
    EXPECT_EQ(r.error().message.find(secret), std::string::npos) << r.error().message;
  }
  // Plaintext logprob bytes and wrongly typed values are refused too.
  for (const std::string chunk : {
           R"({"choices":[{"logprobs":{"content":[{"token":"","bytes":[72]}]}}]})",
           R"({"choices":[{"delta":{"content":42}}]})",
           R"({"choices":[{"delta":{"content":{"text":"x"}}}]})",
           R"({"choices":[{"delta":{"reasoning_content":true}}]})",
           R"({"choices":[{"delta":{"tool_calls":[{"function":{"arguments":{"a":1}}}]}}]})",
           R"({"choices":[{"delta":{"tool_calls":{"function":{}}}}]})",
           R"({"choices":[{"delta":"text"}]})",
           R"({"choices":["text"]})",
           R"({"choices":{"0":{"delta":{"content":"x"}}}})",
       }) {
    EXPECT_FALSE(decrypt_response(chunk, p, k.client)) << chunk;
  }
}

TEST(FieldFailClosed, ClientWithoutAllFieldsLeavesThoseFieldsAsTheyCame) {
  const Keys k = keys_for(Algo::ecdsa);
  const std::string chunk =
      R"({"choices":[{"delta":{"tool_calls":[{"index":0,"function":{"name":"plain","arguments":"{}"}}],"refusal":"no"},"logprobs":{"content":[{"token":"t","bytes":[116]}]}}]})";
  auto out = decrypt_response(chunk, policy(Scheme::ecdsa, false), k.client);
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, chunk);
}

TEST(FieldFailClosed, BrokenEnvelopesAreErrorsNeverPassedThrough) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, true);
  const std::string chunk = R"({"id":"i","model":"m","choices":[{"delta":{"content":"secret text"}},{"delta":{"content":"more"}}]})";
  const std::string sealed = ResponseSealer(p, k.client_pub, false).encrypt(chunk).value();
  const auto env = envelopes_in(sealed);
  ASSERT_EQ(env.size(), 2u);
  // Tamper with the second field only: no partial output, just the error.
  std::string bad = sealed;
  const auto pos = bad.find(env[1]) + env[1].size() - 1;
  bad[pos] = bad[pos] == '0' ? '1' : '0';
  EXPECT_TRUE(fails_with(decrypt_response(bad, p, k.client), Errc::authentication_failed));
  std::string truncated = sealed;
  truncated.erase(truncated.find(env[0]) + 100, env[0].size() - 100);
  EXPECT_TRUE(fails_with(decrypt_response(truncated, p, k.client), Errc::malformed));
  std::string odd = sealed;
  odd.erase(odd.find(env[0]), 1);
  EXPECT_TRUE(fails_with(decrypt_response(odd, p, k.client), Errc::malformed));
  std::string bad_key = sealed;
  bad_key.replace(bad_key.find(env[0]), 2, "02");
  EXPECT_TRUE(fails_with(decrypt_response(bad_key, p, k.client), Errc::invalid_key));
  // The error names where, not what.
  auto r = decrypt_response(bad, p, k.client);
  EXPECT_NE(r.error().message.find("choices[1].delta.content"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find(env[1].substr(0, 20)), std::string::npos);
}

TEST(FieldFailClosed, ServerRequestRules) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, false);
  auto body = [](const std::string& content_json) {
    return R"({"messages":[{"role":"user","content":)" + content_json + "}]}";
  };
  EXPECT_TRUE(fails_with(decrypt_request(body(R"("hello")"), p, k.model), Errc::invalid_argument));  // not hex
  EXPECT_TRUE(fails_with(decrypt_request(body(R"("  ")"), p, k.model), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(decrypt_request(body(R"("abc")"), p, k.model), Errc::invalid_argument));   // odd
  EXPECT_TRUE(fails_with(decrypt_request(body(R"("abcd")"), p, k.model), Errc::malformed));         // too short
  EXPECT_TRUE(fails_with(decrypt_request(body("[{\"type\":\"text\",\"text\":\"plain\"}]"), p, k.model),
                         Errc::invalid_argument));
  EXPECT_TRUE(fails_with(decrypt_request(body("[{\"type\":\"text\",\"text\":\"\"}]"), p, k.model), Errc::invalid_argument));
  // null content, non-object messages and non-text parts pass, as in dstack.
  EXPECT_EQ(decrypt_request(body("null"), p, k.model).value(), body("null"));
  EXPECT_EQ(decrypt_request(R"({"messages":["x",1]})", p, k.model).value(), R"({"messages":["x",1]})");
  EXPECT_EQ(decrypt_request(R"({"model":"m"})", p, k.model).value(), R"({"model":"m"})");
  // A plaintext that is not UTF-8.
  Sealer to_model(Scheme::ecdsa, k.model_pub);
  const Bytes latin1 = {'c', 'a', 'f', 0xe9};
  auto r = decrypt_request(body("\"" + to_model.seal_hex(latin1).value() + "\""), p, k.model);
  ASSERT_TRUE(fails_with(r, Errc::malformed));
  EXPECT_NE(r.error().message.find("not valid UTF-8"), std::string::npos);
  for (const Bytes& bad : {Bytes{0xc0, 0x80}, Bytes{0xed, 0xa0, 0x80}, Bytes{0xf4, 0x90, 0x80, 0x80}, Bytes{0xe2, 0x82}}) {
    EXPECT_TRUE(fails_with(decrypt_request(body("\"" + to_model.seal_hex(bad).value() + "\""), p, k.model), Errc::malformed));
  }
  const std::string utf8 = "\xf0\x9f\x98\x80 \xe6\x97\xa5 \xc3\xa9";
  EXPECT_EQ(decrypt_request(body("\"" + to_model.seal_hex(as_bytes(utf8)).value() + "\""), p, k.model).value(),
            body("\"" + utf8 + "\""));
}

TEST(FieldFailClosed, ClientRefusesNonUtf8Plaintext) {
  const Keys k = keys_for(Algo::ecdsa);
  Sealer to_client(Scheme::ecdsa, k.client_pub);
  const std::string chunk = R"({"choices":[{"delta":{"content":")" + to_client.seal_hex(Bytes{0xff}).value() + R"("}}]})";
  EXPECT_TRUE(fails_with(decrypt_response(chunk, policy(Scheme::ecdsa, false), k.client), Errc::malformed));
}

TEST(FieldFailClosed, ServerOptionalFieldsAreLenientButEnvelopesMustOpen) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, false, true);
  // A client that did not encrypt these (NEAR's server reads them leniently too).
  const std::string plain =
      R"({"messages":[{"role":"assistant","name":"bot","reasoning_content":"r","tool_calls":[{"function":{"name":"f","arguments":"{}"}}]}],"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]})";
  EXPECT_EQ(decrypt_request(plain, p, k.model).value(), plain);
  // Something that looks like an envelope must open.
  const std::string fake = std::string(2 * 93, 'a');
  EXPECT_TRUE(fails_with(decrypt_request(R"({"messages":[{"role":"assistant","name":")" + fake + R"("}]})", p, k.model),
                         Errc::invalid_key));
  Sealer other(Scheme::ecdsa, keys_for(Algo::ecdsa).model_pub);
  const std::string foreign = other.seal_hex(as_bytes("x")).value();
  EXPECT_TRUE(fails_with(
      decrypt_request(R"({"messages":[],"tools":[{"function":{"description":")" + foreign + R"("}}]})", p, k.model),
      Errc::authentication_failed));
  // History reasoning is read even without all_fields (NEAR's server always decrypts it).
  Sealer to_model(Scheme::ecdsa, k.model_pub);
  const std::string hist = R"({"messages":[{"role":"assistant","reasoning":")" + to_model.seal_hex(as_bytes("why")).value() + R"("}]})";
  EXPECT_EQ(decrypt_request(hist, policy(Scheme::ecdsa, false), k.model).value(),
            R"({"messages":[{"role":"assistant","reasoning":"why"}]})");
  // parameters: restored as JSON when the plaintext is JSON, kept as text otherwise.
  const std::string params = R"({"messages":[],"tools":[{"function":{"parameters":")" +
                             to_model.seal_hex(as_bytes(R"( {"type":"object"} )")).value() + R"("}},{"function":{"parameters":")" +
                             to_model.seal_hex(as_bytes("not json")).value() + R"("}}]})";
  EXPECT_EQ(decrypt_request(params, p, k.model).value(),
            R"({"messages":[],"tools":[{"function":{"parameters": {"type":"object"} }},{"function":{"parameters":"not json"}}]})");
}

TEST(FieldFailClosed, ClientRefusesWhatItCannotEncrypt) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy all = policy(Scheme::ecdsa, false, true);
  const FieldPolicy plain = policy(Scheme::ecdsa, false);
  EXPECT_TRUE(fails_with(encrypt_request("not json", plain, k.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request("[1]", plain, k.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"model":"m"})", plain, k.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":{}})", plain, k.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":["hi"]})", plain, k.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[{"role":"user","content":5}]})", plain, k.model_pub),
                         Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[{"role":"user","content":{"text":"x"}}]})", plain, k.model_pub),
                         Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[{"role":"user","name":7}]})", all, k.model_pub),
                         Errc::invalid_argument));
  EXPECT_TRUE(fails_with(
      encrypt_request(R"({"messages":[{"role":"assistant","tool_calls":[{"function":{"arguments":{"a":1}}}]}]})", all, k.model_pub),
      Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[],"tools":{"function":{}}})", all, k.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(R"({"messages":[],"tools":["f"]})", all, k.model_pub), Errc::invalid_argument));
  // The v2 AAD needs a string model.
  EXPECT_TRUE(fails_with(encrypt_request(R"({"model":5,"messages":[]})", policy(Scheme::ecdsa, true), k.model_pub),
                         Errc::malformed));
  // Nothing else is required: tool_choice strings and tools without functions pass.
  EXPECT_TRUE(encrypt_request(R"({"messages":[],"tool_choice":"auto","function_call":"none","tools":[{"type":"web_search"}]})",
                              all, k.model_pub));
}

TEST(FieldFailClosed, DuplicateKeysOnWalkedPathsAreRefused) {
  const Keys k = keys_for(Algo::ecdsa);
  const FieldPolicy p = policy(Scheme::ecdsa, false, true);
  for (const std::string body : {
           R"({"messages":[{"role":"user","content":"a","content":"b"}]})",
           R"({"messages":[{"role":"user","content":"a"}],"messages":[]})",
           R"({"messages":[{"role":"user","con\u0074ent":"a","content":"b"}]})",
           R"({"messages":[{"role":"user","content":null,"name":"x","name":"y"}]})",
           R"({"messages":[],"tools":[{"function":{"name":"a","name":"b"}}]})",
       }) {
    EXPECT_TRUE(fails_with(encrypt_request(body, p, k.model_pub), Errc::malformed)) << body;
    EXPECT_TRUE(fails_with(decrypt_request(body, p, k.model), Errc::malformed)) << body;
  }
  for (const std::string body : {
           R"({"choices":[],"choices":[{"delta":{"content":"x"}}]})",
           R"({"choices":[{"delta":{"content":"x","content":"y"}}]})",
           R"({"choices":[{"delta":{},"delta":{"content":"x"}}]})",
       }) {
    EXPECT_TRUE(fails_with(ResponseSealer(p, k.client_pub, false).encrypt(body), Errc::malformed)) << body;
    EXPECT_TRUE(fails_with(decrypt_response(body, p, k.client), Errc::malformed)) << body;
  }
}

TEST(FieldFailClosed, ServerNeverReturnsPlaintextForBadResponses) {
  const Keys k = keys_for(Algo::ecdsa);
  ResponseSealer sealer(policy(Scheme::ecdsa, false, true), k.client_pub, false);
  for (const std::string body : {
           "not json",
           R"(["content","x"])",
           R"({"choices":[{"delta":{"content":42}}]})",
           R"({"choices":[{"message":{"tool_calls":[{"function":{"arguments":{"a":1}}}]}}]})",
           R"({"choices":[{"delta":{"content":[{"text":5}]}}]})",
           R"({"choices":"x"})",
           R"({"choices":[{"logprobs":{"content":[{"token":1}]}}]})",
       }) {
    EXPECT_FALSE(sealer.encrypt(body)) << body;
  }
  // Bodies without choices carry nothing of ours and pass unchanged both ways.
  const std::string error_body = R"({"error":{"message":"bad","type":"x"}})";
  EXPECT_EQ(sealer.encrypt(error_body).value(), error_body);
  EXPECT_EQ(decrypt_response(error_body, policy(Scheme::ecdsa, false), k.client).value(), error_body);
}

TEST(FieldFailClosed, PolicyAndKeyMustMatch) {
  const Keys ec = keys_for(Algo::ecdsa);
  const Keys ed = keys_for(Algo::ed25519);
  const std::string req = R"({"messages":[{"role":"user","content":"x"}]})";
  EXPECT_TRUE(fails_with(encrypt_request(req, policy(Scheme::ed25519_box, false), ec.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(req, policy(Scheme::ecdsa, false), ed.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(encrypt_request(req, policy(Scheme::ed25519_box, true), ed.model_pub), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(decrypt_request(req, policy(Scheme::ed25519_box, true), ed.model), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(decrypt_response("{}", policy(Scheme::ecdsa, false), ed.client), Errc::invalid_argument));
  EXPECT_TRUE(fails_with(ResponseSealer(policy(Scheme::ed25519_aes_gcm, false), ec.client_pub, false).encrypt("{}"),
                         Errc::invalid_argument));
}

TEST(FieldFaithful, EverythingOutsideTheFieldsIsKept) {
  const Keys k = keys_for(Algo::ecdsa);
  // Escapes in field values come back decoded (they are new JSON strings), but every other byte
  // — escapes in other members, numbers, whitespace, key order — is the original.
  const std::string req =
      "\n {\"z\":1,\"messages\" :[ {\"content\" : \"caf\\u00e9 \\/\" ,\"role\":\"user\", \"x\":\"\\u00e9\"}\t] ,"
      "\"a\":-0.0E+00, \"n\":123456789012345678901234567890}\r\n";
  const FieldPolicy p = policy(Scheme::ecdsa, true);
  auto sealed = encrypt_request(req, p, k.model_pub);
  ASSERT_TRUE(sealed);
  EXPECT_EQ(mask(*sealed),
            "\n {\"z\":1,\"messages\" :[ {\"content\" : \"<E>\" ,\"role\":\"user\", \"x\":\"\\u00e9\"}\t] ,"
            "\"a\":-0.0E+00, \"n\":123456789012345678901234567890}\r\n");
  EXPECT_EQ(decrypt_request(*sealed, p, k.model).value(),
            "\n {\"z\":1,\"messages\" :[ {\"content\" : \"caf\xc3\xa9 /\" ,\"role\":\"user\", \"x\":\"\\u00e9\"}\t] ,"
            "\"a\":-0.0E+00, \"n\":123456789012345678901234567890}\r\n");
}

}  // namespace
}  // namespace e2ee::protocol::field

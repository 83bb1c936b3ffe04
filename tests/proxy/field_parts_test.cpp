// Pure parts of the field-level providers: Venice's request preparation (what is refused, what is
// stripped, what is forced), each provider's key headers and encryption policy, dstack's response
// confirmation, upstream error mapping, and the completion assembled from a decrypted stream.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/encoding.hpp"
#include "common/raw_json.hpp"
#include "http/headers.hpp"
#include "protocol/field/fields.hpp"
#include "proxy/field/aggregate.hpp"
#include "proxy/field/flavor.hpp"

namespace e2ee::proxy::field {
namespace {

namespace json = boost::json;
using protocol::field::KeyPair;
using protocol::field::Scheme;

json::value parse(std::string_view text) { return json::parse(text); }

PreparedBody prepared(std::string_view body, bool stream) {
  auto out = prepare_venice_body(body, stream);
  if (auto* e = std::get_if<ProxyError>(&out)) ADD_FAILURE() << e->message;
  return std::get<PreparedBody>(std::move(out));
}

ProxyError refused(std::string_view body) {
  auto out = prepare_venice_body(body, true);
  if (!std::holds_alternative<ProxyError>(out)) {
    ADD_FAILURE() << "not refused: " << body;
    return {};
  }
  return std::get<ProxyError>(out);
}

// ---- Venice request -------------------------------------------------------------------------------

TEST(VeniceBody, ForcesStreamingE2eeAndNoVeniceSystemPrompt) {
  const auto p = prepared(R"({"model":"e2ee-glm-5","messages":[{"role":"user","content":"hi"}],"temperature":0.7})", false);
  EXPECT_TRUE(p.upstream_stream);
  const auto doc = parse(p.json).as_object();
  EXPECT_EQ(doc.at("stream"), json::value(true));
  EXPECT_EQ(doc.at("venice_parameters").at("enable_e2ee"), json::value(true));
  EXPECT_EQ(doc.at("venice_parameters").at("include_venice_system_prompt"), json::value(false));
  EXPECT_EQ(doc.at("stream_options").at("include_usage"), json::value(true));  // the aggregate needs usage
  // Everything else byte for byte.
  EXPECT_NE(p.json.find(R"("temperature":0.7)"), std::string::npos);
  EXPECT_NE(p.json.find(R"({"role":"user","content":"hi"})"), std::string::npos);
}

TEST(VeniceBody, KeepsOtherVeniceParametersAndOverridesTheForcedOnes) {
  const auto p = prepared(R"({"model":"m","messages":[],"stream":true,"venice_parameters":{"include_venice_system_prompt":true,
      "enable_web_search":"off","strip_thinking_response":true,"include_search_results_in_stream":false,"enable_e2ee":false}})",
                          true);
  const auto vp = parse(p.json).at("venice_parameters").as_object();
  EXPECT_EQ(vp.at("include_venice_system_prompt"), json::value(false));
  EXPECT_EQ(vp.at("enable_e2ee"), json::value(true));
  EXPECT_EQ(vp.at("strip_thinking_response"), json::value(true));
  EXPECT_FALSE(vp.contains("enable_web_search"));
  EXPECT_FALSE(vp.contains("include_search_results_in_stream"));
  EXPECT_FALSE(parse(p.json).as_object().contains("stream_options"));  // a streaming client's choice
}

TEST(VeniceBody, StripsHintsThatMustNotTravelInPlaintext) {
  const auto p = prepared(R"({"model":"m","messages":[{"role":"user","content":"x"}],"reasoning_effort":"high",
      "prompt_cache_key":"conv-123","prompt_cache_retention":"24h","tool_choice":"auto","parallel_tool_calls":true,
      "tools":[],"response_format":{"type":"text"}})",
                          true);
  const auto doc = parse(p.json).as_object();
  for (const char* key : {"reasoning_effort", "prompt_cache_key", "prompt_cache_retention", "tool_choice", "parallel_tool_calls",
                          "tools", "response_format"})
    EXPECT_FALSE(doc.contains(key)) << key;
  EXPECT_EQ(p.json.find("conv-123"), std::string::npos);
}

TEST(VeniceBody, RefusesWhatE2eeCannotCarryAndSaysWhich) {
  auto tools = refused(R"({"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}]})");
  EXPECT_EQ(tools.status, 400);
  EXPECT_EQ(tools.code, "e2ee_unsupported_parameter");
  EXPECT_NE(tools.message.find("tools"), std::string::npos);

  auto several = refused(R"({"model":"m","messages":[],"response_format":{"type":"json_object"},
      "venice_parameters":{"enable_web_search":"auto","character_slug":"alan","enable_x_search":true}})");
  for (const char* named : {"response_format", "enable_web_search", "character_slug", "enable_x_search"})
    EXPECT_NE(several.message.find(named), std::string::npos) << named;

  auto image = refused(R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"what is this"},
      {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]})");
  EXPECT_NE(image.message.find("non-text"), std::string::npos);
  EXPECT_EQ(image.message.find("what is this"), std::string::npos);  // never quotes the prompt

  auto history = refused(R"({"model":"m","messages":[{"role":"assistant","content":null,
      "tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]}]})");
  EXPECT_NE(history.message.find("tool calls"), std::string::npos);

  auto search = refused(R"({"model":"m","messages":[],"web_search_options":{}})");
  EXPECT_NE(search.message.find("web_search_options"), std::string::npos);
}

// The tokens of logprobs are the answer's text; Venice encrypts delta.content only, so they would
// come back in plaintext (found by tests/integration/field_proxy.test.mjs).
TEST(VeniceBody, RefusesLogprobsWhoseTokensWouldComeBackInPlaintext) {
  for (const char* body : {R"({"model":"m","messages":[],"logprobs":true})", R"({"model":"m","messages":[],"logprobs":true,"top_logprobs":3})",
                           R"({"model":"m","messages":[],"top_logprobs":2})"}) {
    auto e = refused(body);
    EXPECT_EQ(e.code, "e2ee_unsupported_parameter") << body;
    EXPECT_NE(e.message.find("logprobs"), std::string::npos) << body;
  }
  // Switched off: nothing to refuse.
  for (const char* body : {R"({"model":"m","messages":[],"logprobs":false})", R"({"model":"m","messages":[],"logprobs":null,"top_logprobs":0})"})
    EXPECT_TRUE(std::holds_alternative<PreparedBody>(prepare_venice_body(body, true))) << body;
}

TEST(Logprobs, AskedForMeansTrueOrANonZeroCount) {
  EXPECT_TRUE(asks_for_logprobs(R"({"logprobs":true})"));
  EXPECT_TRUE(asks_for_logprobs(R"({"logprobs":false,"top_logprobs":5})"));
  EXPECT_TRUE(asks_for_logprobs(R"({"logprobs":1})"));
  EXPECT_TRUE(asks_for_logprobs(R"({"top_logprobs":1e1})"));
  EXPECT_FALSE(asks_for_logprobs(R"({"logprobs":false})"));
  EXPECT_FALSE(asks_for_logprobs(R"({"logprobs":null,"top_logprobs":0})"));
  EXPECT_FALSE(asks_for_logprobs(R"({"top_logprobs":0.0,"logprobs":"yes"})"));
  EXPECT_FALSE(asks_for_logprobs(R"({"messages":[{"logprobs":true}]})"));  // top level only
  EXPECT_FALSE(asks_for_logprobs("not json"));
}

TEST(Logprobs, RefusedWhereTheyWouldTravelInPlaintextAllowedWhereAllFieldsCoverThem) {
  const std::string body = R"({"model":"m","messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":2})";
  for (ProviderKind kind : {ProviderKind::nearai, ProviderKind::dstack}) {
    for (bool all_fields : {false, true}) {
      FieldOptions o;
      o.kind = kind;
      o.encrypt_all_fields = all_fields;
      auto out = make_flavor(o)->prepare(body, true);
      if (all_fields) {
        ASSERT_TRUE(std::holds_alternative<PreparedBody>(out)) << provider_name(kind);
        EXPECT_EQ(std::get<PreparedBody>(out).json, body);
      } else {
        ASSERT_TRUE(std::holds_alternative<ProxyError>(out)) << provider_name(kind);
        const auto& e = std::get<ProxyError>(out);
        EXPECT_EQ(e.status, 400);
        EXPECT_EQ(e.code, "e2ee_unsupported_parameter");
        EXPECT_NE(e.message.find("logprobs"), std::string::npos);
      }
    }
    FieldOptions o;
    o.kind = kind;
    EXPECT_TRUE(std::holds_alternative<PreparedBody>(make_flavor(o)->prepare(R"({"model":"m","messages":[],"logprobs":false})", false)));
  }
}

TEST(VeniceBody, FlattensTextPartArraysToOneString) {
  const auto p = prepared(R"({"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
      {"role":"user","content":"plain"}]})",
                          true);
  const auto messages = parse(p.json).at("messages").as_array();
  EXPECT_EQ(messages[0].at("content"), json::value("a\nb"));
  EXPECT_EQ(messages[1].at("content"), json::value("plain"));
}

TEST(VeniceBody, RejectsMalformedBodies) {
  EXPECT_TRUE(std::holds_alternative<ProxyError>(prepare_venice_body("[]", true)));
  EXPECT_TRUE(std::holds_alternative<ProxyError>(prepare_venice_body(R"({"model":"m"})", true)));
  EXPECT_TRUE(std::holds_alternative<ProxyError>(prepare_venice_body(R"({"model":"m","messages":[],"venice_parameters":3})", true)));
}

// ---- headers and policies -------------------------------------------------------------------------

Session session_with(Algo algo, const KeyPair& model, std::string key_text) {
  auto peer = PeerKey::parse(algo, model.public_raw());
  return Session{KeyPair::generate(algo), VerifiedKey{*peer, std::move(key_text), "id", true}, std::chrono::steady_clock::now(), 1};
}

std::map<std::string, std::string> header_map(const RequestPlan& plan) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : plan.headers) out[k] = v;
  return out;
}

TEST(Plans, VeniceSendsUncompressedKeysAndEcdsa) {
  FieldOptions o;
  o.kind = ProviderKind::venice;
  auto flavor = make_flavor(o);
  const KeyPair model = KeyPair::generate(Algo::ecdsa);
  const Session s = session_with(Algo::ecdsa, model, hex_encode(model.public_raw()));
  const auto plan = flavor->plan(s);
  const auto h = header_map(plan);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h.at("X-Venice-TEE-Client-Pub-Key").size(), 130u);
  EXPECT_EQ(h.at("X-Venice-TEE-Client-Pub-Key").substr(0, 2), "04");
  EXPECT_EQ(h.at("X-Venice-TEE-Client-Pub-Key"), hex_encode(s.client.public_uncompressed()));
  EXPECT_EQ(h.at("X-Venice-TEE-Model-Pub-Key"), "04" + hex_encode(model.public_raw()));
  EXPECT_EQ(h.at("X-Venice-TEE-Signing-Algo"), "ecdsa");
  EXPECT_EQ(plan.policy.scheme, Scheme::ecdsa);
  EXPECT_FALSE(plan.policy.v2);
  EXPECT_EQ(flavor->chat_path(), "/api/v1/chat/completions");
  AttestationNonce n;
  n.bytes.fill(0xab);
  EXPECT_EQ(flavor->attestation_target("e2ee-a b/c", n), "/api/v1/tee/attestation?model=e2ee-a%20b%2Fc&nonce=" + n.hex());
}

TEST(Plans, NearAiPerAlgorithmAndVersion) {
  FieldOptions o;
  o.kind = ProviderKind::nearai;
  o.encrypt_all_fields = true;
  {
    o.algo = Algo::ecdsa;
    auto flavor = make_flavor(o);
    const KeyPair model = KeyPair::generate(Algo::ecdsa);
    const Session s = session_with(Algo::ecdsa, model, "model-key-as-attested");
    const auto plan = flavor->plan(s);
    const auto h = header_map(plan);
    EXPECT_EQ(h.at("X-Signing-Algo"), "ecdsa");
    EXPECT_EQ(h.at("X-Client-Pub-Key").size(), 128u);
    EXPECT_EQ(h.at("X-Model-Pub-Key"), "model-key-as-attested");
    EXPECT_EQ(h.at("X-Encrypt-All-Fields"), "true");
    EXPECT_FALSE(h.count("X-Encryption-Version"));
    EXPECT_EQ(plan.policy.scheme, Scheme::ecdsa);
    EXPECT_TRUE(plan.policy.all_fields);
    AttestationNonce n;
    EXPECT_EQ(flavor->attestation_target("zai-org/GLM-5", n),
              "/v1/attestation/report?model=zai-org%2FGLM-5&signing_algo=ecdsa&nonce=" + n.hex());
  }
  for (int version : {1, 2}) {
    o.algo = Algo::ed25519;
    o.version = version;
    o.encrypt_all_fields = false;
    auto flavor = make_flavor(o);
    const KeyPair model = KeyPair::generate(Algo::ed25519);
    const Session s = session_with(Algo::ed25519, model, hex_encode(model.public_raw()));
    const auto plan = flavor->plan(s);
    const auto h = header_map(plan);
    EXPECT_EQ(h.at("X-Signing-Algo"), "ed25519");
    EXPECT_EQ(h.at("X-Client-Pub-Key"), hex_encode(s.client.public_raw()));
    EXPECT_EQ(h.at("X-Encryption-Version"), std::to_string(version));
    EXPECT_FALSE(h.count("X-Encrypt-All-Fields"));
    EXPECT_EQ(plan.policy.scheme, version == 1 ? Scheme::ed25519_box : Scheme::ed25519_xchacha);
  }
}

TEST(Plans, DstackV2DrawsAFreshNonceAndTimestamp) {
  FieldOptions o;
  o.kind = ProviderKind::dstack;
  o.algo = Algo::ed25519;
  o.version = 2;
  auto flavor = make_flavor(o);
  const KeyPair model = KeyPair::generate(Algo::ed25519);
  const Session s = session_with(Algo::ed25519, model, hex_encode(model.public_raw()));
  const auto a = flavor->plan(s);
  const auto b = flavor->plan(s);
  const auto h = header_map(a);
  EXPECT_EQ(h.at("X-Signing-Algo"), "ed25519");
  EXPECT_EQ(h.at("X-E2EE-Version"), "2");
  EXPECT_GE(h.at("X-E2EE-Nonce").size(), 16u);
  EXPECT_NE(h.at("X-E2EE-Nonce"), header_map(b).at("X-E2EE-Nonce"));
  ASSERT_TRUE(a.policy.v2);
  EXPECT_EQ(a.policy.v2->nonce, h.at("X-E2EE-Nonce"));
  EXPECT_EQ(std::to_string(a.policy.v2->timestamp), h.at("X-E2EE-Timestamp"));
  const auto now = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(std::abs(a.policy.v2->timestamp - now), 5);
  EXPECT_EQ(a.policy.scheme, Scheme::ed25519_aes_gcm);
  EXPECT_FALSE(a.policy.all_fields);

  o.version = 1;
  o.algo = Algo::ecdsa;
  auto v1 = make_flavor(o);
  const KeyPair m1 = KeyPair::generate(Algo::ecdsa);
  const auto p1 = v1->plan(session_with(Algo::ecdsa, m1, hex_encode(m1.public_raw())));
  const auto h1 = header_map(p1);
  EXPECT_EQ(h1.at("X-E2EE-Version"), "1");
  EXPECT_FALSE(h1.count("X-E2EE-Nonce"));
  EXPECT_FALSE(h1.count("X-E2EE-Timestamp"));
  EXPECT_FALSE(p1.policy.v2);
}

// What the plan encrypts, the model's key opens; what the model seals to the session, the plan opens.
TEST(Plans, RoundTripThroughTheProtocolLayer) {
  for (auto kind : {ProviderKind::venice, ProviderKind::nearai, ProviderKind::dstack}) {
    for (Algo algo : {Algo::ecdsa, Algo::ed25519}) {
      if (kind == ProviderKind::venice && algo == Algo::ed25519) continue;
      FieldOptions o;
      o.kind = kind;
      o.algo = algo;
      auto flavor = make_flavor(o);
      const KeyPair model = KeyPair::generate(algo);
      const Session s = session_with(algo, model, hex_encode(model.public_raw()));
      const auto plan = flavor->plan(s);
      const std::string request = R"({"model":"m","messages":[{"role":"system","content":"secret-sys"},{"role":"user","content":"secret-user"},{"role":"assistant","content":"secret-asst"}]})";
      auto sealed = protocol::field::encrypt_request(request, plan.policy, s.model.key);
      ASSERT_TRUE(sealed) << sealed.error().message;
      EXPECT_EQ(sealed->find("secret-"), std::string::npos) << provider_name(kind);
      auto opened = protocol::field::decrypt_request(*sealed, plan.policy, model);
      ASSERT_TRUE(opened) << opened.error().message;
      EXPECT_EQ(parse(*opened), parse(request));

      auto client_key = PeerKey::parse(algo, s.client.public_raw());
      protocol::field::ResponseSealer sealer(plan.policy, *client_key, kind == ProviderKind::dstack);
      const std::string chunk = R"({"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"answer"}}]})";
      auto encrypted = sealer.encrypt(chunk);
      ASSERT_TRUE(encrypted) << encrypted.error().message;
      EXPECT_EQ(encrypted->find("answer"), std::string::npos);
      auto plain = protocol::field::decrypt_response(*encrypted, plan.policy, s.client);
      ASSERT_TRUE(plain) << plain.error().message;
      EXPECT_EQ(parse(*plain).at("choices").at(0).at("delta").at("content"), json::value("answer"));
    }
  }
}

// ---- dstack response headers ---------------------------------------------------------------------

TEST(DstackResponse, RequiresAppliedVersionAndAlgo) {
  http::Headers ok;
  ok.set("X-E2EE-Applied", "true");
  ok.set("X-E2EE-Version", "2");
  ok.set("X-E2EE-Algo", "ecdsa");
  EXPECT_FALSE(check_dstack_response_headers(ok, 2, Algo::ecdsa));
  EXPECT_TRUE(check_dstack_response_headers(ok, 1, Algo::ecdsa));
  EXPECT_TRUE(check_dstack_response_headers(ok, 2, Algo::ed25519));
  http::Headers not_applied = ok;
  not_applied.set("X-E2EE-Applied", "false");
  auto refusal = check_dstack_response_headers(not_applied, 2, Algo::ecdsa);
  ASSERT_TRUE(refusal);
  EXPECT_EQ(refusal->code, "e2ee_not_applied");
  http::Headers missing;
  EXPECT_TRUE(check_dstack_response_headers(missing, 2, Algo::ecdsa));
  http::Headers no_algo = ok;
  no_algo.remove("X-E2EE-Algo");
  EXPECT_TRUE(check_dstack_response_headers(no_algo, 2, Algo::ecdsa));
}

// ---- upstream errors ------------------------------------------------------------------------------

TEST(UpstreamErrors, StaleKeysAreRetriedOthersMapped) {
  const auto near421 = classify_upstream_error(
      ProviderKind::nearai, 421,
      R"({"error":{"type":"provider_error","message":"The encryption key is no longer valid. Please refresh your attestation report and retry.","param":null,"code":null}})");
  EXPECT_TRUE(near421.stale_key);
  EXPECT_EQ(near421.error.code, "e2ee_model_key_rejected");
  EXPECT_NE(near421.error.message.find("no longer valid"), std::string::npos);

  const auto mismatch = classify_upstream_error(
      ProviderKind::dstack, 400, R"({"error":{"message":"model key mismatch","type":"e2ee_model_key_mismatch","param":null,"code":null}})");
  EXPECT_TRUE(mismatch.stale_key);
  EXPECT_EQ(mismatch.error.code, "e2ee_model_key_mismatch");

  EXPECT_TRUE(classify_upstream_error(ProviderKind::venice, 400, R"({"error":"Failed to decrypt field"})").stale_key);
  EXPECT_TRUE(classify_upstream_error(ProviderKind::venice, 400, R"({"error":"E2EE decryption failed"})").stale_key);

  const auto replay = classify_upstream_error(
      ProviderKind::dstack, 400, R"({"error":{"message":"Replay detected","type":"e2ee_replay_detected","param":null,"code":null}})");
  EXPECT_FALSE(replay.stale_key);
  EXPECT_EQ(replay.error.status, 502);
  EXPECT_EQ(replay.error.code, "e2ee_replay_detected");
  const auto clock = classify_upstream_error(
      ProviderKind::dstack, 400, R"({"error":{"message":"outside window","type":"e2ee_invalid_timestamp"}})");
  EXPECT_NE(clock.error.message.find("clock"), std::string::npos);

  const auto auth = classify_upstream_error(ProviderKind::venice, 401, R"({"error":"Authentication failed"})");
  EXPECT_FALSE(auth.stale_key);
  EXPECT_EQ(auth.error.status, 401);
  EXPECT_EQ(auth.error.type, "authentication_error");
  EXPECT_EQ(classify_upstream_error(ProviderKind::nearai, 429, "{}").error.retry_after_seconds, 5);
  EXPECT_EQ(classify_upstream_error(ProviderKind::nearai, 503, "{}").error.status, 503);
  EXPECT_EQ(classify_upstream_error(ProviderKind::nearai, 500, "{}").error.status, 502);

  const auto context = classify_upstream_error(
      ProviderKind::dstack, 400,
      R"({"object":"error","message":"This model's maximum context length is 8192 tokens. However, you requested 9000 tokens.","type":"BadRequestError","code":400})");
  EXPECT_EQ(context.error.status, 400);
  EXPECT_EQ(context.error.code, "context_length_exceeded");

  const auto html = classify_upstream_error(ProviderKind::venice, 502, "<html>secret upstream page</html>");
  EXPECT_EQ(html.error.message.find("secret upstream page"), std::string::npos);
}

// ---- aggregation ----------------------------------------------------------------------------------

TEST(Aggregate, JoinsDeltasIntoOneCompletion) {
  ChunkAggregator agg;
  for (const char* chunk : {
           R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"e2ee-glm-5","choices":[{"index":0,"delta":{"role":"assistant","content":""}}]})",
           R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"e2ee-glm-5","choices":[{"index":0,"delta":{"reasoning_content":"think "}}]})",
           R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"e2ee-glm-5","choices":[{"index":0,"delta":{"reasoning_content":"more"}}]})",
           R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"e2ee-glm-5","choices":[{"index":0,"delta":{"content":"Hel"}}]})",
           R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"e2ee-glm-5","choices":[{"index":0,"delta":{"content":"lo \u00e9"},"finish_reason":"stop"}]})",
           R"({"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"e2ee-glm-5","choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}})",
       })
    ASSERT_TRUE(agg.add(chunk));
  const auto doc = parse(agg.finish("fallback")).as_object();
  EXPECT_EQ(doc.at("id"), json::value("chatcmpl-1"));
  EXPECT_EQ(doc.at("object"), json::value("chat.completion"));
  EXPECT_EQ(doc.at("created"), json::value(1700000000));
  EXPECT_EQ(doc.at("model"), json::value("e2ee-glm-5"));
  const auto& choice = doc.at("choices").at(0).as_object();
  EXPECT_EQ(choice.at("index"), json::value(0));
  EXPECT_EQ(choice.at("finish_reason"), json::value("stop"));
  EXPECT_EQ(choice.at("message").at("role"), json::value("assistant"));
  EXPECT_EQ(choice.at("message").at("content"), json::value("Hello \xc3\xa9"));
  EXPECT_EQ(choice.at("message").at("reasoning_content"), json::value("think more"));
  EXPECT_EQ(doc.at("usage").at("total_tokens"), json::value(12));
}

TEST(Aggregate, AssemblesToolCallsByIndex) {
  ChunkAggregator agg;
  ASSERT_TRUE(agg.add(R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]})"));
  ASSERT_TRUE(agg.add(R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","function":{"name":"get_time","arguments":"{}"}}]}}]})"));
  ASSERT_TRUE(agg.add(R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}}]})"));
  ASSERT_TRUE(agg.add(R"({"id":"x","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Oslo\"}"}}]},"finish_reason":"tool_calls"}]})"));
  const auto doc = parse(agg.finish("m")).as_object();
  const auto& message = doc.at("choices").at(0).at("message").as_object();
  EXPECT_TRUE(message.at("content").is_null());
  const auto& calls = message.at("tool_calls").as_array();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].at("id"), json::value("call_1"));
  EXPECT_EQ(calls[0].at("function").at("name"), json::value("get_weather"));
  EXPECT_EQ(calls[0].at("function").at("arguments"), json::value(R"({"city":"Oslo"})"));
  EXPECT_EQ(calls[1].at("function").at("name"), json::value("get_time"));
  EXPECT_EQ(doc.at("choices").at(0).at("finish_reason"), json::value("tool_calls"));
}

TEST(Aggregate, EngineErrorsAndGarbageFail) {
  ChunkAggregator agg;
  EXPECT_FALSE(agg.add(R"({"error":{"message":"engine exploded","type":"server_error"}})"));
  EXPECT_FALSE(agg.add("not json"));
  ChunkAggregator empty;
  const auto doc = parse(empty.finish("the-model")).as_object();
  EXPECT_EQ(doc.at("model"), json::value("the-model"));
  EXPECT_TRUE(doc.at("choices").as_array().empty());
}

TEST(UrlEncode, KeepsUnreservedOnly) {
  EXPECT_EQ(url_encode("e2ee-qwen3-5_122b.a~10b"), "e2ee-qwen3-5_122b.a~10b");
  EXPECT_EQ(url_encode("org/model name&x=1"), "org%2Fmodel%20name%26x%3D1");
}

}  // namespace
}  // namespace e2ee::proxy::field

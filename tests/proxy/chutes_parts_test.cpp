// Pure parts of the Chutes provider: model list and discovery parsing, error mapping, affinity.

#include <gtest/gtest.h>

#include "common/encoding.hpp"
#include "protocol/chutes/envelope.hpp"
#include "proxy/chutes/chutes_provider.hpp"
#include "proxy/chutes/model_catalog.hpp"
#include "proxy/chutes/nonce_pool.hpp"
#include "proxy/proxy_service.hpp"

namespace e2ee::proxy::chutes {
namespace {

TEST(ModelList, ParsesTheChutesShapeAndSkipsIncompleteEntries) {
  const auto models = parse_model_list(R"({"object":"list","data":[
    {"id":"deepseek-ai/DeepSeek-V3.1-TEE","chute_id":"11111111-2222-3333-4444-555555555555","confidential_compute":true,"root":"deepseek-ai/DeepSeek-V3.1","created":5},
    {"id":"no-chute-id"},
    {"id":"plain","chute_id":"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee","confidential_compute":false}]})");
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0].id, "deepseek-ai/DeepSeek-V3.1-TEE");
  EXPECT_TRUE(models[0].confidential);
  EXPECT_EQ(models[0].root, "deepseek-ai/DeepSeek-V3.1");
  EXPECT_EQ(models[0].created, 5);
  EXPECT_FALSE(models[1].confidential);
  EXPECT_TRUE(parse_model_list("not json").empty());
  EXPECT_TRUE(parse_model_list(R"({"data":{}})").empty());
}

TEST(ModelList, UuidShape) {
  EXPECT_TRUE(looks_like_uuid("edd0810e-51f8-5119-b480-09c950812833"));
  EXPECT_FALSE(looks_like_uuid("edd0810e-51f8-5119-b480-09c95081283"));
  EXPECT_FALSE(looks_like_uuid("edd0810e_51f8-5119-b480-09c950812833"));
  EXPECT_FALSE(looks_like_uuid("gdd0810e-51f8-5119-b480-09c950812833"));
}

TEST(ModelList, TeeRefusalIsTheReferenceMessageWordForWord) {
  EXPECT_EQ(tee_refusal_message("x/y"),
            "model 'x/y' is not running in confidential compute (TEE). E2EE requires confidential compute to "
            "guarantee privacy. Set ALLOW_NON_CONFIDENTIAL=true to override.");
}

TEST(Discovery, ParsesInstancesNoncesAndExpiry) {
  const auto d = parse_discovery(R"({"instances":[{"instance_id":"i1","e2e_pubkey":"AAAA","nonces":["n1","n2",""]},
      {"instance_id":"broken"}],"nonce_expires_in":60,"nonce_expires_at":1700000000})");
  ASSERT_TRUE(d);
  ASSERT_EQ(d->instances.size(), 1u);
  EXPECT_EQ(d->instances[0].nonces, (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(d->expires_in_seconds, 60);
  EXPECT_FALSE(parse_discovery("[]"));
  EXPECT_FALSE(parse_discovery(R"({"instances":{}})"));
}

TEST(InvokeErrors, MapsChutesDetailsToActionableOpenAiErrors) {
  EXPECT_EQ(map_invoke_error(401, R"({"detail":"Invalid token"})", nullptr).type, "authentication_error");
  EXPECT_EQ(map_invoke_error(429, R"({"detail":"Instance is at maximum capacity, try again later"})", nullptr).status, 429);
  const auto quota = map_invoke_error(402, R"({"detail":"TEE models require an active subscription or positive balance."})", nullptr);
  EXPECT_EQ(quota.status, 402);
  EXPECT_NE(quota.message.find("positive balance"), std::string::npos);
  EXPECT_EQ(map_invoke_error(500, "oops", nullptr).status, 502);
  const auto middleware = map_invoke_error(400, R"({"detail":"{\"detail\":\"E2E decryption failed\"}"})", nullptr);
  EXPECT_EQ(middleware.code, "instance_decryption_failed");
}

TEST(InvokeErrors, UndecryptableInstanceErrorExplainsInsteadOfShowingBase64) {
  // What production relays when vLLM rejects a request: base64 of ciphertext nobody can open.
  const std::string opaque = base64_encode(Bytes(2000, 0x5a));
  const auto e = map_invoke_error(400, "{\"detail\":\"" + opaque + "\"}", nullptr);
  EXPECT_EQ(e.code, "instance_rejected_request");
  EXPECT_EQ(e.message.find(opaque.substr(0, 20)), std::string::npos) << "base64 leaked into the message";
  EXPECT_NE(e.message.find("context"), std::string::npos);
}

TEST(InvokeErrors, OurGatewaysSealedEngineErrorIsDecryptedForTheClient) {
  const auto response_key = crypto::mlkem768::DecapsulationKey::generate();
  const std::string engine_error = R"({"error":{"message":"This model's maximum context length is 4096 tokens","type":"BadRequestError"}})";
  auto sealed = protocol::chutes::seal_response(response_key.encapsulation_key(), as_bytes(engine_error));
  ASSERT_TRUE(sealed);
  const auto e = map_invoke_error(400, "{\"detail\":\"" + base64_encode(*sealed) + "\"}", &response_key);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded") << "clients key compaction off this code";
  EXPECT_NE(e.message.find("maximum context length is 4096"), std::string::npos) << e.message;
  // Another engine error keeps its status class and message.
  const std::string busy = R"({"error":{"message":"queue full","type":"ServiceUnavailableError","code":503}})";
  auto sealed_busy = protocol::chutes::seal_response(response_key.encapsulation_key(), as_bytes(busy));
  const auto e503 = map_invoke_error(503, "{\"detail\":\"" + base64_encode(*sealed_busy) + "\"}", &response_key);
  EXPECT_EQ(e503.status, 503);
  EXPECT_NE(e503.message.find("queue full"), std::string::npos);
  // Another request's key cannot open it: the generic explanation comes back instead.
  const auto other = crypto::mlkem768::DecapsulationKey::generate();
  EXPECT_EQ(map_invoke_error(400, "{\"detail\":\"" + base64_encode(*sealed) + "\"}", &other).code, "instance_rejected_request");
}

TEST(Affinity, SameConversationSameKeyDifferentConversationsDiffer) {
  const std::string turn1 = R"({"model":"m","messages":[{"role":"system","content":"You are X"},{"role":"user","content":"hi"}]})";
  const std::string turn2 = R"({"model":"m","messages":[{"role":"system","content":"You are X"},{"role":"user","content":"hi"},{"role":"assistant","content":"hello"},{"role":"user","content":"more"}],"temperature":0.2})";
  const std::string other = R"({"model":"m","messages":[{"role":"system","content":"You are X"},{"role":"user","content":"bye"}]})";
  EXPECT_EQ(conversation_affinity("m", turn1), conversation_affinity("m", turn2));
  EXPECT_NE(conversation_affinity("m", turn1), conversation_affinity("m", other));
  EXPECT_NE(conversation_affinity("m", turn1), conversation_affinity("m2", turn1));
  // Nested commas and brackets inside strings do not confuse the element split.
  const std::string tricky = R"({"messages":[{"role":"user","content":"a, [b], {c}, \"d,\""},{"role":"x","content":"]"}]})";
  const std::string tricky2 = R"({"messages":[{"role":"user","content":"a, [b], {c}, \"d,\""},{"role":"x","content":"]"},{"role":"y"}]})";
  EXPECT_EQ(conversation_affinity("m", tricky), conversation_affinity("m", tricky2));
  // The first message alone is another conversation than the same message followed by a second.
  const std::string opening = R"({"messages":[{"role":"system","content":"You are X"}]})";
  EXPECT_NE(conversation_affinity("m", opening), conversation_affinity("m", turn1));
  // Legacy completions are keyed by their prompt.
  EXPECT_EQ(conversation_affinity("m", R"({"prompt":"abc","max_tokens":1})"), conversation_affinity("m", R"({"prompt":"abc"})"));
  EXPECT_NE(conversation_affinity("m", R"({"prompt":"abc"})"), conversation_affinity("m", R"({"prompt":"abd"})"));
}

TEST(ApiKey, PrefersXApiKeyThenBearerThenFallback) {
  http::Headers h;
  EXPECT_EQ(extract_api_key(h, std::nullopt), std::nullopt);
  EXPECT_EQ(extract_api_key(h, std::string("fallback")), "fallback");
  h.set("Authorization", "Bearer cpk_abc");
  EXPECT_EQ(extract_api_key(h, std::string("fallback")), "cpk_abc");
  h.set("Authorization", "bearer   cpk_lower");
  EXPECT_EQ(extract_api_key(h, std::nullopt), "cpk_lower");
  h.set("Authorization", "cpk_raw");
  EXPECT_EQ(extract_api_key(h, std::nullopt), "cpk_raw");
  for (const char* empty : {"Bearer", "Bearer ", "bearer   ", "  "}) {
    h.set("Authorization", empty);
    EXPECT_EQ(extract_api_key(h, std::nullopt), std::nullopt) << "'" << empty << "' carries no key";
    EXPECT_EQ(extract_api_key(h, std::string("fallback")), "fallback");
  }
  h.set("Authorization", "Bearertoken");
  EXPECT_EQ(extract_api_key(h, std::nullopt), "Bearertoken") << "a raw key that merely starts with the word";
  h.set("x-api-key", "sk-ant");
  EXPECT_EQ(extract_api_key(h, std::nullopt), "sk-ant");
}

}  // namespace
}  // namespace e2ee::proxy::chutes

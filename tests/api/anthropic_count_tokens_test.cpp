// count_tokens: the engine's /tokenize request built from a Messages body, its answer read back,
// and the documented local estimate.

#include "api/anthropic/messages.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include "common/json_text.hpp"
#include "support/fixtures.hpp"

namespace {

namespace json = boost::json;
using e2ee::test::parse_json;
using namespace e2ee::api;
using namespace e2ee::api::anthropic;

TEST(AnthropicCountTokens, TokenizeRequestCarriesWhatTheTemplateRenders) {
  // count_tokens bodies have no max_tokens; sampling fields would not change the count.
  const auto r = to_tokenize_request(R"({"model":"claude-x","system":"S","temperature":0.5,
    "messages":[{"role":"user","content":"count me"}],
    "tools":[{"name":"f","input_schema":{"type":"object","properties":{"n":{"type":"number","maximum":1.50}}}}],
    "thinking":{"type":"enabled","budget_tokens":1024},"metadata":{"user_id":"u-123"}})",
                                     RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<std::string>(r)) << std::get<ApiError>(r).message;
  const auto& body = std::get<std::string>(r);
  EXPECT_TRUE(e2ee::json_text::validate(body));
  const auto expected = parse_json(R"({"model":"claude-x",
    "messages":[{"role":"system","content":"S"},{"role":"user","content":"count me"}],
    "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"n":{"type":"number","maximum":1.50}}}}}],
    "chat_template_kwargs":{"enable_thinking":true,"thinking":true},
    "add_generation_prompt":true})");
  EXPECT_EQ(parse_json(body), expected) << body;
  EXPECT_NE(body.find("\"maximum\":1.50"), std::string::npos) << "schemas keep their bytes";
  EXPECT_EQ(body.find("u-123"), std::string::npos);
  EXPECT_EQ(body.find("temperature"), std::string::npos);
}

TEST(AnthropicCountTokens, PrefillIsCountedAsAContinuation) {
  const auto r = to_tokenize_request(R"({"model":"m","messages":[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]})",
                                     RequestOptions{});
  const auto v = parse_json(std::get<std::string>(r));
  EXPECT_EQ(v.at("add_generation_prompt"), false);
  EXPECT_EQ(v.at("continue_final_message"), true);
}

TEST(AnthropicCountTokens, BadBodiesAreThe400sOfMessages) {
  const auto r = to_tokenize_request(R"({"model":"m","messages":[]})", RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).status, 400);
  const auto e = estimate_count_tokens_response("nope", RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<ApiError>(e));
  EXPECT_EQ(std::get<ApiError>(e).status, 400);
}

TEST(AnthropicCountTokens, EngineAnswer) {
  // vLLM: {"count":N,"max_model_len":M,"tokens":[…],"token_strs":null}
  auto r = to_count_tokens_response(R"({"count":1234,"max_model_len":32768,"tokens":[1,2,3],"token_strs":null})");
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_EQ(parse_json(std::get<std::string>(r)), parse_json(R"({"input_tokens":1234})"));
  // Engines that only list the tokens.
  r = to_count_tokens_response(R"({"tokens":[5,6,7,8]})");
  EXPECT_EQ(parse_json(std::get<std::string>(r)), parse_json(R"({"input_tokens":4})"));
}

TEST(AnthropicCountTokens, EngineErrorsAndGarbage) {
  auto r = to_count_tokens_response(R"({"object":"error","message":"The model `m` does not exist.","type":"NotFoundError","code":404})");
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).status, 404);
  for (const char* bad : {"", "[]", R"({"count":-1})", R"({"count":"12"})", "Not Found"}) {
    SCOPED_TRACE(bad);
    r = to_count_tokens_response(bad);
    ASSERT_TRUE(std::holds_alternative<ApiError>(r));
    EXPECT_EQ(std::get<ApiError>(r).status, 502);
  }
}

TEST(AnthropicCountTokens, LocalEstimate) {
  // Chat body {"model":"m","messages":[{"role":"user","content":"Hi"}]} is 57 bytes: ceil(57/4) = 15.
  const auto r = estimate_count_tokens_response(R"({"model":"m","messages":[{"role":"user","content":"Hi"}]})", RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<std::string>(r));
  EXPECT_EQ(parse_json(std::get<std::string>(r)), parse_json(R"({"input_tokens":15})"));
}

}  // namespace

// Non-stream chat.completion → Anthropic message: golden fixtures (fixtures/anthropic/response/,
// see its README), byte-exact tool inputs, engine errors and unusable answers.

#include "api/anthropic/messages.hpp"
#include "support/fixtures.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using e2ee::test::read_file;
using e2ee::test::parse_json;
using namespace e2ee::api;
using namespace e2ee::api::anthropic;

fs::path fixtures() { return fs::path(__FILE__).parent_path() / "fixtures" / "anthropic" / "response"; }

const char* kDefaultRequest = R"({"model":"claude-x","messages":[{"role":"user","content":"x"}]})";

TranslatedRequest request_for(std::string_view body) {
  auto r = to_chat_request(body, RequestOptions{});
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << e->message;
    return {};
  }
  return std::get<TranslatedRequest>(std::move(r));
}

std::string answer(std::string_view chat, const TranslatedRequest& request) {
  auto r = to_messages_response(chat, request);
  if (auto* e = std::get_if<ApiError>(&r)) {
    ADD_FAILURE() << "unexpected error: " << e->message;
    return "{}";
  }
  return std::get<std::string>(r);
}

ApiError failure(std::string_view chat, const TranslatedRequest& request) {
  auto r = to_messages_response(chat, request);
  if (auto* e = std::get_if<ApiError>(&r)) return *e;
  ADD_FAILURE() << "no error: " << std::get<std::string>(r);
  return {};
}

TEST(AnthropicResponse, GoldenFixtures) {
  int count = 0;
  for (const auto& entry : fs::directory_iterator(fixtures())) {
    const std::string name = entry.path().filename().string();
    if (name.size() < 10 || name.substr(name.size() - 10) != ".chat.json") continue;
    const std::string stem = name.substr(0, name.size() - 10);
    SCOPED_TRACE(stem);
    const auto request_path = fixtures() / (stem + ".request.json");
    const auto request = request_for(fs::exists(request_path) ? read_file(request_path) : std::string(kDefaultRequest));
    const auto got = parse_json(answer(read_file(entry.path()), request));
    const auto expected = parse_json(read_file(fixtures() / (stem + ".expected.json")));
    EXPECT_EQ(got, expected) << "got:      " << json::serialize(got) << "\nexpected: " << json::serialize(expected);
    ++count;
  }
  EXPECT_GE(count, 12) << "fixtures missing";
}

TEST(AnthropicResponse, ToolInputIsTheEnginesTextByteForByte) {
  const auto request = request_for(read_file(fixtures() / "reasoning_text_tools.request.json"));
  const auto out = answer(read_file(fixtures() / "reasoning_text_tools.chat.json"), request);
  // Parsed-JSON comparison cannot see a re-spelled number; this can.
  EXPECT_NE(out.find(R"("input":{"city": "Paris", "id": 12345678901234567890123})"), std::string::npos) << out;
}

TEST(AnthropicResponse, FallbackIdWhenTheEngineHasNone) {
  RequestOptions o;
  o.fallback_id = "req-42";
  auto r = to_chat_request(kDefaultRequest, o);
  const auto out = parse_json(answer(R"({"choices":[{"message":{"content":"a"},"finish_reason":"stop"}]})", std::get<TranslatedRequest>(r)));
  EXPECT_EQ(out.at("id"), "msg_req-42");
}

TEST(AnthropicResponse, OddEngineIdsBecomePlainTokens) {
  const auto out = parse_json(answer(R"({"id":"cmpl/1 2\"x","choices":[{"message":{"content":"a"}}]})", request_for(kDefaultRequest)));
  EXPECT_EQ(out.at("id"), "msg_cmpl_1_2_x");
}

TEST(AnthropicResponse, InBandEngineErrors) {
  const auto request = request_for(kDefaultRequest);
  auto e = failure(R"({"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.","type":"BadRequestError","param":null,"code":400})", request);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.message.rfind("prompt is too long: ", 0), 0u) << "Claude Code keys compaction off this wording: " << e.message;
  EXPECT_EQ(parse_json(anthropic_error_json(e)).at("error").at("type"), "invalid_request_error");

  e = failure(R"({"error":{"message":"Service busy","type":"ServiceUnavailable","code":503}})", request);
  EXPECT_EQ(e.status, 503);
  EXPECT_EQ(parse_json(anthropic_error_json(e)).at("error").at("type"), "overloaded_error");

  e = failure(R"({"error":{"message":"boom","code":500}})", request);
  EXPECT_EQ(e.status, 502) << "the engine failing makes us a bad gateway";
  EXPECT_EQ(parse_json(anthropic_error_json(e)).at("error").at("type"), "api_error");

  e = failure(R"({"error":{"message":"slow down","code":429}})", request);
  EXPECT_EQ(e.status, 429);
  EXPECT_EQ(parse_json(anthropic_error_json(e)).at("error").at("type"), "rate_limit_error");
}

TEST(AnthropicResponse, UnusableAnswersAre502) {
  const auto request = request_for(kDefaultRequest);
  for (const char* bad : {"", "<html>502 Bad Gateway</html>", "[]", R"({"choices":[]})", R"({"id":"x"})", R"({"choices":"x"})"}) {
    SCOPED_TRACE(bad);
    const auto e = failure(bad, request);
    EXPECT_EQ(e.status, 502);
    EXPECT_EQ(e.message.find("html"), std::string::npos) << "never echo the body";
  }
}

TEST(AnthropicResponse, EngineHttpErrorBodies) {
  // The pipeline's path for a non-2xx answer.
  auto e = to_anthropic_error(e2ee::api::chat::engine_error_from_body(
      400, R"({"error":{"message":"The decoder prompt (length 9000) is longer than the maximum model length of 8192.","type":"BadRequestError","code":400}})"));
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.message.rfind("prompt is too long: ", 0), 0u);

  e = to_anthropic_error(e2ee::api::chat::engine_error_from_body(500, "Internal Server Error"));
  EXPECT_EQ(e.status, 502);
  EXPECT_EQ(e.message.find("Internal Server Error"), std::string::npos);
  EXPECT_NE(e.message.find("500"), std::string::npos);

  e = to_anthropic_error(e2ee::api::chat::engine_error_from_body(404, R"({"object":"error","message":"The model `x` does not exist.","type":"NotFoundError","code":404})"));
  EXPECT_EQ(e.status, 404);
  EXPECT_EQ(parse_json(anthropic_error_json(e)).at("error").at("type"), "not_found_error");
}

TEST(AnthropicResponse, LongEngineMessagesAreClipped) {
  const std::string long_message(5000, 'x');
  const auto e = failure(R"({"error":{"message":")" + long_message + R"(","code":400}})", request_for(kDefaultRequest));
  EXPECT_LE(e.message.size(), 1100u);
}

}  // namespace

namespace {

TEST(AnthropicResponse, WhitespaceOnlyTextIsNoBlock) {
  const auto out = parse_json(answer(R"({"id":"w","choices":[{"message":{"content":"\n\n","reasoning_content":"r",
    "tool_calls":[{"id":"t","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]})",
                                request_for(kDefaultRequest)));
  ASSERT_EQ(out.at("content").as_array().size(), 2u);
  EXPECT_EQ(out.at("content").at(0).at("type"), "thinking");
  EXPECT_EQ(out.at("content").at(1).at("type"), "tool_use");
}

}  // namespace

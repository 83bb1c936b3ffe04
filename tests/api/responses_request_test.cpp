// Responses → chat request translation: golden fixtures (tests/api/fixtures/responses/request/)
// plus the properties a fixture cannot express (byte-exact number forwarding, determinism).
//
// Fixture format (one JSON object per file):
//   "request"        the Responses body, or "request_text": the body as a raw string (for
//                    malformed bodies); when "request" is used the test passes its exact bytes.
//   "options"        optional RequestOptions: id_token, created_at, reasoning_output
//                    ("raw_text"|"summary"), split_think_tags, effort_sets_thinking_switch,
//                    forward_reasoning_history.
//   "expect"         {"chat": <expected chat body>, optional "tools": {chat_name: {name,
//                    namespace, custom}}, optional "notes": [...], optional "stream"}
//   or "expect_error" {"status", "code", "message_contains": [...]}.
// Expected values are written by hand from the Responses and chat-completions specs.

#include "api/responses/request_translator.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/json_text.hpp"
#include "support/fixtures.hpp"

namespace e2ee::api::responses {
namespace {

namespace json = boost::json;
using e2ee::test::read_file;
namespace fs = std::filesystem;

fs::path fixtures_dir() {
#ifdef E2EE_API_FIXTURES_DIR
  return fs::path(E2EE_API_FIXTURES_DIR) / "responses";
#else
  return fs::path(__FILE__).parent_path() / "fixtures" / "responses";
#endif
}

RequestOptions options_from(const json::object& fixture) {
  RequestOptions o;
  o.id_token = "T";
  o.created_at = 1700000000;
  if (const auto* v = fixture.if_contains("options")) {
    const auto& opt = v->as_object();
    if (const auto* x = opt.if_contains("id_token")) o.id_token = std::string(x->as_string());
    if (const auto* x = opt.if_contains("created_at")) o.created_at = x->as_int64();
    if (const auto* x = opt.if_contains("reasoning_output"))
      o.reasoning_output = x->as_string() == "summary" ? ReasoningOutput::summary : ReasoningOutput::raw_text;
    if (const auto* x = opt.if_contains("split_think_tags")) o.split_think_tags = x->as_bool();
    if (const auto* x = opt.if_contains("effort_sets_thinking_switch")) o.effort_sets_thinking_switch = x->as_bool();
    if (const auto* x = opt.if_contains("forward_reasoning_history")) o.forward_reasoning_history = x->as_bool();
  }
  return o;
}

// The exact bytes of the fixture's "request" member (so verbatim forwarding is testable), or
// the "request_text" string.
std::string request_body(const std::string& text, const json::object& fixture) {
  if (const auto* raw = fixture.if_contains("request_text")) return std::string(raw->as_string());
  auto span = json_text::find_member(text, "request");
  EXPECT_TRUE(span && *span);
  return text.substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin);
}

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fixtures_dir() / "request"))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

class RequestFixture : public testing::TestWithParam<std::string> {};

TEST_P(RequestFixture, TranslatesAsWritten) {
  const auto path = fixtures_dir() / "request" / (GetParam() + ".json");
  const std::string text = read_file(path);
  ASSERT_FALSE(text.empty()) << path;
  const json::object fixture = json::parse(text).as_object();
  const auto result = to_chat_request(request_body(text, fixture), options_from(fixture));

  if (const auto* expect_error = fixture.if_contains("expect_error")) {
    ASSERT_TRUE(std::holds_alternative<ApiError>(result))
        << "expected an error, got: " << std::get<TranslatedRequest>(result).chat_json;
    const auto& error = std::get<ApiError>(result);
    const auto& e = expect_error->as_object();
    EXPECT_EQ(error.status, e.at("status").as_int64());
    EXPECT_EQ(error.type, "invalid_request_error");
    EXPECT_EQ(error.code, e.at("code").as_string()) << error.message;
    if (const auto* parts = e.if_contains("message_contains")) {
      for (const auto& part : parts->as_array()) {
        EXPECT_NE(error.message.find(std::string(part.as_string())), std::string::npos)
            << "message: " << error.message << "\nmissing: " << part.as_string();
      }
    }
    // Every error renders in the OpenAI shape the client expects before a stream starts.
    const auto rendered = json::parse(openai_error_json(error)).as_object();
    EXPECT_EQ(rendered.at("error").as_object().at("code").as_string(), error.code);
    return;
  }

  ASSERT_TRUE(std::holds_alternative<TranslatedRequest>(result))
      << "unexpected error: " << std::get<ApiError>(result).code << ": " << std::get<ApiError>(result).message;
  const auto& t = std::get<TranslatedRequest>(result);
  const auto& expect = fixture.at("expect").as_object();

  ASSERT_TRUE(json_text::validate(t.chat_json)) << t.chat_json;
  const json::value chat = json::parse(t.chat_json);
  EXPECT_EQ(chat, expect.at("chat")) << "actual:   " << t.chat_json
                                     << "\nexpected: " << json::serialize(expect.at("chat"));

  if (const auto* tools = expect.if_contains("tools")) {
    json::object actual;
    for (const auto& [chat_name, ref] : t.tools)
      actual[chat_name] = json::object{{"name", ref.name}, {"namespace", ref.ns}, {"custom", ref.custom}};
    EXPECT_EQ(json::value(actual), *tools) << "actual tools: " << json::serialize(actual);
  }
  if (const auto* notes = expect.if_contains("notes")) {
    json::array actual;
    for (const auto& n : t.notes) actual.push_back(json::string(n));
    EXPECT_EQ(json::value(actual), *notes) << "actual notes: " << json::serialize(actual);
  }
  const bool stream = chat.as_object().at("stream").as_bool();
  EXPECT_EQ(t.stream, stream);
  EXPECT_EQ(t.model, chat.as_object().at("model").as_string());
  EXPECT_EQ(t.response_id, "resp_" + options_from(fixture).id_token);
  EXPECT_EQ(t.created_at, options_from(fixture).created_at);

  // Privacy: identifiers the client sends must never reach the engine, whatever the fixture.
  for (const char* key : {"user", "metadata", "prompt_cache_key", "client_metadata", "safety_identifier", "store",
                          "include", "previous_response_id", "instructions", "input"})
    EXPECT_FALSE(chat.as_object().contains(key)) << key << " leaked into the chat request";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, RequestFixture, testing::ValuesIn(fixture_names()),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

// The fixtures directory must not be empty: a missing folder would otherwise pass vacuously.
TEST(RequestFixtures, ArePresent) { EXPECT_GE(fixture_names().size(), 30u); }

TranslatedRequest ok(std::variant<TranslatedRequest, ApiError> r) {
  if (std::holds_alternative<ApiError>(r)) {
    ADD_FAILURE() << std::get<ApiError>(r).message;
    return {};
  }
  return std::get<TranslatedRequest>(std::move(r));
}

// Sampling numbers reach the engine spelled exactly as the client wrote them: a seed above 2^63
// and decimals Boost.JSON would re-spell (0.7 → 7E-1) or round.
TEST(RequestNumbers, ForwardedByteForByte) {
  const std::string body =
      R"({"model":"m","input":"x","temperature":0.7,"top_p":1.00,"seed":18446744073709551615,)"
      R"("frequency_penalty":-0.125e0,"stop":["\u00e9nd","x"]})";
  const auto t = ok(to_chat_request(body, RequestOptions{}));
  EXPECT_NE(t.chat_json.find(R"("temperature":0.7)"), std::string::npos) << t.chat_json;
  EXPECT_NE(t.chat_json.find(R"("top_p":1.00)"), std::string::npos) << t.chat_json;
  EXPECT_NE(t.chat_json.find(R"("seed":18446744073709551615)"), std::string::npos) << t.chat_json;
  EXPECT_NE(t.chat_json.find(R"("frequency_penalty":-0.125e0)"), std::string::npos) << t.chat_json;
  EXPECT_NE(t.chat_json.find(R"("stop":["\u00e9nd","x"])"), std::string::npos) << t.chat_json;
}

// A number beyond double range in a nested schema cannot be re-serialised faithfully; the
// translator must refuse instead of sending the engine invalid JSON ("Infinity").
TEST(RequestNumbers, OutOfRangeNestedNumberIsA400) {
  const std::string body =
      R"({"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":{"type":"object","maximum":1e400}}]})";
  const auto r = to_chat_request(body, RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<ApiError>(r));
  EXPECT_EQ(std::get<ApiError>(r).status, 400);
  EXPECT_EQ(std::get<ApiError>(r).code, "invalid_value");
}

// Metadata is echoed to the client, so it is re-serialised too: a number Boost.JSON reads as an
// infinity or NaN (1e400, 0e40010) must be refused, not echoed as {} (fuzz/responses_request_fuzz.cpp).
TEST(RequestNumbers, OutOfRangeNumberInMetadataIsA400) {
  for (const char* number : {"1e400", "0e40010"}) {
    const std::string body = std::string(R"({"model":"m","input":"x","metadata":{"a":)") + number + "}}";
    const auto r = to_chat_request(body, RequestOptions{});
    ASSERT_TRUE(std::holds_alternative<ApiError>(r)) << number;
    EXPECT_EQ(std::get<ApiError>(r).status, 400);
    EXPECT_EQ(std::get<ApiError>(r).code, "invalid_value");
  }
}

// Tool schemas nest deeper than Boost.JSON's default limit of 32 (MCP servers generate such
// schemas); they must be forwarded, not reported as invalid JSON.
TEST(RequestSchemas, DeepSchemasAreForwarded) {
  std::string schema = R"({"type":"string"})";
  for (int i = 0; i < 60; ++i) schema = R"({"type":"object","properties":{"p":)" + schema + "}}";
  const std::string body = R"({"model":"m","input":"x","tools":[{"type":"function","name":"f","parameters":)" + schema + "}]}";
  const auto r = to_chat_request(body, RequestOptions{});
  ASSERT_TRUE(std::holds_alternative<TranslatedRequest>(r)) << std::get<ApiError>(r).message;
  const auto& chat = std::get<TranslatedRequest>(r).chat_json;
  EXPECT_NE(chat.find(schema), std::string::npos);
}

// The same request always gives the same engine body and names (per-request state only; no
// hidden global counters), and ids follow the token.
TEST(RequestDeterminism, SameInputSameOutput) {
  const std::string body =
      R"({"model":"m","input":"x","tools":[{"type":"function","name":"get.weather"},{"type":"namespace","name":"n","description":"","tools":[{"type":"custom","name":"c"}]}]})";
  RequestOptions o;
  o.id_token = "abc";
  const auto a = ok(to_chat_request(body, o));
  const auto b = ok(to_chat_request(body, o));
  EXPECT_EQ(a.chat_json, b.chat_json);
  EXPECT_EQ(a.response_id, "resp_abc");
  ASSERT_EQ(a.tools.size(), 2u);
  EXPECT_EQ(a.tools.at("n__c").ns, "n");
  EXPECT_TRUE(a.tools.at("n__c").custom);
}

TEST(RequestIds, EmptyTokenFallsBackToLocal) {
  const auto t = ok(to_chat_request(R"({"model":"m","input":"x"})", RequestOptions{}));
  EXPECT_EQ(t.response_id, "resp_local");
  EXPECT_EQ(t.id_token, "local");
}

// metadata and prompt_cache_key stay on the client side: echoed / exposed locally, never sent.
TEST(RequestPrivacy, MetadataAndCacheKeyStayLocal) {
  const std::string body =
      R"({"model":"m","input":"x","metadata":{"k":"v"},"prompt_cache_key":"session-123","user":"u-1","safety_identifier":"s"})";
  const auto t = ok(to_chat_request(body, RequestOptions{}));
  EXPECT_EQ(t.metadata_json, R"({"k":"v"})");
  EXPECT_EQ(t.prompt_cache_key, "session-123");
  for (const char* needle : {"session-123", "u-1", "\"k\"", "\"s\""})
    EXPECT_EQ(t.chat_json.find(needle), std::string::npos) << needle << " in " << t.chat_json;
}

// Tool names that are already valid chat names are never rewritten (the common case must stay
// readable for the model), and every rewritten name is valid and at most 64 bytes.
TEST(RequestToolNames, RewrittenNamesAreValid) {
  std::string long_name(200, 'x');
  const std::string body = R"({"model":"m","input":"x","tools":[{"type":"function","name":"ok_name-1"},)"
                           R"({"type":"function","name":")" + long_name + R"("},)"
                           R"({"type":"function","name":"sp ace/é"},)"
                           R"({"type":"namespace","name":")" + long_name + R"(","description":"","tools":[{"type":"function","name":"f"}]}]})";
  const auto t = ok(to_chat_request(body, RequestOptions{}));
  ASSERT_EQ(t.tools.size(), 4u);
  EXPECT_TRUE(t.tools.count("ok_name-1"));
  for (const auto& [name, ref] : t.tools) {
    EXPECT_LE(name.size(), 64u) << name;
    for (char c : name)
      EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') << name;
  }
}

}  // namespace
}  // namespace e2ee::api::responses

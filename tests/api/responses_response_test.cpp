// chat.completion → OpenAI Responses `response` object (non-stream): golden fixtures
// (tests/api/fixtures/responses/response/). The stream/non-stream equivalence is proven in
// responses_stream_test.cpp (NonStreamTwin).
//
// Fixture format: "request" (+ optional "options") the Responses request; "completion" the
// engine's body (or "completion_text" for a body that is not JSON); "expect" the Response object,
// hand-written from the Responses reference, or "expect_error" {status, code, message_contains}.

#include "api/responses/response_translator.hpp"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "api/responses/request_translator.hpp"
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

std::vector<std::string> fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(fixtures_dir() / "response"))
    if (e.path().extension() == ".json") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

TranslatedRequest translate(const json::object& fixture) {
  RequestOptions o;
  o.id_token = "T";
  o.created_at = 1700000000;
  if (const auto* v = fixture.if_contains("options")) {
    const auto& opt = v->as_object();
    if (const auto* x = opt.if_contains("reasoning_output"))
      o.reasoning_output = x->as_string() == "summary" ? ReasoningOutput::summary : ReasoningOutput::raw_text;
    if (const auto* x = opt.if_contains("split_think_tags")) o.split_think_tags = x->as_bool();
  }
  auto r = to_chat_request(json::serialize(fixture.at("request")), o);
  if (std::holds_alternative<ApiError>(r)) {
    ADD_FAILURE() << "fixture request rejected: " << std::get<ApiError>(r).message;
    return {};
  }
  return std::get<TranslatedRequest>(std::move(r));
}

class ResponseFixture : public testing::TestWithParam<std::string> {};

TEST_P(ResponseFixture, TranslatesAsWritten) {
  const auto fixture = json::parse(read_file(fixtures_dir() / "response" / (GetParam() + ".json"))).as_object();
  const auto t = translate(fixture);
  const std::string body = fixture.contains("completion_text") ? std::string(fixture.at("completion_text").as_string())
                                                               : json::serialize(fixture.at("completion"));
  const auto result = to_response(body, t);
  if (const auto* expect_error = fixture.if_contains("expect_error")) {
    ASSERT_TRUE(std::holds_alternative<ApiError>(result)) << "expected an error, got " << std::get<std::string>(result);
    const auto& e = expect_error->as_object();
    const auto& error = std::get<ApiError>(result);
    EXPECT_EQ(error.status, e.at("status").as_int64());
    EXPECT_EQ(error.code, e.at("code").as_string());
    for (const auto& part : e.at("message_contains").as_array()) {
      EXPECT_NE(error.message.find(std::string(part.as_string())), std::string::npos) << error.message;
    }
    // Rendered for the client in the OpenAI error shape (the pipeline's job, checked here once).
    const auto rendered = json::parse(openai_error_json(error)).as_object().at("error").as_object();
    EXPECT_EQ(rendered.at("code"), json::value(error.code));
    return;
  }
  ASSERT_TRUE(std::holds_alternative<std::string>(result)) << std::get<ApiError>(result).message;
  const auto actual = json::parse(std::get<std::string>(result));
  EXPECT_EQ(actual, fixture.at("expect")) << "actual:   " << std::get<std::string>(result)
                                          << "\nexpected: " << json::serialize(fixture.at("expect"));
}

INSTANTIATE_TEST_SUITE_P(Fixtures, ResponseFixture, testing::ValuesIn(fixture_names()),
                         [](const testing::TestParamInfo<std::string>& p) { return p.param; });

TEST(ResponseFixtures, ArePresent) { EXPECT_GE(fixture_names().size(), 14u); }

// Self-consistency of every successful fixture, independent of its expected file: ids unique and
// prefixed by kind, output_text-style invariants the SDKs rely on.
TEST(ResponseObjects, AreSelfConsistent) {
  for (const auto& name : fixture_names()) {
    const auto fixture = json::parse(read_file(fixtures_dir() / "response" / (name + ".json"))).as_object();
    if (fixture.contains("expect_error")) continue;
    const auto t = translate(fixture);
    const auto result = to_response(json::serialize(fixture.at("completion")), t);
    ASSERT_TRUE(std::holds_alternative<std::string>(result)) << name;
    const auto r = json::parse(std::get<std::string>(result)).as_object();
    EXPECT_EQ(r.at("id"), json::value(t.response_id)) << name;
    EXPECT_EQ(r.at("object"), "response") << name;
    std::vector<std::string> ids;
    for (const auto& item : r.at("output").as_array()) {
      const auto& o = item.as_object();
      const std::string id(o.at("id").as_string());
      const std::string type(o.at("type").as_string());
      const std::string prefix = type == "message" ? "msg_" : type == "reasoning" ? "rs_" : type == "function_call" ? "fc_" : "ctc_";
      EXPECT_EQ(id.rfind(prefix, 0), 0u) << name << ": " << id;
      EXPECT_EQ(std::count(ids.begin(), ids.end(), id), 0) << name << ": duplicate " << id;
      ids.push_back(id);
      if (type == "function_call") {
        // Arguments are always parseable JSON text for the client's tool runner.
        json::error_code ec;
        (void)json::parse(o.at("arguments").as_string(), ec);
        EXPECT_FALSE(ec) << name << ": arguments " << o.at("arguments");
      }
    }
  }
}

}  // namespace
}  // namespace e2ee::api::responses

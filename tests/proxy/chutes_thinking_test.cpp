// The thinking controls, case by case as the reference fork's test_thinking.lua enumerates them
// (chutes-protocol.md section 17), with expected bodies written out by hand.

#include "proxy/chutes/thinking.hpp"

#include <gtest/gtest.h>

namespace e2ee::proxy::chutes {
namespace {

struct Outcome {
  std::string model;
  std::string body;  // the body as the provider then sends it
};

Outcome run(std::string_view model, std::string_view body, std::optional<bool> header = std::nullopt,
            bool chat = true) {
  auto members = json_text::ObjectMembers::index(body);
  EXPECT_TRUE(members) << members.error().message;
  if (!members) return {};
  auto r = apply_thinking_controls(model, *members, header, chat);
  EXPECT_TRUE(r) << r.error().message;
  if (!r) return {};
  return Outcome{r->model, r->body.value_or(std::string(body))};
}

TEST(ThinkingControls, PlainModelIsUntouched) {
  const std::string body = R"({"model":"Qwen/Qwen3-32B","messages":[]})";
  const auto r = run("Qwen/Qwen3-32B", body);
  EXPECT_EQ(r.model, "Qwen/Qwen3-32B");
  EXPECT_EQ(r.body, body);
}

TEST(ThinkingControls, SuffixIsStrippedAndTurnsThinkingOn) {
  const auto r = run("Qwen/Qwen3-32B:THINKING", R"({"model":"Qwen/Qwen3-32B:THINKING","messages":[]})");
  EXPECT_EQ(r.model, "Qwen/Qwen3-32B");
  EXPECT_EQ(r.body, R"({"model":"Qwen/Qwen3-32B","messages":[],"chat_template_kwargs":{"thinking":true,"enable_thinking":true}})");
}

TEST(ThinkingControls, SuffixInTheMiddleIsPartOfTheName) {
  const std::string body = R"({"model":"a:THINKING-b"})";
  const auto r = run("a:THINKING-b", body);
  EXPECT_EQ(r.model, "a:THINKING-b");
  EXPECT_EQ(r.body, body);
}

TEST(ThinkingControls, HeaderTrueAndFalseInAnyCase) {
  EXPECT_EQ(parse_thinking_header("true"), true);
  EXPECT_EQ(parse_thinking_header("TRUE"), true);
  EXPECT_EQ(parse_thinking_header(" False "), false);
  EXPECT_EQ(parse_thinking_header("yes"), std::nullopt);
  EXPECT_EQ(parse_thinking_header(std::nullopt), std::nullopt);
  EXPECT_EQ(run("m", R"({"model":"m"})", true).body, R"({"model":"m","chat_template_kwargs":{"thinking":true,"enable_thinking":true}})");
  EXPECT_EQ(run("m", R"({"model":"m"})", false).body, R"({"model":"m","chat_template_kwargs":{"thinking":false,"enable_thinking":false}})");
}

TEST(ThinkingControls, KeysAreNormalisedBothWays) {
  EXPECT_EQ(run("m", R"({"chat_template_kwargs":{"enable_thinking":true}})").body,
            R"({"chat_template_kwargs":{"enable_thinking":true,"thinking":true}})");
  EXPECT_EQ(run("m", R"({"chat_template_kwargs":{"thinking":false}})").body,
            R"({"chat_template_kwargs":{"thinking":false,"enable_thinking":false}})");
}

TEST(ThinkingControls, ModelDefaultsByPrefix) {
  EXPECT_EQ(run("zai-org/GLM-4.7-TEE", R"({"model":"zai-org/GLM-4.7-TEE"})").body,
            R"({"model":"zai-org/GLM-4.7-TEE","chat_template_kwargs":{"thinking":true,"enable_thinking":true}})");
  EXPECT_EQ(run("deepseek-ai/DeepSeek-V3.2-Speciale-TEE", R"({})").body,
            R"({"chat_template_kwargs":{"thinking":true,"enable_thinking":true}})");
  EXPECT_EQ(run("moonshotai/Kimi-K2.5-TEE", R"({})").body, R"({"chat_template_kwargs":{"thinking":true,"enable_thinking":true}})");
  EXPECT_EQ(run("XiaomiMiMo/MiMo-V2-Flash", R"({})").body, R"({"chat_template_kwargs":{"thinking":false,"enable_thinking":false}})");
}

TEST(ThinkingControls, ExplicitValuesBeatDefaultsHeaderAndSuffix) {
  // A user turning MiMo's thinking on, and an explicit false on a default-on model.
  EXPECT_EQ(run("XiaomiMiMo/MiMo-V2-Flash", R"({"chat_template_kwargs":{"enable_thinking":true}})").body,
            R"({"chat_template_kwargs":{"enable_thinking":true,"thinking":true}})");
  EXPECT_EQ(run("zai-org/GLM-4.7", R"({"chat_template_kwargs":{"thinking":false}})").body,
            R"({"chat_template_kwargs":{"thinking":false,"enable_thinking":false}})");
  EXPECT_EQ(run("m:THINKING", R"({"model":"m:THINKING","chat_template_kwargs":{"thinking":false}})", true).body,
            R"({"model":"m","chat_template_kwargs":{"thinking":false,"enable_thinking":false}})");
  // Header false beats the suffix.
  EXPECT_EQ(run("m:THINKING", R"({"model":"m:THINKING"})", false).body,
            R"({"model":"m","chat_template_kwargs":{"thinking":false,"enable_thinking":false}})");
}

TEST(ThinkingControls, UnrelatedKwargsAndBytesArePreserved) {
  EXPECT_EQ(run("m", R"({"chat_template_kwargs": {"custom": [1, 2], "x": "y"}, "seed": 18446744073709551616})", true).body,
            R"({"chat_template_kwargs": {"custom": [1, 2], "x": "y","thinking":true,"enable_thinking":true}, "seed": 18446744073709551616})");
}

TEST(ThinkingControls, NonChatEndpointsOnlyLoseTheSuffix) {
  const auto r = run("m:THINKING", R"({"model":"m:THINKING","prompt":"x"})", true, false);
  EXPECT_EQ(r.model, "m");
  EXPECT_EQ(r.body, R"({"model":"m","prompt":"x"})");
}

}  // namespace
}  // namespace e2ee::proxy::chutes

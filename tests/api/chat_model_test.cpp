// parse_completion / parse_chunk against the shapes real engines send (vLLM with and without a
// reasoning parser, SGLang, llama.cpp, OpenAI-style), and the malformed inputs that must fail.

#include "api/chat/chat_model.hpp"

#include <gtest/gtest.h>

namespace {

using namespace e2ee::api::chat;

TEST(ChatModel, VllmCompletionWithReasoningToolCallsAndUsage) {
  // A vLLM 0.9-style answer: reasoning parser on, hermes tool parser on, stop_reason null.
  const auto r = parse_completion(R"({
    "id":"chatcmpl-abc","object":"chat.completion","created":1750000000,"model":"Qwen/Qwen3-8B",
    "choices":[{"index":0,"message":{"role":"assistant","content":"Let me check.",
      "reasoning_content":"The user wants the weather.",
      "tool_calls":[{"id":"chatcmpl-tool-1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\", \"n\": 12345678901234567890}"}},
                    {"id":"chatcmpl-tool-2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
      "logprobs":null,"finish_reason":"tool_calls","stop_reason":null}],
    "usage":{"prompt_tokens":120,"total_tokens":150,"completion_tokens":30,
             "prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":11}}})");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r->id, "chatcmpl-abc");
  EXPECT_EQ(r->model, "Qwen/Qwen3-8B");
  EXPECT_EQ(r->created, 1750000000);
  ASSERT_EQ(r->choices.size(), 1u);
  const auto& c = r->choices[0];
  EXPECT_TRUE(c.has_content);
  EXPECT_EQ(c.content, "Let me check.");
  EXPECT_EQ(c.reasoning, "The user wants the weather.");
  ASSERT_EQ(c.tool_calls.size(), 2u);
  EXPECT_EQ(c.tool_calls[0].index, 0);
  EXPECT_EQ(c.tool_calls[0].id, "chatcmpl-tool-1");
  EXPECT_EQ(c.tool_calls[0].name, "get_weather");
  // Arguments are text: the big integer must survive byte for byte.
  EXPECT_EQ(c.tool_calls[0].arguments, R"({"city": "Paris", "n": 12345678901234567890})");
  EXPECT_EQ(c.tool_calls[1].index, 1) << "a missing index is the position in the array";
  EXPECT_EQ(c.tool_calls[1].name, "get_time");
  ASSERT_TRUE(c.finish_reason);
  EXPECT_EQ(*c.finish_reason, "tool_calls");
  EXPECT_FALSE(c.matched_stop);
  ASSERT_TRUE(r->usage);
  EXPECT_EQ(r->usage->prompt_tokens, 120);
  EXPECT_EQ(r->usage->completion_tokens, 30);
  EXPECT_EQ(r->usage->total_tokens, 150);
  EXPECT_EQ(r->usage->cached_tokens, 64);
  EXPECT_EQ(r->usage->reasoning_tokens, 11);
  EXPECT_FALSE(r->error_message);
}

TEST(ChatModel, NullContentIsNotContent) {
  const auto r = parse_completion(R"({"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":null},"finish_reason":"stop"}]})");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->choices[0].has_content);
  EXPECT_EQ(r->choices[0].content, "");
  EXPECT_FALSE(r->usage) << "no usage member: no usage";
}

TEST(ChatModel, EmptyStringContentIsContent) {
  const auto r = parse_completion(R"({"choices":[{"message":{"content":""}}]})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->choices[0].has_content);
}

TEST(ChatModel, ContentPartsAreJoined) {
  const auto r = parse_completion(R"({"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}]})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->choices[0].has_content);
  EXPECT_EQ(r->choices[0].content, "ab");
}

TEST(ChatModel, ArgumentsAsAnObjectAreSerialised) {
  const auto r = parse_completion(R"({"choices":[{"message":{"tool_calls":[{"id":"t","function":{"name":"f","arguments":{"a":"x"}}}]}}]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->choices[0].tool_calls.size(), 1u);
  EXPECT_EQ(r->choices[0].tool_calls[0].arguments, R"({"a":"x"})");
}

TEST(ChatModel, ReasoningFieldOfNewerVllm) {
  const auto r = parse_chunk(R"({"choices":[{"index":0,"delta":{"reasoning":"hmm"}}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->choices[0].reasoning, "hmm");
  EXPECT_FALSE(r->choices[0].has_content);
}

TEST(ChatModel, BothReasoningFieldsAreNotDoubled) {
  // Some vLLM versions send the same text under both names.
  const auto r = parse_chunk(R"({"choices":[{"delta":{"reasoning_content":"abc","reasoning":"abc"}}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->choices[0].reasoning, "abc");
}

TEST(ChatModel, EmptyReasoningContentFallsBackToReasoning) {
  const auto r = parse_chunk(R"({"choices":[{"delta":{"reasoning_content":null,"reasoning":"r"}}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->choices[0].reasoning, "r");
}

TEST(ChatModel, StreamedToolCallFragments) {
  const auto first = parse_chunk(R"({"id":"c1","object":"chat.completion.chunk","created":1,"model":"m",
    "choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"b","arguments":""}}]},"finish_reason":null}]})");
  ASSERT_TRUE(first);
  ASSERT_EQ(first->choices[0].tool_calls.size(), 1u);
  EXPECT_EQ(first->choices[0].tool_calls[0].index, 1);
  EXPECT_EQ(first->choices[0].tool_calls[0].id, "call_b");
  EXPECT_EQ(first->choices[0].tool_calls[0].name, "b");
  EXPECT_EQ(first->choices[0].tool_calls[0].arguments, "");
  EXPECT_FALSE(first->choices[0].finish_reason);

  const auto next = parse_chunk(R"({"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"q\":"}}]}}]})");
  ASSERT_TRUE(next);
  EXPECT_EQ(next->choices[0].tool_calls[0].index, 1);
  EXPECT_EQ(next->choices[0].tool_calls[0].id, "");
  EXPECT_EQ(next->choices[0].tool_calls[0].name, "");
  EXPECT_EQ(next->choices[0].tool_calls[0].arguments, "{\"q\":");
}

TEST(ChatModel, TrailingUsageChunkWithoutChoices) {
  const auto r = parse_chunk(R"({"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}})");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->choices.empty());
  ASSERT_TRUE(r->usage);
  EXPECT_EQ(r->usage->prompt_tokens, 7);
  EXPECT_EQ(r->usage->completion_tokens, 3);
  EXPECT_EQ(r->usage->cached_tokens, 0);
}

TEST(ChatModel, NullUsageIsNoUsage) {
  const auto r = parse_chunk(R"({"choices":[{"delta":{"content":"x"}}],"usage":null})");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->usage);
  EXPECT_EQ(r->choices[0].content, "x");
}

TEST(ChatModel, TotalDerivedWhenMissingAndFloatsAccepted) {
  const auto r = parse_chunk(R"({"choices":[],"usage":{"prompt_tokens":5.0,"completion_tokens":2,"total_tokens":null}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->usage->prompt_tokens, 5);
  EXPECT_EQ(r->usage->total_tokens, 7);
}

TEST(ChatModel, NegativeOrJunkCountsAreZero) {
  const auto r = parse_chunk(R"({"choices":[],"usage":{"prompt_tokens":-4,"completion_tokens":"9"}})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->usage->prompt_tokens, 0);
  EXPECT_EQ(r->usage->completion_tokens, 0);
}

TEST(ChatModel, VllmMatchedStopString) {
  const auto r = parse_chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop","stop_reason":"###"}]})");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->choices[0].matched_stop);
  EXPECT_EQ(*r->choices[0].matched_stop, "###");
}

TEST(ChatModel, VllmStopTokenIdIsNotAString) {
  // vLLM reports a stop token id as an integer: that is no stop *sequence*.
  const auto r = parse_chunk(R"({"choices":[{"index":0,"delta":{},"finish_reason":"stop","stop_reason":151645}]})");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->choices[0].matched_stop);
}

TEST(ChatModel, SglangMatchedStop) {
  const auto r = parse_completion(R"({"choices":[{"index":0,"message":{"content":"a"},"finish_reason":"stop","matched_stop":"END"}]})");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->choices[0].matched_stop);
  EXPECT_EQ(*r->choices[0].matched_stop, "END");
}

TEST(ChatModel, ChunkWithMessageInsteadOfDelta) {
  const auto r = parse_chunk(R"({"choices":[{"index":0,"message":{"content":"whole"},"finish_reason":"stop"}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->choices[0].content, "whole");
}

TEST(ChatModel, RefusalIsRead) {
  const auto r = parse_completion(R"({"choices":[{"message":{"content":null,"refusal":"I can't help with that."}}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->choices[0].refusal, "I can't help with that.");
}

TEST(ChatModel, NestedErrorWithNumericCode) {
  const auto r = parse_chunk(R"({"error":{"object":"error","message":"maximum context length is 4096","type":"BadRequestError","param":null,"code":400}})");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error_message);
  EXPECT_EQ(*r->error_message, "maximum context length is 4096");
  EXPECT_EQ(r->error_type, "BadRequestError");
  EXPECT_EQ(r->error_code, "400");
  EXPECT_EQ(r->error_status, 400);
}

TEST(ChatModel, FlatVllmErrorResponse) {
  const auto r = parse_completion(R"({"object":"error","message":"model not found","type":"NotFoundError","param":null,"code":404})");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error_message);
  EXPECT_EQ(*r->error_message, "model not found");
  EXPECT_EQ(r->error_status, 404);
}

TEST(ChatModel, StringErrorAndStringCode) {
  const auto a = parse_chunk(R"({"error":"upstream died"})");
  ASSERT_TRUE(a);
  ASSERT_TRUE(a->error_message);
  EXPECT_EQ(*a->error_message, "upstream died");
  const auto b = parse_chunk(R"({"error":{"message":"too long","type":"invalid_request_error","code":"context_length_exceeded"}})");
  ASSERT_TRUE(b);
  EXPECT_EQ(b->error_code, "context_length_exceeded");
  EXPECT_EQ(b->error_status, 0);
}

TEST(ChatModel, ErrorWithoutMessageStillReported) {
  const auto r = parse_chunk(R"({"error":{"code":500}})");
  ASSERT_TRUE(r);
  ASSERT_TRUE(r->error_message);
  EXPECT_FALSE(r->error_message->empty());
  EXPECT_EQ(r->error_status, 500);
}

TEST(ChatModel, MalformedInputsFailWithoutEchoingContent) {
  const char* bad[] = {
      "",
      "not json",
      R"({"choices":[{"delta":{"content":"SECRET"}})",  // truncated
      R"([1,2])",
      R"("text")",
      R"({"choices":{"0":{}}})",
      R"({"choices":["x"]})",
      R"({"choices":[{"delta":"SECRET"}]})",
      R"({"choices":[{"delta":{"tool_calls":{"index":0}}}]})",
      R"({"choices":[{"delta":{"tool_calls":["SECRET"]}}]})",
  };
  for (const char* text : bad) {
    SCOPED_TRACE(text);
    const auto r = parse_chunk(text);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, e2ee::Errc::malformed);
    EXPECT_EQ(r.error().message.find("SECRET"), std::string::npos) << "messages never carry content";
  }
  EXPECT_FALSE(parse_completion(R"({"choices":[{"message":[]}]})"));
}

TEST(ChatModel, ChoiceIndexesAreRead) {
  const auto r = parse_chunk(R"({"choices":[{"index":1,"delta":{"content":"b"}},{"index":0,"delta":{"content":"a"}}]})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->choices.size(), 2u);
  EXPECT_EQ(r->choices[0].index, 1);
  EXPECT_EQ(r->choices[1].index, 0);
}

TEST(ChatModel, EscapesAndUnicodeDecodedExactly) {
  const auto r = parse_chunk(R"({"choices":[{"delta":{"content":"a\"b\\c\n\u00e9\ud83d\ude00/"}}]})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->choices[0].content, "a\"b\\c\n\xC3\xA9\xF0\x9F\x98\x80/");
}

}  // namespace

namespace {

using namespace e2ee::api::chat;

TEST(ChatEngineError, StatusTypeAndCode) {
  Completion c;
  c.error_message = "This model's maximum context length is 4096 tokens.";
  c.error_status = 400;
  auto e = engine_error(c);
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.type, "invalid_request_error");
  EXPECT_EQ(e.message, "This model's maximum context length is 4096 tokens.");

  // SGLang and llama.cpp say it differently; some engines answer it with a 500.
  c.error_message = "The input (9000 tokens) is longer than the model's context length (8192 tokens).";
  c.error_status = 500;
  e = engine_error(c);
  EXPECT_EQ(e.code, "context_length_exceeded");
  EXPECT_EQ(e.status, 400);
  c.error_message = "request exceeds the available context size";
  c.error_code = "exceed_context_size_error";
  c.error_status = 0;
  EXPECT_EQ(engine_error(c, 400).code, "context_length_exceeded");

  Completion r;
  r.error_message = "rate limited";
  r.error_status = 429;
  e = engine_error(r);
  EXPECT_EQ(e.status, 429);
  EXPECT_EQ(e.type, "rate_limit_error");
  EXPECT_EQ(e.code, "engine_error");
  EXPECT_EQ(e.retry_after_seconds, kEngineRetryAfterSeconds) << "SDKs back off on Retry-After";
  EXPECT_EQ(engine_error(c).retry_after_seconds, 0);

  Completion s;
  s.error_message = "oops";
  s.error_code = "some_code";
  e = engine_error(s);
  EXPECT_EQ(e.status, 502) << "no status anywhere: bad gateway";
  EXPECT_EQ(e.type, "upstream_error");
  EXPECT_EQ(e.code, "some_code");
  EXPECT_EQ(engine_error(s, 503).status, 503);
  EXPECT_EQ(engine_error(s, 504).status, 502);
  EXPECT_EQ(engine_error(s, 422).status, 422);
}

TEST(ChatEngineError, FromBody) {
  auto e = engine_error_from_body(400, R"({"error":{"message":"bad tool schema","type":"BadRequestError","code":400}})");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.message, "bad tool schema");
  e = engine_error_from_body(502, "<html>upstream secret page</html>");
  EXPECT_EQ(e.status, 502);
  EXPECT_EQ(e.message.find("secret"), std::string::npos) << "a non-JSON body is never echoed";
  EXPECT_NE(e.message.find("502"), std::string::npos);
}

TEST(ChatEngineError, LongMessagesAreClippedOnACharacterBoundary) {
  Completion c;
  c.error_message = std::string(999, 'x') + "\xC3\xA9" + std::string(100, 'y');
  const auto e = engine_error(c, 400);
  EXPECT_EQ(e.message, std::string(999, 'x') + "…");
}

}  // namespace

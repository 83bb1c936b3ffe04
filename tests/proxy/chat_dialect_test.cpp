// The chat dialect's stream shaper: events pass through unchanged, except the usage-only chunk
// that the TEE side forces (include_usage), which a client that did not ask for it never sees.

#include <gtest/gtest.h>

#include <string>
#include <variant>

#include "proxy/dialect.hpp"

namespace e2ee::proxy {
namespace {

std::unique_ptr<StreamShaper> shaper_for(const std::string& body) {
  auto dialect = make_chat_dialect();
  http::Request request;
  request.method = "POST";
  request.path = "/v1/chat/completions";
  request.body = body;
  auto call = dialect->prepare(request, "key");
  EXPECT_TRUE(std::holds_alternative<E2eeCall>(call));
  return dialect->make_shaper();
}

// What the shaper lets through for one engine event: its text, or "" when it dropped it.
std::string shaped(StreamShaper& shaper, const std::string& data) {
  const auto out = shaper.on_event(data);
  if (out.empty()) return "";
  EXPECT_EQ(out.size(), 1u);
  return out.front().data;
}

constexpr const char* kNoUsageRequested = R"({"model":"m","stream":true,"messages":[]})";

TEST(ChatShaper, DropsTheUsageOnlyChunkWhenTheClientDidNotAskForIt) {
  auto shaper = shaper_for(kNoUsageRequested);
  // vLLM's spelling, and the same chunk written the ways JSON allows: spaces and a line break in
  // the empty array, the key spelled with an escape.
  for (const char* chunk : {R"({"id":"c","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":3}})",
                            "{\"choices\":[ \n\t], \"usage\":{\"total_tokens\":1}}",
                            R"({"choices":[],"us\u0061ge":{"total_tokens":1}})"}) {
    EXPECT_EQ(shaped(*shaper, chunk), "") << chunk;
  }
}

TEST(ChatShaper, PassesEveryOtherChunkUnchanged) {
  auto shaper = shaper_for(kNoUsageRequested);
  for (const char* chunk : {R"({"choices":[{"index":0,"delta":{"content":"hi"}}]})",
                            R"({"choices":[{"index":0,"delta":{"content":"[] usage"}}],"usage":null})",
                            R"({"choices":[{"index":0,"delta":{"tool_calls":[]}}],"usage":{"total_tokens":1}})",
                            R"({"choices":[],"model":"m"})", "not json [] usage"}) {
    EXPECT_EQ(shaped(*shaper, chunk), chunk);
  }
}

TEST(ChatShaper, KeepsTheUsageOnlyChunkWhenTheClientAskedForIt) {
  auto shaper = shaper_for(R"({"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[]})");
  const std::string chunk = R"({"choices":[],"usage":{"prompt_tokens":3}})";
  EXPECT_EQ(shaped(*shaper, chunk), chunk);
}

}  // namespace
}  // namespace e2ee::proxy

// The engine's chat-completions answers as the translators read them (src/api/chat/chat_model.cpp):
// whatever an engine (or a compromised instance) sends reaches these parsers.
//
// Input: mode byte, then the engine's body. mode & 1: parse_chunk instead of parse_completion;
// mode >> 1 picks the HTTP status handed to engine_error_from_body.
// Checks: only the documented errors (malformed, with a message); a parsed answer has indexes in
// 0 … 1,000,000 and non-negative token counts; an engine error becomes an ApiError with a status
// in 400–499, 502 or 503, the type its status implies, Retry-After exactly for 429, a message of
// at most 1,000 bytes (+ "…"), empty only if the engine's was, still valid UTF-8 when the
// engine's was, and the OpenAI
// rendering of it is JSON; parsing is deterministic.

#include <array>

#include "api/chat/chat_model.hpp"
#include "fuzz_support.hpp"

namespace {

namespace chat = e2ee::api::chat;

constexpr std::array<int, 10> kStatuses{0, 200, 400, 401, 404, 413, 429, 500, 503, 600};

void check_error(const e2ee::api::ApiError& e) {
  FUZZ_CHECK((e.status >= 400 && e.status <= 499) || e.status == 502 || e.status == 503);
  const std::string expected_type = e.status == 429 ? "rate_limit_error" : e.status >= 500 ? "upstream_error" : "invalid_request_error";
  FUZZ_CHECK(e.type == expected_type);
  FUZZ_CHECK(e.retry_after_seconds == (e.status == 429 ? chat::kEngineRetryAfterSeconds : 0));
  FUZZ_CHECK(e.message.size() <= 1000 + std::string_view("…").size());
  FUZZ_CHECK(!e.code.empty());
  FUZZ_CHECK(e2ee::fuzz::parse_json(e2ee::api::openai_error_json(e)).has_value());
}

void check_usage(const chat::Usage& u) {
  for (const auto n : {u.prompt_tokens, u.completion_tokens, u.total_tokens, u.cached_tokens, u.reasoning_tokens})
    FUZZ_CHECK(n >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto [mode, body] = e2ee::fuzz::split_mode(data, size);
  const bool chunk = (mode & 1) != 0;
  const int http_status = kStatuses[(mode >> 1) % kStatuses.size()];

  const auto parsed = chunk ? chat::parse_chunk(body) : chat::parse_completion(body);
  const auto again = chunk ? chat::parse_chunk(body) : chat::parse_completion(body);
  FUZZ_CHECK(parsed.has_value() == again.has_value());
  if (!parsed) {
    FUZZ_CHECK(parsed.error().code == e2ee::Errc::malformed && !parsed.error().message.empty());
  } else {
    FUZZ_CHECK(parsed->choices.size() == again->choices.size() && parsed->id == again->id);
    for (const auto& c : parsed->choices) {
      FUZZ_CHECK(c.index >= 0 && c.index <= 1000000);
      FUZZ_CHECK(c.has_content || c.content.empty());
      for (const auto& call : c.tool_calls) FUZZ_CHECK(call.index >= 0 && call.index <= 1000000);
    }
    if (parsed->usage) check_usage(*parsed->usage);
    FUZZ_CHECK(parsed->error_status == 0 || (parsed->error_status >= 400 && parsed->error_status <= 599));
    if (parsed->error_message) {
      const auto error = chat::engine_error(*parsed, http_status);
      check_error(error);
      // Empty only when the engine's own message was (engine_error passes it on as it came).
      FUZZ_CHECK(!error.message.empty() || parsed->error_message->empty());
      if (e2ee::fuzz::valid_utf8(*parsed->error_message)) FUZZ_CHECK(e2ee::fuzz::valid_utf8(error.message));
    }
  }
  const auto from_body = chat::engine_error_from_body(http_status, body);
  check_error(from_body);
  FUZZ_CHECK(!from_body.message.empty() || (parsed && parsed->error_message && parsed->error_message->empty()));
  return 0;
}

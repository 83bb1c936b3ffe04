// Anthropic Messages requests → chat completions (src/api/anthropic/request.cpp, count_tokens.cpp):
// every byte a client (Claude Code, an SDK, a web page) posts to /v1/messages reaches these.
//
// Input: mode byte (the RequestOptions), then the request body. The same body also goes through
// count_tokens (to_tokenize_request, the local estimate) and, as an engine answer, through
// to_count_tokens_response.
// Checks: a 400 invalid_request_error with a message and a code, or a chat request that is a
// JSON object with a messages array, the client's model and stream flag, a positive max_tokens
// when it has one; shortened tool names stay within the limit and map back; translation is
// deterministic; count_tokens answers {"input_tokens": n ≥ 0}; the tokenize request is JSON.

#include "api/anthropic/messages.hpp"
#include "fuzz_support.hpp"

namespace {

namespace anthropic = e2ee::api::anthropic;
using e2ee::api::ApiError;

anthropic::RequestOptions options_of(std::uint8_t mode) {
  anthropic::RequestOptions o;
  o.thinking = static_cast<anthropic::ThinkingControl>(mode & 3);
  o.include_deferred_tools = (mode & 4) == 0;
  o.forward_thinking_history = (mode & 8) == 0;
  o.continue_final_assistant = (mode & 16) == 0;
  o.drop_attribution_block = (mode & 32) == 0;
  o.max_tool_name_length = (mode & 64) == 0 ? 64 : 0;
  o.default_max_tokens = (mode & 128) == 0 ? 0 : 4096;
  o.fallback_id = "fuzz";
  return o;
}

void check_client_error(const ApiError& e) {
  FUZZ_CHECK_MSG(e.status == 400 && e.type == "invalid_request_error" && !e.message.empty(), e.message);
  FUZZ_CHECK(e2ee::fuzz::parse_json(e2ee::api::anthropic_error_json(e)).has_value());
}

void check_input_tokens(const std::variant<std::string, ApiError>& answer) {
  if (const auto* e = std::get_if<ApiError>(&answer)) return check_client_error(*e);
  const auto v = e2ee::fuzz::parse_json(std::get<std::string>(answer));
  FUZZ_CHECK(v.has_value());
  const auto* n = e2ee::fuzz::member(*v, "input_tokens");
  FUZZ_CHECK(n != nullptr && ((n->is_int64() && n->get_int64() >= 0) || n->is_uint64()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto input = e2ee::fuzz::split_mode(data, size);  // not a structured binding: clang 14 cannot capture one
  const auto options = options_of(input.mode);

  const auto result = e2ee::fuzz::translate_request([&] { return anthropic::to_chat_request(input.rest, options); });
  const std::string_view body = input.rest;
  if (const auto* e = std::get_if<ApiError>(&result)) {
    check_client_error(*e);
  } else {
    const auto& t = std::get<anthropic::TranslatedRequest>(result);
    const auto chat = e2ee::fuzz::parse_json(t.chat_json);
    FUZZ_CHECK_MSG(chat && chat->is_object(), t.chat_json);
    const auto* messages = e2ee::fuzz::member(*chat, "messages");
    FUZZ_CHECK(messages != nullptr && messages->is_array());
    const auto* model = e2ee::fuzz::member(*chat, "model");
    FUZZ_CHECK(model != nullptr && model->is_string() && model->get_string() == t.model);
    const auto* stream = e2ee::fuzz::member(*chat, "stream");
    FUZZ_CHECK((stream != nullptr && stream->is_bool() && stream->get_bool()) == t.stream);
    // Copied as the client wrote it: a positive integer, possibly beyond 64 bits (Boost.JSON: a double).
    if (const auto* max = e2ee::fuzz::member(*chat, "max_tokens"); max != nullptr)
      FUZZ_CHECK((max->is_int64() && max->get_int64() > 0) || max->is_uint64() || (max->is_double() && max->get_double() >= 1));
    for (const auto& name : t.tool_names) {
      FUZZ_CHECK(name.engine.size() <= options.max_tool_name_length || options.max_tool_name_length == 0);
      FUZZ_CHECK(t.client_tool_name(name.engine) == name.client);
    }
    FUZZ_CHECK(t.estimated_input_tokens >= 0);
  }

  if (const auto tokenize = anthropic::to_tokenize_request(body, options); const auto* json = std::get_if<std::string>(&tokenize))
    FUZZ_CHECK(e2ee::fuzz::parse_json(*json).has_value());
  else
    check_client_error(std::get<ApiError>(tokenize));
  check_input_tokens(anthropic::estimate_count_tokens_response(body, options));

  // The same bytes as the engine's /tokenize answer: a count, or a 502-style error.
  const auto counted = anthropic::to_count_tokens_response(body);
  if (const auto* json = std::get_if<std::string>(&counted)) {
    check_input_tokens(counted);
    (void)json;
  } else {
    FUZZ_CHECK(!std::get<ApiError>(counted).message.empty());
  }
  return 0;
}

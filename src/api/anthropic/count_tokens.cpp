// POST /v1/messages/count_tokens: counted by the engine's /tokenize through the encrypted channel,
// with a documented local estimate as the fallback.

#include <boost/json.hpp>

#include "api/anthropic/detail.hpp"

namespace e2ee::api::anthropic {

std::variant<std::string, ApiError> to_tokenize_request(std::string_view count_tokens_body, const RequestOptions& options) {
  auto translated = to_chat_request(count_tokens_body, options);
  if (auto* error = std::get_if<ApiError>(&translated)) return *error;
  const std::string& chat = std::get<TranslatedRequest>(translated).chat_json;

  // The members that change what the template renders; sampling parameters do not.
  std::string out = "{";
  bool prefill = false;
  for (const char* key : {"model", "messages", "tools", "chat_template_kwargs", "continue_final_message"}) {
    auto span = json_text::find_member(chat, key);
    if (!span || !*span) continue;
    const std::string_view value = std::string_view(chat).substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin);
    if (std::string_view(key) == "continue_final_message") {
      prefill = value == "true";
      continue;
    }
    if (out.size() > 1) out += ",";
    out += json_text::quote(key);
    out += ":";
    out += value;
  }
  out += prefill ? ",\"add_generation_prompt\":false,\"continue_final_message\":true}" : ",\"add_generation_prompt\":true}";
  return out;
}

std::variant<std::string, ApiError> to_count_tokens_response(std::string_view tokenize_answer) {
  boost::json::error_code ec;
  const auto root = boost::json::parse(tokenize_answer, ec);
  if (!ec && root.is_object()) {
    const auto& o = root.get_object();
    if (const auto* count = o.if_contains("count"); count != nullptr && (count->is_int64() || count->is_uint64())) {
      const auto n = count->is_int64() ? count->get_int64() : static_cast<std::int64_t>(count->get_uint64());
      if (n >= 0) return "{\"input_tokens\":" + std::to_string(n) + "}";
    }
    if (const auto* tokens = o.if_contains("tokens"); tokens != nullptr && tokens->is_array()) {
      return "{\"input_tokens\":" + std::to_string(tokens->get_array().size()) + "}";
    }
    if (o.contains("error") || o.contains("object")) {
      auto parsed = chat::parse_completion(tokenize_answer);
      if (parsed && parsed->error_message) return to_anthropic_error(chat::engine_error(*parsed));
    }
  }
  return upstream_error(502, "bad_engine_response", "the engine's tokenize answer has no token count");
}

std::variant<std::string, ApiError> estimate_count_tokens_response(std::string_view count_tokens_body, const RequestOptions& options) {
  auto translated = to_chat_request(count_tokens_body, options);
  if (auto* error = std::get_if<ApiError>(&translated)) return *error;
  return "{\"input_tokens\":" + std::to_string(std::get<TranslatedRequest>(translated).estimated_input_tokens) + "}";
}

}  // namespace e2ee::api::anthropic

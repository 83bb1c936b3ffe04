#include "api/anthropic/detail.hpp"

#include "common/encoding.hpp"

#include <algorithm>

namespace e2ee::api::anthropic {

std::string TranslatedRequest::client_tool_name(std::string_view engine_name) const {
  for (const auto& n : tool_names) {
    if (n.engine == engine_name) return n.client;
  }
  return std::string(engine_name);
}

ApiError to_anthropic_error(ApiError error) {
  // Claude Code offers /compact (and its auto-compaction reacts) on Anthropic's own wording.
  if (error.code == "context_length_exceeded" && error.message.rfind("prompt is too long", 0) != 0) {
    error.message = "prompt is too long: " + error.message;
  }
  return error;
}

namespace detail {

std::string reasoning_signature(std::string_view reasoning) {
  return std::string(kReasoningSignaturePrefix) + base64_encode(as_bytes(reasoning));
}

std::optional<std::string> reasoning_from_signature(std::string_view signature) {
  if (signature.substr(0, kReasoningSignaturePrefix.size()) != kReasoningSignaturePrefix) return std::nullopt;
  auto bytes = base64_decode(signature.substr(kReasoningSignaturePrefix.size()));
  if (!bytes) return std::nullopt;
  return to_string(*bytes);
}

namespace {
bool token_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}
std::string token(std::string_view text) {
  std::string out(text);
  std::replace_if(out.begin(), out.end(), [](char c) { return !token_char(c); }, '_');
  return out;
}
}  // namespace

std::string message_id(std::string_view engine_id, std::string_view fallback_id) {
  if (!engine_id.empty()) return "msg_" + token(engine_id.substr(0, 128));
  if (!fallback_id.empty()) return "msg_" + token(fallback_id.substr(0, 128));
  return "msg_e2ee";
}

std::string tool_use_id(std::string_view message_id, int n) {
  std::string_view tail = message_id;
  if (tail.rfind("msg_", 0) == 0) tail.remove_prefix(4);
  if (tail.size() > 24) tail = tail.substr(tail.size() - 24);
  return "toolu_" + std::string(tail) + "_" + std::to_string(n);
}

StopInfo map_stop(const std::optional<std::string>& finish_reason, const std::optional<std::string>& matched_stop,
                  const std::vector<std::string>& stop_sequences, bool has_tool_calls) {
  const std::string reason = finish_reason.value_or("");
  if (reason == "length") return {"max_tokens", std::nullopt};
  if (reason == "content_filter") return {"refusal", std::nullopt};
  if (reason == "tool_calls" || reason == "function_call" || has_tool_calls) return {"tool_use", std::nullopt};
  if (reason == "stop" && matched_stop &&
      std::find(stop_sequences.begin(), stop_sequences.end(), *matched_stop) != stop_sequences.end()) {
    return {"stop_sequence", *matched_stop};
  }
  return {"end_turn", std::nullopt};
}

std::string usage_json(std::int64_t prompt_tokens, std::int64_t cached_tokens, std::int64_t output_tokens,
                       bool with_cache_creation_detail) {
  const std::int64_t cached = std::clamp<std::int64_t>(cached_tokens, 0, prompt_tokens);
  std::string out = "{\"input_tokens\":" + std::to_string(prompt_tokens - cached) +
                    ",\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":" + std::to_string(cached);
  if (with_cache_creation_detail) out += ",\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0}";
  out += ",\"output_tokens\":" + std::to_string(output_tokens) + "}";
  return out;
}

namespace {
std::string_view trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}
}  // namespace

bool is_json_object(std::string_view text) {
  const auto t = trim(text);
  return !t.empty() && t.front() == '{' && json_text::validate(t);
}

std::string tool_input(std::string_view arguments) {
  const auto t = trim(arguments);
  if (is_json_object(t)) return std::string(t);
  // Some models emit the arguments object as a JSON string ("{\"a\":1}" quoted once more).
  if (!t.empty() && t.front() == '"' && json_text::validate(t)) {
    if (auto inner = json_text::unquote(t); inner && is_json_object(*inner)) return std::string(trim(*inner));
  }
  return "{}";
}

OutEvent error_event(const ApiError& error) { return OutEvent{"error", anthropic_error_json(to_anthropic_error(error))}; }

}  // namespace detail
}  // namespace e2ee::api::anthropic

// Non-stream chat.completion → Anthropic message.

#include "api/anthropic/detail.hpp"

namespace e2ee::api::anthropic {

using detail::put_string;

std::variant<std::string, ApiError> to_messages_response(std::string_view chat_completion_json, const TranslatedRequest& request) {
  auto parsed = chat::parse_completion(chat_completion_json);
  if (!parsed) return upstream_error(502, "bad_engine_response", "the engine's answer is not a valid chat completion");
  const chat::Completion& answer = *parsed;
  if (answer.error_message) return to_anthropic_error(chat::engine_error(answer));
  if (answer.choices.empty()) return upstream_error(502, "bad_engine_response", "the engine's answer has no choices");
  const chat::Choice* choice = &answer.choices.front();
  for (const auto& c : answer.choices) {
    if (c.index == 0) {
      choice = &c;
      break;
    }
  }

  // Reasoning from the engine's parser first, then any "<think>" section inlined in the content.
  std::string thinking = choice->reasoning;
  std::string text;
  chat::ThinkSplitter splitter;
  std::vector<chat::ThinkSplitter::Piece> pieces;
  splitter.feed(choice->content, pieces);
  splitter.finish(pieces);
  for (const auto& piece : pieces) {
    if (piece.kind == chat::ThinkSplitter::Kind::thinking) {
      if (!thinking.empty()) thinking += "\n\n";
      thinking += piece.text;
    } else {
      text += piece.text;
    }
  }
  bool refused = false;
  if (text.empty() && !choice->refusal.empty()) {
    text = choice->refusal;
    refused = true;
  }

  const std::string id = detail::message_id(answer.id, request.fallback_id);
  std::string content;
  auto add = [&content](const std::string& block) {
    if (!content.empty()) content += ",";
    content += block;
  };
  if (!thinking.empty()) {
    std::string block = "{\"type\":\"thinking\",\"thinking\":";
    put_string(block, request.omit_thinking ? std::string() : thinking);
    block += ",\"signature\":";
    put_string(block, request.omit_thinking ? detail::reasoning_signature(thinking) : std::string());
    block += "}";
    add(block);
  }
  // A whitespace-only answer next to thinking or tool calls is formatting (Anthropic rejects
  // such a block when the client sends it back).
  if (text.find_first_not_of(" \t\r\n") != std::string::npos) {
    std::string block = "{\"type\":\"text\",\"text\":";
    put_string(block, text);
    block += "}";
    add(block);
  }
  int n = 0;
  for (const auto& call : choice->tool_calls) {
    std::string block = "{\"type\":\"tool_use\",\"id\":";
    put_string(block, call.id.empty() ? detail::tool_use_id(id, n) : call.id);
    block += ",\"name\":";
    put_string(block, request.client_tool_name(call.name));
    block += ",\"input\":" + detail::tool_input(call.arguments) + "}";
    add(block);
    ++n;
  }

  auto stop = detail::map_stop(choice->finish_reason, choice->matched_stop, request.stop_sequences, !choice->tool_calls.empty());
  if (refused && stop.reason == "end_turn") stop.reason = "refusal";

  std::int64_t prompt = request.estimated_input_tokens, cached = 0, output = 0;
  if (answer.usage) {
    prompt = answer.usage->prompt_tokens;
    cached = answer.usage->cached_tokens;
    output = answer.usage->completion_tokens;
  } else {
    // An engine that reports no usage: the documented estimate rather than zeros.
    std::int64_t bytes = static_cast<std::int64_t>(thinking.size() + text.size());
    for (const auto& call : choice->tool_calls) bytes += static_cast<std::int64_t>(call.arguments.size());
    output = (bytes + 3) / 4;
  }

  std::string out = "{\"id\":";
  put_string(out, id);
  out += ",\"type\":\"message\",\"role\":\"assistant\",\"model\":";
  put_string(out, request.model);
  out += ",\"content\":[" + content + "],\"stop_reason\":";
  put_string(out, stop.reason);
  out += ",\"stop_sequence\":";
  if (stop.sequence) {
    put_string(out, *stop.sequence);
  } else {
    out += "null";
  }
  out += ",\"usage\":" + detail::usage_json(prompt, cached, output, true) + "}";
  return out;
}

}  // namespace e2ee::api::anthropic

#pragma once
// Internal to src/api/anthropic/: small JSON-writing helpers and the mappings the non-stream and
// stream translators share. Not part of the module's API.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/anthropic/messages.hpp"
#include "api/chat/chat_model.hpp"
#include "common/json_text.hpp"

namespace e2ee::api::anthropic::detail {

inline void put_string(std::string& out, std::string_view text) { out += json_text::quote(text); }

// "msg_<engine id>" (engine ids are [A-Za-z0-9_-] in practice; anything else is replaced so the
// id stays a plain token), or "msg_<fallback>" when the engine gave none.
std::string message_id(std::string_view engine_id, std::string_view fallback_id);

// With thinking.display "omitted" (Claude Code's default) the client gets thinking blocks with no
// text and echoes them back on the next turn, so the model's reasoning would be lost between
// turns of a tool loop. The block's `signature` is the one field a client returns untouched, and
// only this proxy reads it back, so the reasoning rides there: prefix + base64(text).
inline constexpr std::string_view kReasoningSignaturePrefix = "e2ee-proxy-reasoning-v1:";
std::string reasoning_signature(std::string_view reasoning);
// The reasoning carried by such a signature, or nullopt for any other signature.
std::optional<std::string> reasoning_from_signature(std::string_view signature);

// "toolu_<message id tail>_<n>" for a tool call the engine gave no id.
std::string tool_use_id(std::string_view message_id, int n);

struct StopInfo {
  std::string reason;                   // end_turn, stop_sequence, max_tokens, tool_use, refusal
  std::optional<std::string> sequence;  // the stop sequence that fired
};
// finish_reason → stop_reason. stop + a matched string that is one of the request's
// stop_sequences → stop_sequence; length → max_tokens; tool_calls/function_call → tool_use;
// content_filter → refusal; stop/null/unknown → end_turn, except tool_use when the answer has
// tool calls (vLLM says "stop" for a named tool_choice).
StopInfo map_stop(const std::optional<std::string>& finish_reason, const std::optional<std::string>& matched_stop,
                  const std::vector<std::string>& stop_sequences, bool has_tool_calls);

// {"input_tokens":…,"cache_creation_input_tokens":0,"cache_read_input_tokens":…,[cache_creation,]"output_tokens":…}
// with input_tokens = prompt − cached (Anthropic counts cache reads separately).
std::string usage_json(std::int64_t prompt_tokens, std::int64_t cached_tokens, std::int64_t output_tokens,
                       bool with_cache_creation_detail);

// A tool call's arguments as the `input` object's JSON text: the engine's text when it is a JSON
// object (byte for byte), the object inside when the engine double-encoded it as a string, and
// "{}" only when there is nothing usable.
std::string tool_input(std::string_view arguments);

// True when `text` is one complete JSON object (used to decide that a streamed call is done).
bool is_json_object(std::string_view text);

// Error event of a stream.
OutEvent error_event(const ApiError& error);

}  // namespace e2ee::api::anthropic::detail

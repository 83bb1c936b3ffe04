#pragma once
// Chutes' thinking controls, applied on our side because the E2EE path hides the body from the
// API that normally applies them (chutes-protocol.md section 14):
//   - a ":THINKING" suffix on the model name (stripped before model resolution) or the header
//     "X-Enable-Thinking: true|false" turn the chat template's thinking switch on or off;
//   - chat_template_kwargs "thinking" and "enable_thinking" are kept in step (templates read one or
//     the other);
//   - models with a documented default get it when nobody said otherwise.
// Precedence: an explicit value in the body's chat_template_kwargs, then the header, then the
// suffix, then the model default. Every other byte of the body is kept.

#include <optional>
#include <string>
#include <string_view>

#include "common/json_text.hpp"
#include "common/result.hpp"

namespace e2ee::proxy::chutes {

struct ThinkingOutcome {
  std::string model;                // without the ":THINKING" suffix
  std::optional<std::string> body;  // the new body when it changed (model renamed, chat_template_kwargs
                                    // set because a value was decided); nullopt: unchanged
};

// `chat` is false for endpoints without a chat template (/v1/completions …): then only the suffix
// is stripped. `body` indexes the request body, which is read through the index and, in the
// common case (nothing to change), neither scanned again nor copied.
Result<ThinkingOutcome> apply_thinking_controls(std::string_view model, const json_text::ObjectMembers& body,
                                                std::optional<bool> header, bool chat);

// "true"/"false" in any case; nullopt for anything else (an absent or unreadable header).
std::optional<bool> parse_thinking_header(std::optional<std::string_view> value);

}  // namespace e2ee::proxy::chutes

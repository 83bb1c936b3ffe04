#pragma once
// What the translators read from the engine's chat-completions answers: a non-stream completion
// or one streamed chunk, parsed once into plain structs. Tolerant in the ways real engines need
// (vLLM, SGLang, llama.cpp): reasoning under "reasoning_content" or "reasoning", arguments split
// across chunks, usage in a trailing chunk with no choices, vLLM's matched "stop_reason".

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"

namespace e2ee::api::chat {

struct Usage {
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::int64_t total_tokens = 0;
  std::int64_t cached_tokens = 0;     // prompt_tokens_details.cached_tokens
  std::int64_t reasoning_tokens = 0;  // completion_tokens_details.reasoning_tokens
};

struct ToolCall {  // complete (non-stream) or a streamed fragment
  int index = 0;            // streamed: which call this fragment belongs to
  std::string id;           // streamed: present on the first fragment only
  std::string name;         // streamed: present on the first fragment only
  std::string arguments;    // streamed: a piece of the JSON text
};

struct Choice {
  int index = 0;
  std::string content;                 // message.content / delta.content ("" when null or absent)
  bool has_content = false;            // the field was present and a string
  std::string reasoning;               // reasoning_content or reasoning
  std::vector<ToolCall> tool_calls;
  std::optional<std::string> finish_reason;
  std::optional<std::string> matched_stop;  // vLLM "stop_reason" when it is a string
};

struct Completion {  // chat.completion or one chat.completion.chunk
  std::string id;
  std::string model;
  std::int64_t created = 0;
  std::vector<Choice> choices;
  std::optional<Usage> usage;
  std::optional<std::string> error_message;  // an in-band {"error":…} event of the engine
};

// Parses a chat.completion object (non-stream answer).
Result<Completion> parse_completion(std::string_view json);
// Parses the data of one chat.completion.chunk event (not "[DONE]").
Result<Completion> parse_chunk(std::string_view json);

}  // namespace e2ee::api::chat

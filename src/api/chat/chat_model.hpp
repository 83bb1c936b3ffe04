#pragma once
// What the translators read from the engine's chat-completions answers: a non-stream completion
// or one streamed chunk, parsed once into plain structs. Tolerant in the ways real engines need
// (vLLM, SGLang, llama.cpp): reasoning under "reasoning_content" or "reasoning", arguments split
// across chunks, usage in a trailing chunk with no choices, vLLM's matched "stop_reason".
//
// Tolerated: null wherever a value may be absent; `content` as an array of text parts (joined);
// tool-call `arguments` given as a JSON object instead of a string (serialised); token counts
// written as integral floats ("12.0"); a missing tool-call `index` (position in the array).
// Rejected (Errc::malformed, message names the field, never its content): text that is not JSON,
// a top level that is not an object, and structural members of the wrong type (`choices` not an
// array, a choice not an object, `message`/`delta` not an object, `tool_calls` not an array).
// Strings are decoded exactly; Boost.JSON would only touch numbers, and none are passed on.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "api/api_error.hpp"
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
  bool has_content = false;            // the field was present and a string (or text parts)
  std::string reasoning;               // reasoning_content, else reasoning (never both: engines
                                       // that send both send the same text twice)
  std::string refusal;                 // message.refusal / delta.refusal (OpenAI-style engines)
  std::vector<ToolCall> tool_calls;
  std::optional<std::string> finish_reason;
  std::optional<std::string> matched_stop;  // vLLM "stop_reason" / SGLang "matched_stop" when a string
};

struct Completion {  // chat.completion or one chat.completion.chunk
  std::string id;
  std::string model;
  std::int64_t created = 0;
  std::vector<Choice> choices;
  std::optional<Usage> usage;
  // An in-band error of the engine: {"error":{…}}, {"error":"…"} or vLLM's {"object":"error",…}.
  std::optional<std::string> error_message;
  std::string error_type;    // e.g. "BadRequestError", "invalid_request_error" ("" when absent)
  std::string error_code;    // "code" as text: "400", "context_length_exceeded" ("" when absent)
  int error_status = 0;      // an HTTP status when the engine gave one (numeric code 400..599), else 0
};

// Parses a chat.completion object (non-stream answer). Reads choices[].message.
Result<Completion> parse_completion(std::string_view json);
// Parses the data of one chat.completion.chunk event (not "[DONE]"). Reads choices[].delta, or
// choices[].message when a chunk has no delta (some engines send the final chunk that way).
Result<Completion> parse_chunk(std::string_view json);

// The engine's own error as the pipeline's ApiError, for any dialect to render:
//  - status: the engine's numeric code when it is 400..599, else `http_status` when >= 400,
//    else 502; 5xx other than 503 become 502 (the engine failed, we are the gateway);
//  - code: "context_length_exceeded" when the message says the prompt does not fit (vLLM,
//    SGLang and llama.cpp wordings; clients key compaction off it), else the engine's string
//    code, else "engine_error";
//  - type: invalid_request_error (4xx), rate_limit_error (429), upstream_error (5xx);
//  - message: the engine's message, cut to 1,000 bytes (it describes the client's own request);
//  - retry_after_seconds: kEngineRetryAfterSeconds for a 429, else 0.
inline constexpr int kEngineRetryAfterSeconds = 5;
ApiError engine_error(const Completion& answer, int http_status = 0);
// The same for the body of a non-2xx answer (JSON error object, or anything else: a generic
// message naming the status, never the body's bytes when they are not a JSON error).
ApiError engine_error_from_body(int http_status, std::string_view body);

}  // namespace e2ee::api::chat

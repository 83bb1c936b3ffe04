#pragma once
// Chat-completions answer → OpenAI Responses `response` object (non-stream). Built by the same
// state machine as the stream (output_assembler.hpp), so ids, items and their order are exactly
// what the stream would have produced for the same answer.

#include <string>
#include <string_view>
#include <variant>

#include "api/api_error.hpp"
#include "api/responses/translated_request.hpp"

namespace e2ee::api::responses {

// The Response object as JSON text: status completed, incomplete (incomplete_details.reason
// max_output_tokens / content_filter) or failed (finish_reason error/abort; error{code,message}).
// An ApiError (to be sent in the OpenAI error shape) when the engine's body is not a chat
// completion (502 malformed_upstream_response) or is an in-band error object (its status when the
// engine gave one, else 502; code mapped as for response.failed).
std::variant<std::string, ApiError> to_response(std::string_view chat_completion_json,
                                                const TranslatedRequest& request);

}  // namespace e2ee::api::responses

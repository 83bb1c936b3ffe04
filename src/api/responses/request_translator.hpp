#pragma once
// OpenAI Responses request → chat-completions request (the Codex path). Pure: the body in, the
// engine's body and the per-request state the answer needs out. Everything the engine cannot
// carry is either a documented drop (recorded in TranslatedRequest::notes) or a 400 naming the
// field; nothing is silently lost. The field-by-field table (translated, dropped, rejected) is
// kept with the user documentation of issue 4.

#include <string_view>
#include <variant>

#include "api/api_error.hpp"
#include "api/responses/translated_request.hpp"

namespace e2ee::api::responses {

// Errors are 400 invalid_request_error with a `code` (invalid_json, missing_required_parameter,
// invalid_type, invalid_value, unsupported_parameter, unsupported_value) and a message naming the
// offending path (e.g. "input[3].content[1].type"), never its content.
std::variant<TranslatedRequest, ApiError> to_chat_request(std::string_view responses_body,
                                                          const RequestOptions& options);

}  // namespace e2ee::api::responses

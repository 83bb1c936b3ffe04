#pragma once
// The one error vocabulary of the pipeline, rendered at the edge in each client's dialect:
//   OpenAI chat/completions  {"error":{"message","type","param","code"}}
//   Anthropic Messages       {"type":"error","error":{"type","message"}}   (event: error mid-stream)
//   OpenAI Responses         the OpenAI shape before a stream; response.failed once it started

#include <string>
#include <string_view>

namespace e2ee::api {

struct ApiError {
  int status = 502;
  std::string type;     // OpenAI-style type: invalid_request_error, authentication_error, rate_limit_error, …
  std::string code;     // stable machine-readable code, e.g. "model_not_found", "context_length_exceeded"
  std::string message;  // actionable; never contains prompt or completion text of other requests, keys, or ciphertext
  int retry_after_seconds = 0;  // > 0 adds Retry-After
};

ApiError bad_request(std::string code, std::string message);
ApiError upstream_error(int status, std::string code, std::string message);

// {"error":{"message":…,"type":…,"param":null,"code":…}}
std::string openai_error_json(const ApiError& error);
// Anthropic's error type for a status (invalid_request_error, authentication_error, permission_error,
// not_found_error, request_too_large, rate_limit_error, api_error, overloaded_error).
std::string anthropic_error_type(int status);
// {"type":"error","error":{"type":…,"message":…}}
std::string anthropic_error_json(const ApiError& error);

}  // namespace e2ee::api

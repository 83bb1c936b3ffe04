#include "api/api_error.hpp"

#include <boost/json.hpp>

namespace e2ee::api {

namespace json = boost::json;

ApiError bad_request(std::string code, std::string message) {
  return ApiError{400, "invalid_request_error", std::move(code), std::move(message), 0};
}

ApiError upstream_error(int status, std::string code, std::string message) {
  return ApiError{status, "upstream_error", std::move(code), std::move(message), 0};
}

std::string openai_error_json(const ApiError& error) {
  json::object inner;
  inner["message"] = error.message;
  inner["type"] = error.type;
  inner["param"] = nullptr;
  inner["code"] = error.code.empty() ? json::value(nullptr) : json::value(error.code);
  return json::serialize(json::object{{"error", std::move(inner)}});
}

std::string anthropic_error_type(int status) {
  switch (status) {
    case 400: case 422: return "invalid_request_error";
    case 401: return "authentication_error";
    case 402: case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503: case 529: return "overloaded_error";
    default: return "api_error";
  }
}

std::string anthropic_error_json(const ApiError& error) {
  return json::serialize(json::object{
      {"type", "error"},
      {"error", json::object{{"type", anthropic_error_type(error.status)}, {"message", error.message}}}});
}

}  // namespace e2ee::api

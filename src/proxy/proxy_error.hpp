#pragma once
// The proxy uses the API layer's error vocabulary; rendering to HTTP responses lives here.

#include <string>
#include <string_view>

#include "common/result.hpp"

#include "api/api_error.hpp"
#include "http/message.hpp"

namespace e2ee::proxy {

using ProxyError = api::ApiError;
using api::bad_request;
using api::upstream_error;

// A failed upstream exchange (connect, send, read): 504 on a timeout, 499 when our own client
// went away and the request was cancelled (only the access log sees that one), 502 otherwise.
ProxyError transport_error(std::string_view what, const Error& error);

// An OpenAI-shaped error response with the error's status (and Retry-After when set).
http::Response render_openai_error(const ProxyError& error);
// The same body as the data of one SSE event (for failures after a stream has started).
inline std::string openai_error_event_data(const ProxyError& error) { return api::openai_error_json(error); }

}  // namespace e2ee::proxy

#include "proxy/proxy_error.hpp"

namespace e2ee::proxy {

ProxyError transport_error(std::string_view what, const Error& error) {
  std::string message = std::string(what) + ": " + error.message;
  switch (error.code) {
    case Errc::timeout:
      return upstream_error(504, "upstream_timeout", std::move(message));
    case Errc::cancelled:
      return ProxyError{499, "proxy_error", "client_closed_request", std::move(message), 0};
    default:
      return upstream_error(502, "upstream_unreachable", std::move(message));
  }
}

http::Response render_openai_error(const ProxyError& error) {
  http::Response response;
  response.status = error.status;
  response.headers.set("Content-Type", "application/json");
  if (error.retry_after_seconds > 0) response.headers.set("Retry-After", std::to_string(error.retry_after_seconds));
  response.body = api::openai_error_json(error);
  response.body += '\n';
  return response;
}

}  // namespace e2ee::proxy

#include "proxy/proxy_error.hpp"

namespace e2ee::proxy {

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

#include "proxy/proxy_service.hpp"

#include <chrono>

#include "common/json_text.hpp"
#include "common/log.hpp"
#include "proxy/chutes/thinking.hpp"

namespace e2ee::proxy {
namespace {

http::Response json_response(int status, std::string body) {
  http::Response r;
  r.status = status;
  r.headers.set("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

}  // namespace

std::optional<std::string> extract_api_key(const http::Headers& headers, const std::optional<std::string>& fallback) {
  if (auto key = headers.get("x-api-key"); key && !key->empty()) return std::string(*key);
  if (auto auth = headers.get("Authorization"); auth && !auth->empty()) {
    std::string_view v = *auth;
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    // "Bearer <key>" in any case, or a raw key; "Bearer" with nothing after it is no key at all.
    if (v.size() >= 6 && http::iequals(v.substr(0, 6), "Bearer") && (v.size() == 6 || v[6] == ' ')) v.remove_prefix(6);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    if (!v.empty()) return std::string(v);
  }
  return fallback;
}

ProxyService::ProxyService(Provider& provider, ProxyOptions options) : provider_(provider), options_(std::move(options)) {}

void ProxyService::add_cors(http::Headers& headers) const {
  // A browser page on any origin may call a proxy that holds no key of its own: the page must
  // supply the user's key itself. A proxy with a stored key would lend that key to every web
  // page the user visits, so it sends no CORS grant at all.
  if (options_.default_api_key) return;
  headers.set("Access-Control-Allow-Origin", "*");
  headers.set("Access-Control-Expose-Headers", "*");
}

boost::asio::awaitable<int> ProxyService::send(http::ResponseWriter& writer, http::Response response) {
  add_cors(response.headers);
  const int status = response.status;
  co_await writer.send(std::move(response));
  co_return status;
}

boost::asio::awaitable<void> ProxyService::handle(http::Request& request, http::ResponseWriter& writer) {
  const auto started = std::chrono::steady_clock::now();
  const std::size_t bytes_in = request.body.size();  // the body is moved into the pipeline below
  const std::string path = request.path;
  int status = 0;

  if (path == "/health") {
    status = co_await send(writer, json_response(200, "{\"status\":\"ok\"}\n"));
  } else if (request.method == "OPTIONS" && starts_with(path, "/v1/")) {
    http::Response r;
    r.status = 204;
    if (!options_.default_api_key) {
      r.headers.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      r.headers.set("Access-Control-Allow-Headers", "*");
      r.headers.set("Access-Control-Max-Age", "86400");
    }
    status = co_await send(writer, std::move(r));
  } else if (path == "/v1/models" && (request.method == "GET" || request.method == "HEAD")) {
    auto key = extract_api_key(request.headers, options_.default_api_key);
    status = co_await send(writer, co_await provider_.list_models(request, key.value_or("")));
  } else if (path == "/v1/messages" && request.method == "POST") {
    auto dialect = make_messages_dialect();
    status = co_await handle_e2ee(*dialect, request, writer);
  } else if (path == "/v1/messages/count_tokens" && request.method == "POST") {
    auto dialect = make_count_tokens_dialect();
    status = co_await handle_e2ee(*dialect, request, writer);
  } else if (path == "/v1/responses" && request.method == "POST") {
    auto dialect = make_responses_dialect();
    status = co_await handle_e2ee(*dialect, request, writer);
  } else if (starts_with(path, "/v1/responses/")) {
    // Stored responses and /v1/responses/compact need server-side state, which this proxy never
    // keeps (`store` is not honoured); Codex treats a clean 404 here as "unsupported".
    const ProxyError stateless{404, "invalid_request_error", "unsupported_endpoint",
                               "this proxy keeps no response state: " + path + " is not available", 0};
    status = co_await send(writer, render_openai_error(stateless));
  } else if (starts_with(path, "/v1/")) {
    auto dialect = make_chat_dialect();
    status = co_await handle_e2ee(*dialect, request, writer);
  } else {
    const ProxyError unknown{404, "invalid_request_error", "unknown_route",
                             "unknown path " + path.substr(0, 100) + ": use the /v1/ endpoints", 0};
    status = co_await send(writer, render_openai_error(unknown));
  }

  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  log::info("request", {{"method", request.method}, {"path", path.substr(0, 200)}, {"status", status},
                        {"ms", ms}, {"bytes_in", bytes_in}});
}

boost::asio::awaitable<int> ProxyService::handle_e2ee(Dialect& dialect, http::Request& request,
                                                      http::ResponseWriter& writer) {
  auto api_key = extract_api_key(request.headers, options_.default_api_key);
  if (!api_key) {
    const ProxyError missing{401, "authentication_error", "missing_api_key",
                             "missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key', or start the "
                             "proxy with --api-key",
                             0};
    co_return co_await send(writer, dialect.render_error(missing));
  }
  auto prepared = dialect.prepare(request, std::move(*api_key));
  if (auto* error = std::get_if<ProxyError>(&prepared)) co_return co_await send(writer, dialect.render_error(*error));
  E2eeCall& call = std::get<E2eeCall>(prepared);
  call.enable_thinking = chutes::parse_thinking_header(request.headers.get("X-Enable-Thinking"));
  const bool stream = call.stream;

  auto result = co_await provider_.call(std::move(call));
  if (auto* error = std::get_if<ProxyError>(&result)) {
    if (auto recovered = dialect.recover(*error)) co_return co_await send(writer, std::move(*recovered));
    co_return co_await send(writer, dialect.render_error(*error));
  }
  auto& ok = std::get<CallResult>(result);
  if (!stream) co_return co_await send(writer, dialect.render_body(std::move(ok.body)));

  auto shaper = dialect.make_shaper();
  http::Headers headers = sse_headers();
  add_cors(headers);
  co_return co_await relay_stream(*ok.events, *shaper, writer, std::move(headers), dialect.keepalive_interval());
}

}  // namespace e2ee::proxy

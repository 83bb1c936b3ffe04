#include "proxy/proxy_service.hpp"

#include <chrono>

#include "common/json_text.hpp"
#include "common/log.hpp"

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

// The value of a top-level string member, unescaped, if the member is a JSON string.
std::optional<std::string> string_member(std::string_view body, std::string_view key) {
  auto span = json_text::find_member(body, key);
  if (!span || !*span) return std::nullopt;
  auto value = json_text::unquote(body.substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin));
  if (!value) return std::nullopt;
  return std::move(*value);
}

// The literal text of a top-level member's value ("" when absent).
std::string_view member_text(std::string_view body, std::string_view key) {
  auto span = json_text::find_member(body, key);
  if (!span || !*span) return {};
  return body.substr((*span)->value_begin, (*span)->value_end - (*span)->value_begin);
}

}  // namespace

std::optional<std::string> extract_api_key(const http::Headers& headers, const std::optional<std::string>& fallback) {
  if (auto key = headers.get("x-api-key"); key && !key->empty()) return std::string(*key);
  if (auto auth = headers.get("Authorization"); auth && !auth->empty()) {
    std::string_view v = *auth;
    if (v.size() > 7 && http::iequals(v.substr(0, 7), "Bearer ")) v.remove_prefix(7);
    while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
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

boost::asio::awaitable<void> ProxyService::handle(http::Request& request, http::ResponseWriter& writer) {
  const auto started = std::chrono::steady_clock::now();
  const std::size_t bytes_in = request.body.size();  // the body is moved into the pipeline below
  int status = 0;
  const std::string_view path = request.path;

  if (path == "/health") {
    auto r = json_response(200, "{\"status\":\"ok\"}\n");
    add_cors(r.headers);
    co_await writer.send(std::move(r));
    status = 200;
  } else if (request.method == "OPTIONS" && starts_with(path, "/v1/")) {
    http::Response r;
    r.status = 204;
    add_cors(r.headers);
    if (!options_.default_api_key) {
      r.headers.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      r.headers.set("Access-Control-Allow-Headers", "*");
      r.headers.set("Access-Control-Max-Age", "86400");
    }
    co_await writer.send(std::move(r));
    status = 204;
  } else if (path == "/v1/models" && (request.method == "GET" || request.method == "HEAD")) {
    auto key = extract_api_key(request.headers, options_.default_api_key);
    auto r = co_await provider_.list_models(request, key.value_or(""));
    add_cors(r.headers);
    status = r.status;
    co_await writer.send(std::move(r));
  } else if (starts_with(path, "/v1/")) {
    status = co_await handle_e2ee(request, writer);
  } else {
    auto r = render_openai_error(ProxyError{404, "invalid_request_error", "unknown_route",
                                            "unknown path " + std::string(path.substr(0, 100)) + ": use the /v1/ endpoints", 0});
    add_cors(r.headers);
    co_await writer.send(std::move(r));
    status = 404;
  }

  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
  log::info("request", {{"method", request.method}, {"path", path.substr(0, 200)}, {"status", status},
                        {"ms", ms}, {"bytes_in", bytes_in}});
}

boost::asio::awaitable<int> ProxyService::handle_e2ee(http::Request& request, http::ResponseWriter& writer) {
  auto fail = [&](const ProxyError& e) -> boost::asio::awaitable<int> {
    auto r = render_openai_error(e);
    add_cors(r.headers);
    co_await writer.send(std::move(r));
    co_return e.status;
  };

  auto api_key = extract_api_key(request.headers, options_.default_api_key);
  if (!api_key) {
    const ProxyError missing{401, "authentication_error", "missing_api_key",
                             "missing API key: send it as 'Authorization: Bearer <key>' or 'x-api-key', or start the "
                             "proxy with --api-key",
                             0};
    co_return co_await fail(missing);
  }
  if (request.body.empty()) co_return co_await fail(bad_request("missing_body", "missing request body"));
  if (auto valid = json_text::validate(request.body); !valid)
    co_return co_await fail(bad_request("invalid_json", "invalid JSON body: " + valid.error().message));
  auto model = string_member(request.body, "model");
  if (!model || model->empty()) {
    if (auto any = json_text::find_member(request.body, "model"); !any)
      co_return co_await fail(bad_request("invalid_json", "the request body must be a JSON object"));
    co_return co_await fail(bad_request("missing_model", "missing 'model' field"));
  }

  // Chutes decides streaming twice — the API from X-E2E-Stream, the instance from the body with
  // Python truthiness — so anything but a JSON boolean could make the two disagree.
  const std::string_view stream_text = member_text(request.body, "stream");
  if (!stream_text.empty() && stream_text != "true" && stream_text != "false" && stream_text != "null")
    co_return co_await fail(bad_request("invalid_stream", "'stream' must be true or false"));

  E2eeCall call;
  call.path = request.path;
  call.stream = stream_text == "true";
  call.model = std::move(*model);
  call.body = std::move(request.body);
  call.api_key = std::move(*api_key);
  const bool stream = call.stream;

  auto result = co_await provider_.call(std::move(call));
  if (auto* err = std::get_if<ProxyError>(&result)) co_return co_await fail(*err);
  auto& ok = std::get<CallResult>(result);
  if (!stream) {
    auto r = json_response(200, std::move(ok.body));
    add_cors(r.headers);
    co_await writer.send(std::move(r));
    co_return 200;
  }
  co_return co_await relay_stream(*ok.events, writer);
}

boost::asio::awaitable<int> ProxyService::relay_stream(EventStream& events, http::ResponseWriter& writer) {
  http::Headers headers;
  headers.set("Content-Type", "text/event-stream");
  headers.set("Cache-Control", "no-cache");
  headers.set("X-Accel-Buffering", "no");
  add_cors(headers);
  if (!co_await writer.start_stream(200, std::move(headers))) co_return 499;

  static constexpr std::string_view kDone = "data: [DONE]\n\n";
  for (;;) {
    auto next = co_await events.next();
    if (auto* err = std::get_if<ProxyError>(&next)) {
      // A stream that fails midway ends with an error event and [DONE], never silently.
      log::warn("stream failed", {{"code", err->code}, {"status", err->status}});
      co_await writer.write("data: " + openai_error_event_data(*err) + "\n\n");
      co_await writer.write(kDone);
      co_await writer.finish();
      co_return err->status;
    }
    auto& event = std::get<std::optional<http::SseEvent>>(next);
    if (!event) {
      // The engine always ends with [DONE]; an end without it is a truncated stream.
      const ProxyError truncated = upstream_error(502, "stream_truncated", "the stream ended before the model finished");
      co_await writer.write("data: " + openai_error_event_data(truncated) + "\n\n");
      co_await writer.write(kDone);
      co_await writer.finish();
      co_return 502;
    }
    if (event->data == "[DONE]") {
      if (!co_await writer.write(kDone)) co_return 499;
      co_await writer.finish();
      co_return 200;
    }
    if (!co_await writer.write(http::format_sse(event->data, event->event))) co_return 499;  // client went away
  }
}

}  // namespace e2ee::proxy

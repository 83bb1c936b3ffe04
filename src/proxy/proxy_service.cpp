#include "proxy/proxy_service.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <exception>

#include "common/json_text.hpp"
#include "common/log.hpp"
#include "proxy/browser_guard.hpp"
#include "http/cancel_on_disconnect.hpp"
#include "proxy/chutes/thinking.hpp"

namespace e2ee::proxy {

namespace net = boost::asio;
using namespace boost::asio::experimental::awaitable_operators;

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

namespace {

// Adds what every response of a request carries, so that no response path can forget it: the
// CORS grant, and the request's id as both SDKs read it (`request-id` for Anthropic's
// `_request_id`, `x-request-id` for OpenAI's), which the access log line shows too.
class CommonHeadersWriter final : public http::ResponseWriter {
 public:
  CommonHeadersWriter(http::ResponseWriter& inner, std::optional<std::string> grant, std::string request_id)
      : inner_(inner), grant_(std::move(grant)), request_id_(std::move(request_id)) {}

  // Plain functions handing back the inner writer's awaitable: no coroutine frame of their own,
  // which matters for write(), called once per stream chunk.
  net::awaitable<Status> send(http::Response response) override {
    add(response.headers);
    return inner_.send(std::move(response));
  }
  net::awaitable<Status> start_stream(int status, http::Headers headers) override {
    add(headers);
    return inner_.start_stream(status, std::move(headers));
  }
  net::awaitable<Status> write(std::string_view chunk) override { return inner_.write(chunk); }
  net::awaitable<Status> finish() override { return inner_.finish(); }
  bool started() const noexcept override { return inner_.started(); }
  void on_client_gone(std::function<void()> hook) override { inner_.on_client_gone(std::move(hook)); }

 private:
  void add(http::Headers& headers) const {
    headers.set("request-id", request_id_);
    headers.set("x-request-id", request_id_);
    if (!grant_) return;
    headers.set("Access-Control-Allow-Origin", *grant_);
    headers.set("Access-Control-Expose-Headers", "*");
    if (*grant_ != "*") headers.set("Vary", "Origin");
  }

  http::ResponseWriter& inner_;
  std::optional<std::string> grant_;
  std::string request_id_;
};

}  // namespace

boost::asio::awaitable<int> ProxyService::send(http::ResponseWriter& writer, http::Response response) {
  const int status = response.status;
  co_await writer.send(std::move(response));
  co_return status;
}

boost::asio::awaitable<void> ProxyService::handle(http::Request& request, http::ResponseWriter& client) {
  const auto started = std::chrono::steady_clock::now();
  const std::size_t bytes_in = request.body.size();  // the body is moved into the pipeline below
  const std::string path = request.path;
  int status = 0;
  const auto origin = request.headers.get("Origin");
  const auto grant = cors_grant(options_.browser, origin);
  const std::string request_id = "req_" + random_token(24);
  CommonHeadersWriter writer(client, grant, request_id);

  if (!host_allowed(options_.browser, request.headers.get("Host"))) {
    // Answered before anything else: a DNS-rebinding page must learn nothing, not even /health.
    const ProxyError refused{403, "permission_error", "host_not_allowed",
                             "this proxy does not answer requests for the host name in the Host header (a web page "
                             "may be trying to reach it through DNS rebinding); to allow a name, start the proxy with "
                             "--allowed-host NAME or set E2EE_ALLOWED_HOSTS",
                             0};
    http::Response answer = starts_with(path, "/v1/messages") ? make_messages_dialect()->render_error(refused)
                                                               : render_openai_error(refused);
    status = co_await send(writer, std::move(answer));
  } else if (path == "/health") {
    status = co_await send(writer, json_response(200, "{\"status\":\"ok\"}\n"));
  } else if (request.method == "OPTIONS" && starts_with(path, "/v1/")) {
    http::Response r;
    r.status = 204;
    if (grant) {
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
  log::info("request", {{"id", request_id}, {"method", request.method}, {"path", path.substr(0, 200)},
                        {"status", status}, {"ms", ms}, {"bytes_in", bytes_in}});
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
  // A client that hangs up cancels the upstream request at once, whatever stage it is in.
  auto cancel = http::cancel_on_disconnect(writer);
  call.cancel = cancel;
  if (call.stream) co_return co_await handle_stream(dialect, std::move(call), writer);

  auto result = co_await provider_.call(std::move(call));
  if (cancel->cancelled()) co_return 499;
  if (auto* error = std::get_if<ProxyError>(&result)) {
    if (auto recovered = dialect.recover(*error)) co_return co_await send(writer, std::move(*recovered));
    co_return co_await send(writer, dialect.render_error(*error));
  }
  co_return co_await send(writer, dialect.render_body(std::move(std::get<CallResult>(result).body)));
}

namespace {

// A provider call running in its own coroutine, so that the handler can keep the client's
// connection alive while it waits. Shared: whichever of the two finishes last releases it.
// (A channel rather than a cancelled timer as the signal: the signal may come before the wait
// has begun — operator|| starts its operands through a post — and a channel keeps it.)
struct PendingCall {
  explicit PendingCall(const net::any_io_executor& ex) : answered(ex, 1) {}
  std::optional<std::variant<CallResult, ProxyError>> outcome;
  net::experimental::channel<void(boost::system::error_code)> answered;  // one message once `outcome` is set
};

net::awaitable<void> run_call(Provider& provider, E2eeCall call, std::shared_ptr<PendingCall> pending) {
  std::variant<CallResult, ProxyError> outcome = ProxyError{500, "proxy_error", "internal_error", "internal error", 0};
  try {
    outcome = co_await provider.call(std::move(call));
  } catch (const std::exception& e) {
    log::error("provider call failed", {{"what", e.what()}});
  }
  pending->outcome.emplace(std::move(outcome));
  pending->answered.try_send(boost::system::error_code{});
}

}  // namespace

net::awaitable<int> ProxyService::handle_stream(Dialect& dialect, E2eeCall call, http::ResponseWriter& writer) {
  const auto ex = co_await net::this_coro::executor;
  const std::shared_ptr<http::CancelToken> cancel = call.cancel;
  auto pending = std::make_shared<PendingCall>(ex);
  net::co_spawn(ex, run_call(provider_, std::move(call), pending), net::detached);

  // The provider usually answers within moments, and then a refusal keeps its own HTTP status.
  // When it does not (a long queue, a slow attestation, an engine that accepts only after its
  // prefill), the client's stream starts anyway after one keep-alive interval and is pinged from
  // then on: clients give up on silent connections (Claude Code after 90 s without a byte).
  auto shaper = dialect.make_shaper();
  const auto every = dialect.keepalive_interval();
  bool started = false;
  bool client_gone = false;
  net::steady_timer keepalive(ex);
  while (!pending->outcome) {
    if (client_gone) {  // nothing to keep alive: just wait for the cancelled call to unwind
      co_await pending->answered.async_receive(net::as_tuple(net::use_awaitable));
      continue;
    }
    keepalive.expires_after(every);
    auto woke = co_await (pending->answered.async_receive(net::as_tuple(net::use_awaitable)) ||
                          keepalive.async_wait(net::as_tuple(net::use_awaitable)));
    if (woke.index() == 0 || pending->outcome) continue;
    if (!started) {
      started = true;
      client_gone = !co_await start_client_stream(*shaper, writer, sse_headers());
    }
    if (!client_gone) {
      const std::string ping = shaper->keepalive();
      client_gone = !co_await writer.write(ping);
    }
    if (client_gone) cancel->cancel();
  }

  if (client_gone || cancel->cancelled()) co_return 499;
  auto& outcome = *pending->outcome;
  if (auto* error = std::get_if<ProxyError>(&outcome)) {
    if (started) co_return co_await fail_client_stream(*shaper, writer, *error);
    co_return co_await send(writer, dialect.render_error(*error));
  }
  if (!started) {
    if (auto sent = co_await start_client_stream(*shaper, writer, sse_headers()); !sent) co_return 499;
  }
  co_return co_await relay_stream(*std::get<CallResult>(outcome).events, *shaper, writer, every);
}

}  // namespace e2ee::proxy

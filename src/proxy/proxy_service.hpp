#pragma once
// The proxy's request pipeline, as named phases over one request:
//   route → authenticate → parse & validate → provider.call (seal, send, open) → relay → log
// Routes follow the reference proxy (chutes-protocol.md section 13): /health, GET /v1/models
// (plain pass-through), OPTIONS (CORS preflight), /v1/messages[/count_tokens] (Anthropic) and
// /v1/responses (OpenAI Responses) translated to chat completions, any other /v1/* path
// end-to-end encrypted as is, else 404.

#include <boost/asio/awaitable.hpp>
#include <optional>
#include <string>
#include <vector>

#include "http/server.hpp"
#include "proxy/browser_guard.hpp"
#include "proxy/dialect.hpp"
#include "proxy/provider.hpp"

namespace e2ee::proxy {

struct ProxyOptions {
  std::optional<std::string> default_api_key;  // --api-key / E2EE_API_KEY: for requests without a key
  BrowserPolicy browser;                       // Host names answered, CORS grants
};

// x-api-key first (Anthropic SDKs), then Authorization (Bearer or raw), else the default.
std::optional<std::string> extract_api_key(const http::Headers& headers, const std::optional<std::string>& fallback);

class ProxyService {
 public:
  ProxyService(Provider& provider, ProxyOptions options);

  boost::asio::awaitable<void> handle(http::Request& request, http::ResponseWriter& writer);

 private:
  boost::asio::awaitable<int> handle_e2ee(Dialect& dialect, http::Request& request, http::ResponseWriter& writer);
  // Streaming calls: waits for the provider while keeping the client's connection alive, then relays.
  boost::asio::awaitable<int> handle_stream(Dialect& dialect, E2eeCall call, http::ResponseWriter& writer);
  boost::asio::awaitable<int> send(http::ResponseWriter& writer, http::Response response);

  Provider& provider_;
  ProxyOptions options_;
};

}  // namespace e2ee::proxy

#pragma once
// A client dialect, per request: how a request becomes an engine call, how the engine's answer
// and any error are written back in the client's own shape. One object per request, holding the
// translation state (tool-name maps, ids, stop sequences) between the request and its answer.
//
//   chat        OpenAI chat/completions and any other /v1/* path: passed through unchanged
//   responses   OpenAI Responses (Codex) ⇄ chat completions
//   messages    Anthropic Messages (Claude Code) ⇄ chat completions

#include <chrono>
#include <memory>
#include <string>
#include <variant>

#include "http/message.hpp"
#include "proxy/provider.hpp"
#include "proxy/stream_relay.hpp"

namespace e2ee::proxy {

class Dialect {
 public:
  virtual ~Dialect() = default;
  // The engine call for this (authenticated) request, or an error for the client.
  virtual std::variant<E2eeCall, ProxyError> prepare(http::Request& request, std::string api_key) = 0;
  // The client's answer built from the engine's complete JSON body.
  virtual http::Response render_body(std::string engine_json) = 0;
  // The stream shaper for this request.
  virtual std::unique_ptr<StreamShaper> make_shaper() = 0;
  // An error response in this dialect's shape, with the error's status.
  virtual http::Response render_error(const ProxyError& error) const = 0;
  // How often to send a keep-alive while the engine is silent.
  virtual std::chrono::milliseconds keepalive_interval() const { return std::chrono::seconds(15); }
  // A chance to answer despite an upstream failure (count_tokens falls back to a local estimate
  // when the engine cannot tokenize); nullopt renders the error.
  virtual std::optional<http::Response> recover(const ProxyError&) { return std::nullopt; }
};

std::unique_ptr<Dialect> make_chat_dialect();
std::unique_ptr<Dialect> make_responses_dialect();
std::unique_ptr<Dialect> make_messages_dialect();
std::unique_ptr<Dialect> make_count_tokens_dialect();

// Per-request ids must not be guessable or repeat across requests: `length` letters and digits
// from the CSPRNG.
std::string random_token(std::size_t length);

// Headers every SSE response gets.
http::Headers sse_headers();

}  // namespace e2ee::proxy

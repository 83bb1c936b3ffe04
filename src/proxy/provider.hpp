#pragma once
// What an E2EE provider does for the pipeline: take a chat-completions-shaped request (already
// translated from the client's dialect), carry it encrypted to the TEE, and hand back the
// engine's answer in plaintext — a body, or the engine's own SSE events one at a time.
// Provider-specific work (model resolution, keys, nonces, envelopes) stays behind this.

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "common/json_text.hpp"
#include "http/client.hpp"
#include "http/message.hpp"
#include "http/sse.hpp"
#include "proxy/proxy_error.hpp"

namespace e2ee::proxy {

struct E2eeCall {
  std::string path;     // the engine path (X-E2E-Path), e.g. /v1/chat/completions; no query
  std::string body;     // JSON object text as it should reach the engine (apart from the model name)
  // An index of `body` when the dialect made one (it validated the body on the way). Its views
  // point where `body` was when indexed: after moving `body`, use members->moved_to(body).
  std::optional<json_text::ObjectMembers> members;
  std::string model;    // the "model" member's value
  bool stream = false;  // the "stream" member is true
  std::string api_key;  // the user's provider key
  std::optional<bool> enable_thinking;  // the client's X-Enable-Thinking header (Chutes, spec §14)
  // Cancelled when the client disconnects: the provider hands it to every upstream request it
  // makes for this call, so an abandoned request stops costing the engine at once.
  std::shared_ptr<http::CancelToken> cancel;
};

// The engine's SSE events, decrypted, in order.
class EventStream {
 public:
  virtual ~EventStream() = default;
  // The next event, or nullopt when the stream ended cleanly. A ProxyError means the stream
  // failed midway (the caller ends the client's stream with an error event).
  virtual boost::asio::awaitable<std::variant<std::optional<http::SseEvent>, ProxyError>> next() = 0;
  // The next event if it is already decrypted and waiting (it came in the same upstream read as
  // the last one), without any I/O; nullopt otherwise. Lets the relay forward a whole burst in
  // one write. Never returns the stream's end: only next() does.
  virtual std::optional<http::SseEvent> try_next() { return std::nullopt; }
  // Abandons the stream (the client went away): a next() in progress fails promptly and the
  // upstream request is cancelled. Called on the executor next() runs on.
  virtual void cancel() noexcept = 0;
};

struct CallResult {
  std::string body;                     // non-stream: the engine's JSON
  std::unique_ptr<EventStream> events;  // stream
};

class Provider {
 public:
  virtual ~Provider() = default;
  virtual boost::asio::awaitable<std::variant<CallResult, ProxyError>> call(E2eeCall call) = 0;
  // GET /v1/models: the provider's model list, passed through without E2EE.
  virtual boost::asio::awaitable<http::Response> list_models(const http::Request& request, std::string api_key) = 0;
};

}  // namespace e2ee::proxy

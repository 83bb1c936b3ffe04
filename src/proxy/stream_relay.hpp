#pragma once
// Relays the engine's decrypted events to the client, shaped into the client's dialect, with
// keep-alives while the engine is silent.
//
// A reader coroutine pulls events from the upstream, a batch per upstream read, and passes them
// through a small channel; a ticker adds a keep-alive to that channel when the client has heard
// nothing for the interval; the writer shapes whatever is queued and sends it in one write. This
// is what allows pinging during a long prefill (Claude Code gives up after 90 s of silence)
// without ever interrupting an upstream read halfway. When the client goes away the upstream is cancelled at once, and the relay returns
// only after the reader has stopped, so nothing outlives the request.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <string>
#include <string_view>

#include "api/out_event.hpp"
#include "http/server.hpp"
#include "proxy/provider.hpp"

namespace e2ee::proxy {

// Turns engine chat-completion events into the client's events. One per request.
class StreamShaper {
 public:
  virtual ~StreamShaper() = default;
  // Events to send as soon as the upstream has accepted the request (Responses: created, in_progress).
  virtual api::OutEvents start() { return {}; }
  // One engine event's data (never "[DONE]").
  virtual api::OutEvents on_event(std::string_view data) = 0;
  // The engine finished ([DONE] seen).
  virtual api::OutEvents on_done() = 0;
  // The stream failed (upstream error, decryption failure, truncation).
  virtual api::OutEvents on_error(const ProxyError& error) = 0;
  // Bytes that keep the connection alive without changing what the client parses.
  virtual std::string keepalive() const { return ": keep-alive\n\n"; }
};

// Formats an event: "event: <name>\n" when named, then the data, then a blank line.
std::string format_event(const api::OutEvent& event);

// Sends the stream's head (status 200, `headers`) and the shaper's opening events. False when
// the client is gone.
boost::asio::awaitable<bool> start_client_stream(StreamShaper& shaper, http::ResponseWriter& writer,
                                                 http::Headers headers);

// Ends a started stream with the shaper's error events. Returns the status for the access log.
boost::asio::awaitable<int> fail_client_stream(StreamShaper& shaper, http::ResponseWriter& writer,
                                               const ProxyError& error);

// Relays on a started stream until the end. Returns the status for the access log (200 on a
// clean end, the error's status, or 499 when the client went away).
boost::asio::awaitable<int> relay_stream(EventStream& events, StreamShaper& shaper, http::ResponseWriter& writer,
                                         std::chrono::milliseconds keepalive_every);

}  // namespace e2ee::proxy

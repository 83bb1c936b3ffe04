#pragma once
// The HTTP/1.1 server: plain and TLS listeners, keep-alive, limits, timeouts and graceful
// shutdown. Handlers are coroutines that either send one complete response or stream one.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "http/message.hpp"
#include "http/tls.hpp"
#include "http/url.hpp"

namespace e2ee::http {

// Builds the responses the server produces itself: 400 (malformed request), 413 (body too large),
// 431 (head too large) and 500 (handler threw or did not respond). `head` is the request without
// its body when its head was parsed (413 after the head, 500), else nullptr, so that an
// application can answer in the dialect its route implies. Framing headers are the server's.
using ErrorResponder = std::function<Response(int status, std::string_view message, const Request* head)>;

struct ServerLimits {
  std::size_t max_header_bytes = 64 * 1024;         // larger → 431
  std::size_t max_body_bytes = 10 * 1024 * 1024;    // larger → 413 (the reference proxy's 10 MiB)
  // The head of a request must arrive within this, counted from the connection's accept for the
  // first request (TLS handshake included) and from the first byte for later ones (slowloris).
  std::chrono::seconds header_timeout{30};
  std::chrono::seconds body_timeout{120};           // whole body must arrive within this
  std::chrono::seconds idle_timeout{75};            // keep-alive wait for the next request
  std::chrono::seconds write_timeout{60};           // one write to a stalled client
  // Beyond this a new connection replaces the longest-idle one (no request in progress), or is
  // closed at once when every connection is busy.
  std::size_t max_connections = 4096;
  // Empty: {"error":{"message":…,"type":"invalid_request_error"|"server_error"}} as JSON.
  ErrorResponder error_responder;
  // The executor's context runs on one thread. Connections then run on that executor directly:
  // a strand per connection would only add a queue, a lock and executor copies to every
  // resumption, which cost 12-15 % of each process's CPU per request at concurrency 64
  // (docs/performance.md).
  bool one_thread = false;
};

struct Listener {
  Url url;                                  // http://HOST:PORT or https://HOST:PORT (port 0 = any)
  std::shared_ptr<const TlsServerContext> tls;  // required for https, ignored for http
};

// Given to a handler for exactly one response. Either send() once, or start_stream() then any
// number of write()s and finish(). A handler that returns without responding gets a 500; one that
// returns (or throws) with a stream started but not finished has its connection closed, which the
// client sees as a truncated body. Call it only from the handler's own coroutine, one call at a
// time. Content-Length, Transfer-Encoding, Connection and Keep-Alive in the given headers are
// replaced by the server's framing ("Connection: close" is honoured: the connection closes after
// the response); a header that could not be written safely (CR/LF in a value, a name that is not a
// token) makes send()/start_stream() fail with Errc::invalid_argument before anything is sent.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // Sends a complete response (Content-Length set from the body).
  virtual boost::asio::awaitable<Status> send(Response response) = 0;
  // Sends status and headers of a chunked response and flushes them.
  virtual boost::asio::awaitable<Status> start_stream(int status, Headers headers) = 0;
  // Writes one chunk and flushes it (an empty chunk writes nothing). Fails with Errc::cancelled
  // once the client has gone, Errc::timeout when it stopped reading for write_timeout.
  virtual boost::asio::awaitable<Status> write(std::string_view chunk) = 0;
  // Ends a chunked response.
  virtual boost::asio::awaitable<Status> finish() = 0;

  virtual bool started() const noexcept = 0;

  // Calls `hook` (on the handler's executor) if the client disconnects while the handler is still
  // running — noticed even when nothing is being written, e.g. while an upstream is silent — so
  // the handler can cancel work nobody will receive. Hooks are dropped when the handler returns.
  // (A client that sends more data meanwhile, such as a pipelined request, ends the watch: its
  // bytes are left for the next request and its departure is then noticed on the next write.)
  virtual void on_client_gone(std::function<void()> hook) = 0;
};

using Handler = std::function<boost::asio::awaitable<void>(Request&, ResponseWriter&)>;

class Server {
 public:
  Server(boost::asio::any_io_executor executor, Handler handler, ServerLimits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Fails with a one-line reason (address in use, bad TLS context).
  // A host name is resolved once and the first address (IPv4 preferred) is bound.
  Status listen(const Listener& listener);
  // The actual bound endpoints, in listen() order, as URLs (port 0 resolved).
  std::vector<Url> bound() const;

  // Stops accepting, closes idle keep-alive connections, lets in-flight requests finish for up to
  // `grace` (their responses say "Connection: close"), then closes every remaining socket. A
  // handler still running after that ends when its next write fails. Safe to call from any
  // executor or thread (a signal-handling coroutine, say), more than once.
  boost::asio::awaitable<void> shutdown(std::chrono::milliseconds grace);

  // Connections currently open (for tests and metrics).
  std::size_t open_connections() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace e2ee::http

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

namespace e2ee::http {

struct ServerLimits {
  std::size_t max_header_bytes = 64 * 1024;         // larger → 431
  std::size_t max_body_bytes = 10 * 1024 * 1024;    // larger → 413 (the reference proxy's 10 MiB)
  std::chrono::seconds header_timeout{30};          // whole request head must arrive within this (slowloris)
  std::chrono::seconds body_timeout{120};           // whole body must arrive within this
  std::chrono::seconds idle_timeout{75};            // keep-alive wait for the next request
  std::chrono::seconds write_timeout{60};           // one write to a stalled client
  std::size_t max_connections = 4096;               // beyond this, new connections are closed at once
};

struct Listener {
  Url url;                                  // http://HOST:PORT or https://HOST:PORT (port 0 = any)
  std::shared_ptr<const TlsServerContext> tls;  // required for https, ignored for http
};

// Given to a handler for exactly one response. Either send() once, or start_stream() then any
// number of write()s and finish(). A handler that returns without responding gets a 500.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;

  // Sends a complete response (Content-Length set from the body).
  virtual boost::asio::awaitable<Status> send(Response response) = 0;
  // Sends status and headers of a chunked response and flushes them.
  virtual boost::asio::awaitable<Status> start_stream(int status, Headers headers) = 0;
  // Writes one chunk and flushes it. Fails (Errc::cancelled) once the client has gone.
  virtual boost::asio::awaitable<Status> write(std::string_view chunk) = 0;
  // Ends a chunked response.
  virtual boost::asio::awaitable<Status> finish() = 0;

  virtual bool started() const noexcept = 0;
};

using Handler = std::function<boost::asio::awaitable<void>(Request&, ResponseWriter&)>;

class Server {
 public:
  Server(boost::asio::any_io_executor executor, Handler handler, ServerLimits limits = {});
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and starts accepting. Fails with a one-line reason (address in use, bad TLS context).
  Status listen(const Listener& listener);
  // The actual bound endpoints, in listen() order, as URLs (port 0 resolved).
  std::vector<Url> bound() const;

  // Stops accepting, lets in-flight requests finish for up to `grace`, then closes everything.
  boost::asio::awaitable<void> shutdown(std::chrono::milliseconds grace);

  // Connections currently open (for tests and metrics).
  std::size_t open_connections() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace e2ee::http

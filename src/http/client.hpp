#pragma once
// The upstream HTTP/1.1 client: keep-alive connection pool per origin, TLS with verification and
// SNI, connect and read timeouts, and responses either buffered or streamed chunk by chunk.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.hpp"
#include "http/headers.hpp"
#include "http/message.hpp"
#include "http/url.hpp"

namespace e2ee::http {

class TlsClientContext;

struct ClientOptions {
  std::shared_ptr<const TlsClientContext> tls;    // required for https origins
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds read_timeout{300000};   // between bytes of a response (reference: 300 s)
  std::chrono::milliseconds write_timeout{30000};
  // As many idle connections as requests run in parallel, or every request beyond the limit
  // pays a new TCP connection: with 32, at 64 concurrent requests 15 % of them (44 % at 256)
  // connected anew in each hop of e2ee-proxy → e2ee-gateway → engine (bench/run-proxy). Unused
  // ones are closed after idle_ttl.
  std::size_t max_idle_per_origin = 512;
  std::chrono::seconds idle_ttl{30};               // idle pooled connections older than this are closed
  std::size_t max_response_body = 64 * 1024 * 1024; // for buffered responses
};

// Lets whoever started a request abandon it — when the client that asked for it has gone, say.
// cancel() closes the connection the request is using, so whatever step is in progress fails at
// once with Errc::cancelled, and the upstream server sees the connection drop. Once the response
// has been read completely the token lets go of the connection (which may go back to the pool).
// Use it from the executor (strand) the request runs on.
class CancelToken {
 public:
  void cancel() noexcept;
  bool cancelled() const noexcept { return cancelled_; }

  // For the client: what cancel() must close, and when to stop.
  void attach(std::function<void()> closer) { closer_ = std::move(closer); }
  void detach() noexcept { closer_ = nullptr; }

 private:
  bool cancelled_ = false;
  std::function<void()> closer_;
};

struct ClientRequest {
  std::string method = "GET";
  Url origin;               // scheme, host, port (base_path is applied by the caller via target)
  std::string target;       // path + query sent on the request line
  Headers headers;          // Host, Content-Length, Connection, Keep-Alive and Transfer-Encoding
                            // are the client's; a field with CR/LF fails with invalid_argument
  std::string body;
  std::shared_ptr<CancelToken> cancel;  // optional: lets the caller abandon the request
};

// A response whose body is read incrementally. Destroying it before the end closes the
// connection (it cannot be reused), which also cancels the upstream request.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual int status() const noexcept = 0;
  virtual const Headers& headers() const noexcept = 0;
  // The next piece of the (de-chunked) body; an empty string means the body ended cleanly.
  // Fails with Errc::timeout, Errc::protocol (truncated), or Errc::cancelled.
  virtual boost::asio::awaitable<Result<std::string>> read_some() = 0;
  // Reads the rest of the body (up to ClientOptions::max_response_body).
  virtual boost::asio::awaitable<Result<std::string>> read_all() = 0;
  // Abandons the response: closes the connection, so a read_some() in progress completes at once
  // with Errc::cancelled and the server sees the client go (an engine then stops generating).
  // Call it from the executor (strand) the reads run on.
  virtual void cancel() noexcept = 0;
};

// Connections are pooled per origin (scheme, host, port), most recently used first; idle ones are
// closed after idle_ttl, and one that the server closed meanwhile is noticed before reuse.
//
// Retry: a request is sent again, once, on a fresh connection, only if it went out on a reused
// pooled connection and either writing it failed, or the connection ended before any response
// byte and the method is idempotent (GET, HEAD, OPTIONS, PUT, DELETE, TRACE). A POST that was
// written completely is never replayed (the server may have acted on it; Chutes nonces are
// single-use): it fails with Errc::unavailable and the caller decides.
//
// Errors: connection refused and DNS failures → Errc::unavailable ("connect to host:port failed:
// …"); untrusted certificate or wrong name → Errc::protocol; connect, TLS handshake, write and
// read deadlines → Errc::timeout; a body cut short or malformed → Errc::protocol.
//
// Thread safety: one Client may be used by many coroutines at once. Call it from a coroutine that
// runs on a strand (server handlers do) or on a single-threaded io_context: per-operation
// deadlines run on the calling coroutine's executor. Destroy it before its io_context.
class Client {
 public:
  Client(boost::asio::any_io_executor executor, ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends the request and buffers the whole response.
  boost::asio::awaitable<Result<Response>> send(ClientRequest request);
  // Sends the request and returns once the response head has arrived.
  boost::asio::awaitable<Result<std::unique_ptr<ResponseStream>>> open(ClientRequest request);

  // Connections opened so far (tests use it to prove keep-alive reuse).
  std::size_t connections_opened() const noexcept;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace e2ee::http

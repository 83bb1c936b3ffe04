#include "http/server.hpp"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <sys/socket.h>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <limits>
#include <mutex>
#include <optional>
#include <algorithm>
#include <map>

#include "http/wire.hpp"

namespace e2ee::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace {

// Expected failures (peer gone, timeout, malformed input) come back as values, never exceptions.
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

constexpr std::size_t kFirstReadBytes = 4096;
// After a response that ends the connection: how long and how much of the client's remaining
// input we read and drop, so that closing does not reset the connection before the client has
// read our (error) response. Large enough to swallow the rest of an over-limit upload (a 413 is
// only useful if the client gets to read it: with 1 MiB / 2 s, a client still sending an 11 MiB
// body under load got a reset instead, in 5 of 20 tries); the time bound stops a slow sender
// from holding the connection.
constexpr auto kLingerTime = std::chrono::seconds(10);
constexpr std::size_t kLingerBytes = 64 * 1024 * 1024;

using PlainStream = beast::tcp_stream;
using TlsStream = ssl::stream<beast::tcp_stream>;

std::string json_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[(c >> 4) & 0xf];
          out += kHex[c & 0xf];
        } else {
          out += c;
        }
    }
  }
  return out;
}

Response default_error_response(int status, std::string_view message) {
  Response response;
  response.status = status;
  response.headers.set("Content-Type", "application/json");
  const char* type = status >= 500 ? "server_error" : "invalid_request_error";
  response.body = R"({"error":{"message":")" + json_escape(message) + R"(","type":")" + type + R"("}})";
  return response;
}

std::string status_line(int status) {
  std::string line = "HTTP/1.1 " + std::to_string(status) + " ";
  const auto known = bhttp::int_to_status(static_cast<unsigned>(status));
  if (known != bhttp::status::unknown) line.append(bhttp::obsolete_reason(known));
  line += "\r\n";
  return line;
}

bool status_has_body(int status) { return !(status / 100 == 1 || status == 204 || status == 304); }

// Beast's parse errors (as opposed to end of input or I/O failures) mean the request was malformed.
bool is_malformed_request(const error_code& ec) {
  if (ec.category() != bhttp::make_error_code(bhttp::error::bad_method).category()) return false;
  return ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message && ec != bhttp::error::need_more &&
         ec != bhttp::error::header_limit && ec != bhttp::error::body_limit && ec != bhttp::error::need_buffer &&
         ec != bhttp::error::buffer_overflow && ec != bhttp::error::stale_parser;
}

Request request_from(const bhttp::request<bhttp::string_body>& message) {
  Request request;
  request.method = std::string(message.method_string());
  request.target = std::string(message.target());
  const auto question = request.target.find('?');
  request.path = request.target.substr(0, question);
  if (question != std::string::npos) request.query = request.target.substr(question + 1);
  for (const auto& field : message) request.headers.add(field.name_string(), field.value());
  return request;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Shared server state. Connections run on their own strands (on the plain executor when the
// context has one thread); this is what they share, guarded by `mutex`. Acceptors and shutdown
// waiting run on `strand`. (A named namespace: Server::Impl derives from it, and a base in an
// anonymous namespace would give Impl internal linkage.)

namespace server_detail {

struct ServerState {
  ServerState(net::any_io_executor ex, Handler h, ServerLimits l)
      : executor(std::move(ex)), strand(net::make_strand(executor)), handler(std::move(h)), limits(std::move(l)) {}

  // Closes a connection from any thread: posts to the connection's strand. `only_if_idle` leaves
  // it alone if it started a request in the meantime.
  using Closer = std::function<void(bool only_if_idle)>;
  struct Entry {
    Closer close;
    bool idle = false;
  };

  // Registers a new connection. At max_connections the one that has waited longest without a
  // request in progress (an idle keep-alive connection, or one that has not sent a byte: a
  // preconnect, a slowloris) is closed to make room, as nginx reuses idle keep-alive connections;
  // so thousands of idle sockets cannot lock real clients out. Refused only when all are busy.
  std::optional<std::uint64_t> add_connection(Closer closer) {
    Closer evicted;
    std::uint64_t id = 0;
    {
      std::lock_guard lock(mutex);
      if (stopping) return std::nullopt;
      if (connections.size() >= limits.max_connections) {
        const auto oldest_idle = std::find_if(connections.begin(), connections.end(), [](const auto& e) { return e.second.idle; });
        if (oldest_idle == connections.end()) return std::nullopt;
        oldest_idle->second.idle = false;  // picked once; it deregisters when its close lands
        evicted = oldest_idle->second.close;
      }
      id = ++next_id;
      connections.emplace(id, Entry{std::move(closer), false});
      open.store(connections.size());
    }
    if (evicted) evicted(/*only_if_idle=*/true);
    return id;
  }

  void remove_connection(std::uint64_t id) {
    std::vector<std::weak_ptr<net::steady_timer>> wake;
    {
      std::lock_guard lock(mutex);
      connections.erase(id);
      open.store(connections.size());
      if (stopping && connections.empty()) wake.swap(drain_waiters);
    }
    for (auto& weak : wake) {
      net::post(strand, [weak] {
        if (auto timer = weak.lock()) timer->cancel();
      });
    }
  }

  // Marks a connection as waiting for its next request (shutdown may close it at once) or busy.
  // Returns false when the server is stopping and the connection should close instead of waiting.
  bool set_idle(std::uint64_t id, bool idle) {
    std::lock_guard lock(mutex);
    if (idle && stopping) return false;
    if (auto it = connections.find(id); it != connections.end()) it->second.idle = idle;
    return true;
  }

  void close_connections(bool only_idle) {
    std::vector<Closer> closers;
    {
      std::lock_guard lock(mutex);
      for (auto& [id, entry] : connections) {
        if (!only_idle || entry.idle) closers.push_back(entry.close);
      }
    }
    for (auto& close : closers) close(only_idle);
  }

  void close_acceptors() {
    std::lock_guard lock(mutex);
    for (auto& acceptor : acceptors) {
      error_code ignored;
      acceptor->close(ignored);
    }
  }

  Response error_response(int status, std::string_view message, const Request* head) const {
    if (limits.error_responder) {
      try {
        return limits.error_responder(status, message, head);
      } catch (...) {
        // A responder that throws must not take the connection's coroutine with it.
      }
    }
    return default_error_response(status, message);
  }

  net::any_io_executor executor;
  net::strand<net::any_io_executor> strand;
  Handler handler;
  ServerLimits limits;
  std::atomic<bool> stopping{false};  // written under `mutex`, read anywhere
  std::atomic<std::size_t> open{0};

  mutable std::mutex mutex;
  std::vector<std::shared_ptr<tcp::acceptor>> acceptors;  // the objects themselves: on `strand`
  std::vector<Url> bound;
  std::map<std::uint64_t, Entry> connections;  // by id: oldest first
  std::uint64_t next_id = 0;
  std::vector<std::weak_ptr<net::steady_timer>> drain_waiters;
};

}  // namespace server_detail

using ServerImpl = server_detail::ServerState;

namespace {

enum class Outcome {
  keep_alive,           // read the next request
  close_after_response, // we answered and the connection ends: close gracefully
  close_now,            // the peer is gone, timed out or broke the protocol without an answer
};

template <class Stream>
class Connection;

// The ResponseWriter of one request. Writes the head itself (validated by wire::) and, for
// streams, frames each chunk in one buffer so that a TLS record carries a whole chunk.
// What a Writer shares with its disconnect watcher. Shared, because the watcher may resume after
// the Writer is gone (its wait is cancelled when the handler returns, and the cancellation is
// delivered later); `done` tells it not to touch the socket then.
struct WatchState {
  std::vector<std::function<void()>> hooks;
  net::cancellation_signal stop;
  bool watching = false;
  bool done = false;
};

net::awaitable<void> watch_for_disconnect(std::shared_ptr<WatchState> state, tcp::socket& socket) {
  for (;;) {
    auto [ec] = co_await socket.async_wait(tcp::socket::wait_read,
                                           net::bind_cancellation_slot(state->stop.slot(), kUseTuple));
    if (ec || state->done) co_return;
    char byte;
    const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n > 0) co_return;  // data, not a departure (a pipelined request, a TLS alert): stop watching
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) continue;
    // End of stream or a reset: the client is gone.
    auto hooks = std::move(state->hooks);
    state->hooks.clear();
    for (auto& hook : hooks) hook();
    co_return;
  }
}

template <class Stream>
class Writer final : public ResponseWriter {
 public:
  enum class State { none, complete, streaming, finished, failed };

  Writer(Connection<Stream>& connection, bool head_request, unsigned version, bool keep_alive)
      : connection_(connection), head_request_(head_request), version_(version), keep_alive_(keep_alive) {}

  net::awaitable<Status> send(Response response) override {
    if (state_ != State::none) co_return make_error(Errc::internal, "response already started");
    const int status = response.status;
    if (status < 100 || status > 999) co_return make_error(Errc::invalid_argument, "bad response status");
    std::string head = status_line(status);
    if (!append_head_fields(head, response.headers)) {
      co_return make_error(Errc::invalid_argument, "response header not valid on the wire");
    }
    const bool body = status_has_body(status);
    if (body) head += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    append_connection(head);
    state_ = State::complete;
    const bool send_body = body && !head_request_ && !response.body.empty();
    const std::string_view sent_body = send_body ? std::string_view(response.body) : std::string_view();
    co_return co_await write_buffers(head, sent_body);
  }

  net::awaitable<Status> start_stream(int status, Headers headers) override {
    if (state_ != State::none) co_return make_error(Errc::internal, "response already started");
    if (status < 100 || status > 999) co_return make_error(Errc::invalid_argument, "bad response status");
    std::string head = status_line(status);
    if (!append_head_fields(head, headers)) {
      co_return make_error(Errc::invalid_argument, "response header not valid on the wire");
    }
    body_allowed_ = status_has_body(status) && !head_request_;
    // HTTP/1.0 has no chunked encoding: the body then ends when the connection does.
    chunked_ = version_ >= 11;
    if (!chunked_) keep_alive_ = false;
    if (chunked_ && status_has_body(status)) head += "Transfer-Encoding: chunked\r\n";
    append_connection(head);
    state_ = State::streaming;
    co_return co_await write_buffers(head, {});
  }

  net::awaitable<Status> write(std::string_view chunk) override {
    if (state_ == State::failed) co_return make_error(Errc::cancelled, "client connection is gone");
    if (state_ != State::streaming) co_return make_error(Errc::internal, "write() without start_stream()");
    // An empty chunk would be the terminating chunk on the wire.
    if (chunk.empty() || !body_allowed_) co_return Status{};
    if (!chunked_) co_return co_await write_buffers(chunk, {});
    char size[20];
    const int n = std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    frame_.assign(size, static_cast<std::size_t>(n));
    frame_.append(chunk);
    frame_.append("\r\n");
    co_return co_await write_buffers(frame_, {});
  }

  net::awaitable<Status> finish() override {
    if (state_ == State::finished) co_return Status{};
    if (state_ == State::failed) co_return make_error(Errc::cancelled, "client connection is gone");
    if (state_ != State::streaming) co_return make_error(Errc::internal, "finish() without start_stream()");
    if (chunked_ && body_allowed_) {
      if (auto written = co_await write_buffers("0\r\n\r\n", {}); !written) co_return written;
    }
    state_ = State::finished;
    co_return Status{};
  }

  bool started() const noexcept override { return state_ != State::none; }

  void on_client_gone(std::function<void()> hook) override {
    watch_->hooks.push_back(std::move(hook));
    if (watch_->watching) return;
    watch_->watching = true;
    net::co_spawn(connection_.executor_, watch_for_disconnect(watch_, connection_.tcp().socket()), net::detached);
  }

  // Called when the handler has returned: no hook may run any more.
  void stop_watching() {
    watch_->done = true;
    watch_->hooks.clear();
    if (watch_->watching) watch_->stop.emit(net::cancellation_type::all);
  }

  State state() const noexcept { return state_; }
  bool keep_alive() const noexcept { return keep_alive_; }

 private:
  bool append_head_fields(std::string& head, const Headers& headers) {
    if (auto connection = headers.get("Connection"); connection && wire::list_contains(*connection, "close")) {
      keep_alive_ = false;
    }
    return wire::append_fields(head, headers, {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive"});
  }

  void append_connection(std::string& head);
  net::awaitable<Status> write_buffers(std::string_view first, std::string_view second);

  Connection<Stream>& connection_;
  std::shared_ptr<WatchState> watch_ = std::make_shared<WatchState>();
  bool head_request_;
  unsigned version_;
  bool keep_alive_;
  bool chunked_ = true;
  bool body_allowed_ = true;
  State state_ = State::none;
  std::string frame_;
};

// One accepted connection: its stream, read buffer and the coroutine that serves it, top to
// bottom. Runs on its own strand (or the one-thread executor); only Impl::Closer reaches in from
// outside, via that executor.
template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
 public:
  static constexpr bool kTls = std::is_same_v<Stream, TlsStream>;

  Connection(std::shared_ptr<ServerImpl> impl, tcp::socket socket, ssl::context* tls, std::string remote)
      : impl_(std::move(impl)),
        executor_(socket.get_executor()),
        stream_(make_stream(std::move(socket), tls)),
        remote_(std::move(remote)) {}

  static void start(std::shared_ptr<Connection> self) {
    std::weak_ptr<Connection> weak = self;
    auto id = self->impl_->add_connection([weak](bool only_if_idle) {
      if (auto connection = weak.lock()) {
        net::post(connection->executor_, [connection, only_if_idle] {
          if (!only_if_idle || connection->idle_) connection->tcp().close();
        });
      }
    });
    if (!id) {
      self->tcp().close();  // at max_connections or shutting down
      return;
    }
    self->id_ = *id;
    auto executor = self->executor_;
    net::co_spawn(executor, run(std::move(self)), [](const std::exception_ptr&) {
      // run() handles every expected failure itself; an exception here is a bug or bad_alloc,
      // and the connection is already closed by its destructor. There is no logger yet.
    });
  }

  beast::tcp_stream& tcp() { return beast::get_lowest_layer(stream_); }
  Stream& stream() { return stream_; }
  const ServerLimits& limits() const { return impl_->limits; }
  bool stopping() const { return impl_->stopping.load(); }

 private:
  static Stream make_stream(tcp::socket socket, ssl::context* tls) {
    if constexpr (kTls) {
      return Stream(beast::tcp_stream(std::move(socket)), *tls);
    } else {
      (void)tls;
      return Stream(std::move(socket));
    }
  }

  // Deregisters on every exit path, including destruction of a suspended coroutine.
  struct Registration {
    std::shared_ptr<ServerImpl> impl;
    std::uint64_t id;
    ~Registration() { impl->remove_connection(id); }
  };

  static net::awaitable<void> run(std::shared_ptr<Connection> self) {
    Registration registration{self->impl_, self->id_};
    Connection& c = *self;
    const ServerLimits& limits = c.impl_->limits;
    Clock::time_point deadline = Clock::now() + limits.header_timeout;

    if constexpr (kTls) {
      c.tcp().expires_at(deadline);
      auto [ec] = co_await c.stream_.async_handshake(ssl::stream_base::server, kUseTuple);
      if (ec) {
        c.tcp().close();
        co_return;
      }
    }

    Outcome outcome = Outcome::close_now;
    for (bool first = true;; first = false) {
      if (c.buffer_.size() == 0) {
        // Waiting for the next request: shutdown may close us now, and we wait idle_timeout at
        // most (header_timeout for the first request, whose clock started at accept).
        c.idle_ = true;
        if (!c.impl_->set_idle(c.id_, true)) break;
        c.tcp().expires_at(first ? deadline : Clock::now() + limits.idle_timeout);
        auto [ec, n] = co_await c.stream_.async_read_some(c.buffer_.prepare(kFirstReadBytes), kUseTuple);
        c.buffer_.commit(n);
        c.idle_ = false;
        c.impl_->set_idle(c.id_, false);
        if (ec) break;
      }
      if (!first) deadline = Clock::now() + limits.header_timeout;
      outcome = co_await c.serve_one(deadline);
      if (outcome != Outcome::keep_alive) break;
    }

    if (outcome == Outcome::close_after_response) {
      co_await c.close_gracefully();
    } else {
      c.tcp().close();
    }
  }

  net::awaitable<Outcome> serve_one(Clock::time_point header_deadline) {
    const ServerLimits& limits = impl_->limits;
    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(
        std::min<std::size_t>(limits.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(static_cast<std::uint64_t>(limits.max_body_bytes));

    tcp().expires_at(header_deadline);
    auto [head_ec, head_n] = co_await bhttp::async_read_header(stream_, buffer_, parser, kUseTuple);
    if (head_ec) co_return co_await reject(head_ec, parser);

    const auto& message = parser.get();
    if (!parser.is_done()) {
      // curl and others wait (briefly) for this before sending a large body.
      if (auto expect = message.find(bhttp::field::expect);
          expect != message.end() && iequals(expect->value(), "100-continue")) {
        tcp().expires_after(limits.write_timeout);
        auto [ec, n] = co_await net::async_write(stream_, net::buffer("HTTP/1.1 100 Continue\r\n\r\n", 25), kUseTuple);
        if (ec) co_return Outcome::close_now;
      }
      tcp().expires_after(limits.body_timeout);
      auto [body_ec, body_n] = co_await bhttp::async_read(stream_, buffer_, parser, kUseTuple);
      if (body_ec) co_return co_await reject(body_ec, parser);
    }

    Request request = request_from(parser.get());
    request.body = std::move(parser.get().body());
    request.remote_address = remote_;
    request.tls = kTls;
    const bool head_request = parser.get().method() == bhttp::verb::head;
    const bool keep_alive = parser.get().keep_alive();

    // The handler may wait minutes on an upstream; only our own writes are timed from here.
    tcp().expires_never();
    Writer<Stream> writer(*this, head_request, parser.get().version(), keep_alive);
    bool threw = false;
    try {
      co_await impl_->handler(request, writer);
    } catch (...) {
      threw = true;
    }
    writer.stop_watching();

    using State = typename Writer<Stream>::State;
    switch (writer.state()) {
      case State::none: {
        Request head = request_from(parser.get());
        const char* message_text = threw ? "internal error while handling the request"
                                         : "internal error: the request was not answered";
        Writer<Stream> fallback(*this, head_request, parser.get().version(), false);
        auto sent = co_await fallback.send(impl_->error_response(500, message_text, &head));
        co_return sent ? Outcome::close_after_response : Outcome::close_now;
      }
      case State::complete:
      case State::finished:
        if (threw) co_return Outcome::close_after_response;
        co_return writer.keep_alive() ? Outcome::keep_alive : Outcome::close_after_response;
      case State::streaming:  // a body that was never terminated: closing is the only honest end
      case State::failed:     // the client is gone or stalled
        break;
    }
    co_return Outcome::close_now;
  }

  // The request could not be read: answer what deserves an answer, then end the connection.
  net::awaitable<Outcome> reject(const error_code& ec, bhttp::request_parser<bhttp::string_body>& parser) {
    int status = 0;
    std::string message;
    std::optional<Request> head;
    if (ec == bhttp::error::header_limit) {
      status = 431;
      message = "request headers too large";
    } else if (ec == bhttp::error::body_limit) {
      status = 413;
      message = "request body too large";
      // Beast checks Content-Length against the limit after every field is parsed but before it
      // marks the head done, so the head is complete here even though is_header_done() says no.
      head = request_from(parser.get());
    } else if (is_malformed_request(ec)) {
      status = 400;
      message = "malformed HTTP request: " + ec.message();
    } else {
      co_return Outcome::close_now;  // timeout, end of input, reset: nobody to answer
    }
    Writer<Stream> writer(*this, false, 11, false);
    const Request* const parsed_head = head ? &*head : nullptr;
    auto sent = co_await writer.send(impl_->error_response(status, message, parsed_head));
    co_return sent ? Outcome::close_after_response : Outcome::close_now;
  }

  net::awaitable<void> close_gracefully() {
    tcp().expires_after(kLingerTime);
    if constexpr (kTls) {
      // close_notify, then wait (bounded) for the peer's: it tells the client the body is whole.
      co_await stream_.async_shutdown(kUseTuple);
    } else {
      error_code ignored;
      tcp().socket().shutdown(tcp::socket::shutdown_send, ignored);
      char scratch[4096];
      std::size_t drained = 0;
      while (drained < kLingerBytes) {
        auto [ec, n] = co_await tcp().async_read_some(net::buffer(scratch), kUseTuple);
        if (ec) break;
        drained += n;
      }
    }
    tcp().close();
  }

  friend class Writer<Stream>;

  std::shared_ptr<ServerImpl> impl_;
  const net::any_io_executor executor_;  // this connection's strand (or the one-thread executor); closers post here
  Stream stream_;
  beast::flat_buffer buffer_;
  std::string remote_;
  std::uint64_t id_ = 0;
  bool idle_ = false;  // on this connection's executor only
};

template <class Stream>
void Writer<Stream>::append_connection(std::string& head) {
  // Once shutdown has begun every response ends its connection, and says so.
  if (connection_.stopping()) keep_alive_ = false;
  if (!keep_alive_) {
    head += "Connection: close\r\n";
  } else if (version_ < 11) {
    head += "Connection: keep-alive\r\n";
  }
  head += "\r\n";
}

template <class Stream>
net::awaitable<Status> Writer<Stream>::write_buffers(std::string_view first, std::string_view second) {
  connection_.tcp().expires_after(connection_.limits().write_timeout);
  const std::array<net::const_buffer, 2> buffers{net::buffer(first.data(), first.size()),
                                                 net::buffer(second.data(), second.size())};
  auto [ec, n] = co_await net::async_write(connection_.stream(), buffers, kUseTuple);
  if (!ec) co_return Status{};
  state_ = State::failed;
  keep_alive_ = false;
  if (ec == beast::error::timeout) co_return make_error(Errc::timeout, "client stopped reading (write timed out)");
  co_return make_error(Errc::cancelled, "client connection is gone: " + ec.message());
}

net::awaitable<void> accept_loop(std::shared_ptr<ServerImpl> impl, std::shared_ptr<tcp::acceptor> acceptor,
                                 std::shared_ptr<const TlsServerContext> tls) {
  for (;;) {
    // Chosen outside the co_await: a ?: inside its operand corrupts the heap under GCC 12.
    net::any_io_executor connection_executor = impl->executor;
    if (!impl->limits.one_thread) connection_executor = net::make_strand(impl->executor);
    auto [ec, socket] = co_await acceptor->async_accept(connection_executor, kUseTuple);
    if (ec) {
      if (!acceptor->is_open() || impl->stopping) co_return;
      // Out of descriptors and the like: pause instead of spinning on an error that repeats.
      net::steady_timer pause(co_await net::this_coro::executor, std::chrono::milliseconds(50));
      co_await pause.async_wait(kUseTuple);
      continue;
    }
    error_code ignored;
    // SSE chunks are small and must leave at once, not wait for Nagle.
    socket.set_option(tcp::no_delay(true), ignored);
    const auto peer = socket.remote_endpoint(ignored);
    std::string remote = ignored ? std::string() : peer.address().to_string();
    if (tls) {
      Connection<TlsStream>::start(
          std::make_shared<Connection<TlsStream>>(impl, std::move(socket), &tls->native(), std::move(remote)));
    } else {
      Connection<PlainStream>::start(
          std::make_shared<Connection<PlainStream>>(impl, std::move(socket), nullptr, std::move(remote)));
    }
  }
}

// Runs on impl->strand.
net::awaitable<void> drain(std::shared_ptr<ServerImpl> impl, std::chrono::milliseconds grace) {
  const auto deadline = Clock::now() + grace;
  {
    std::lock_guard lock(impl->mutex);
    impl->stopping = true;
  }
  impl->close_acceptors();
  impl->close_connections(/*only_idle=*/true);

  auto timer = std::make_shared<net::steady_timer>(impl->strand, deadline);
  bool wait = false;
  {
    std::lock_guard lock(impl->mutex);
    if (!impl->connections.empty()) {
      impl->drain_waiters.push_back(timer);
      wait = true;
    }
  }
  // Ends at the deadline, or earlier when the last connection goes (remove_connection cancels it).
  if (wait) co_await timer->async_wait(kUseTuple);
  impl->close_connections(/*only_idle=*/false);
}

}  // namespace

// ---------------------------------------------------------------------------------------------

struct Server::Impl : server_detail::ServerState {
  using ServerState::ServerState;
};

Server::Server(net::any_io_executor executor, Handler handler, ServerLimits limits)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(handler), std::move(limits))) {}

Server::~Server() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping = true;
  }
  net::post(impl_->strand, [impl = impl_] { impl->close_acceptors(); });
  impl_->close_connections(/*only_idle=*/false);
}

Status Server::listen(const Listener& listener) {
  const Url& url = listener.url;
  const std::string where = url.origin();
  if (url.tls && !listener.tls) return make_error(Errc::invalid_argument, "cannot listen on " + where + ": no TLS context");

  error_code ec;
  tcp::endpoint endpoint;
  const auto address = net::ip::make_address(url.host, ec);
  if (!ec) {
    endpoint = tcp::endpoint(address, url.port);
  } else {
    tcp::resolver resolver(impl_->executor);
    const auto results = resolver.resolve(url.host, std::to_string(url.port), tcp::resolver::passive, ec);
    if (ec || results.empty()) {
      return make_error(Errc::invalid_argument, "cannot listen on " + where + ": cannot resolve '" + url.host + "'" +
                                                    (ec ? ": " + ec.message() : std::string()));
    }
    endpoint = results.begin()->endpoint();
    for (const auto& entry : results) {
      if (entry.endpoint().address().is_v4()) {
        endpoint = entry.endpoint();
        break;
      }
    }
  }

  auto acceptor = std::make_shared<tcp::acceptor>(impl_->strand);
  auto fail = [&](const char* step) {
    return make_error(Errc::unavailable, "cannot listen on " + where + ": " + step + ": " + ec.message());
  };
  acceptor->open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  // Restarting must not fail while old connections sit in TIME_WAIT.
  acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("SO_REUSEADDR");
  acceptor->bind(endpoint, ec);
  if (ec) return fail("bind");
  acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  const auto local = acceptor->local_endpoint(ec);
  if (ec) return fail("local address");

  Url actual = url;
  actual.port = local.port();
  {
    std::lock_guard lock(impl_->mutex);
    if (impl_->stopping) return make_error(Errc::unavailable, "cannot listen on " + where + ": server is shutting down");
    impl_->acceptors.push_back(acceptor);
    impl_->bound.push_back(actual);
  }
  net::co_spawn(impl_->strand, accept_loop(impl_, acceptor, url.tls ? listener.tls : nullptr),
                [](const std::exception_ptr&) {});
  return {};
}

std::vector<Url> Server::bound() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->bound;
}

net::awaitable<void> Server::shutdown(std::chrono::milliseconds grace) {
  auto impl = impl_;
  co_await net::co_spawn(impl->strand, drain(impl, grace), net::use_awaitable);
}

std::size_t Server::open_connections() const noexcept { return impl_->open.load(); }

}  // namespace e2ee::http

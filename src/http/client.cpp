#include "http/client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <cerrno>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "http/tls.hpp"
#include "http/wire.hpp"

namespace e2ee::http {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

namespace client_detail {

// Expected failures come back as values, never as exceptions.
constexpr auto kUseTuple = net::as_tuple(net::use_awaitable);

// How much de-chunked body one read_some() may return. Small enough that a piece is handed on as
// soon as it arrives (a read returns whatever one socket read produced), large enough for bulk.
// The buffer starts at kFirstPieceBytes and doubles, up to kPieceBytes, whenever a read fills
// it: an open SSE stream (a few hundred bytes per read) then holds 4 KiB instead of 64 KiB,
// which was most of what an open stream cost (bench/run-proxy: ~95 KB per stream in each of
// e2ee-proxy and e2ee-gateway; docs/performance.md, history), while a large body reaches 64 KiB
// pieces after four reads.
constexpr std::size_t kFirstPieceBytes = 4 * 1024;
constexpr std::size_t kPieceBytes = 64 * 1024;
constexpr std::uint32_t kMaxResponseHeaderBytes = 64 * 1024;

// A watchdog for one operation at a time. Its handler is bound to the executor of the coroutine
// that armed it, so it runs serialised with that coroutine's use of the connection when that
// executor is a strand (server handlers run on one) or a single-threaded context. That matters
// because a pooled connection is used by whichever coroutine (and strand) takes it next; Beast's
// tcp_stream would run its timer on the strand that created the connection instead.
class Deadline {
 public:
  explicit Deadline(const net::any_io_executor& executor) : timer_(executor) {}

  template <class OnExpire>
  void arm(const net::any_io_executor& on, std::chrono::milliseconds after, OnExpire on_expire) {
    const std::uint64_t generation = ++state_->generation;
    state_->expired = false;
    timer_.expires_after(after);
    timer_.async_wait(net::bind_executor(
        on, [state = state_, generation, on_expire = std::move(on_expire)](const error_code& ec) mutable {
          // A stale wake-up (cancelled, or fired after the operation finished) does nothing.
          if (ec || state->generation.load() != generation) return;
          state->expired = true;
          on_expire();
        }));
  }
  void disarm() {
    ++state_->generation;
    timer_.cancel();
  }
  bool expired() const noexcept { return state_->expired; }

 private:
  struct State {
    std::atomic<std::uint64_t> generation{0};
    std::atomic<bool> expired{false};
  };
  net::steady_timer timer_;
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// One upstream connection. Owned by exactly one request at a time (or by the idle pool), so its
// members need no lock; the pool's mutex covers the hand-over.
struct Conn : std::enable_shared_from_this<Conn> {
  explicit Conn(const net::any_io_executor& executor) : socket(executor), deadline(executor) {
    // Beast reads into the free capacity of this buffer, at least 512 bytes: left to grow on
    // its own it stays at 512, and a 1.5 KB answer took three reads and three trips through
    // the scheduler (strace). One reservation per connection, kept for its life.
    buffer.reserve(kFirstPieceBytes);
  }

  tcp::socket& lowest() { return tls ? tls->next_layer() : socket; }
  void close() {
    error_code ignored;
    lowest().close(ignored);
  }
  // Arms the deadline to close this connection, which fails whatever operation is pending.
  void arm(const net::any_io_executor& on, std::chrono::milliseconds after) {
    deadline.arm(on, after, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->close();
    });
  }

  std::string key;   // pool key: scheme://host:port
  std::string peer;  // host:port, for messages
  tcp::socket socket;                         // until TLS wraps it
  std::optional<ssl::stream<tcp::socket>> tls;
  beast::flat_buffer buffer;
  Deadline deadline;
  Clock::time_point idle_since{};
};

// Runs `f` on the connection's stream (plain or TLS) and returns its awaitable.
template <class F>
inline auto on_stream(Conn& conn, F&& f) {
  return conn.tls ? f(*conn.tls) : f(conn.socket);
}

// Shared client state: the idle pool (under `mutex`) and counters.
struct ClientState : std::enable_shared_from_this<ClientState> {
  ClientState(net::any_io_executor ex, ClientOptions opts)
      : executor(std::move(ex)), options(std::move(opts)), reaper_strand(net::make_strand(executor)) {}

  // The most recently used idle connection of `key` that still looks open, or nullptr.
  std::shared_ptr<Conn> take_idle(const std::string& key) {
    std::lock_guard lock(mutex);
    prune_locked();
    auto it = idle.find(key);
    if (it == idle.end()) return nullptr;
    auto& list = it->second;
    while (!list.empty()) {
      auto conn = std::move(list.back());
      list.pop_back();
      if (looks_open(*conn)) return conn;
      conn->close();
    }
    return nullptr;
  }

  void give_back(std::shared_ptr<Conn> conn) {
    bool start_reaper = false;
    {
      std::lock_guard lock(mutex);
      if (closed || options.max_idle_per_origin == 0) {
        conn->close();
        return;
      }
      conn->idle_since = Clock::now();
      prune_locked();
      auto& list = idle[conn->key];
      list.push_back(std::move(conn));
      if (list.size() > options.max_idle_per_origin) {
        list.front()->close();
        list.erase(list.begin());
      }
      start_reaper = !reaper_running;
      reaper_running = true;
    }
    if (start_reaper) net::co_spawn(reaper_strand, reap(weak_from_this()), [](const std::exception_ptr&) {});
  }

  void close_all() {
    {
      std::lock_guard lock(mutex);
      closed = true;
      for (auto& [key, list] : idle) {
        for (auto& conn : list) conn->close();
      }
      idle.clear();
    }
    // Wake the reaper so that it ends now rather than at its next expiry (its timer lives on
    // reaper_strand, so the cancel must run there too).
    net::post(reaper_strand, [weak = weak_from_this()] {
      if (auto self = weak.lock(); self && self->reaper_timer) self->reaper_timer->cancel();
    });
  }

  net::any_io_executor executor;
  ClientOptions options;
  std::atomic<std::size_t> opened{0};

 private:
  // Closes idle connections when their idle_ttl ends, so that an unused pool does not hold
  // sockets (which the server has likely closed by then) until the next request. It runs only
  // while the pool holds something, on reaper_strand, and holds the state only weakly.
  static net::awaitable<void> reap(std::weak_ptr<ClientState> weak) {
    for (;;) {
      std::shared_ptr<net::steady_timer> timer;
      {
        auto self = weak.lock();
        if (!self) co_return;
        std::lock_guard lock(self->mutex);
        self->prune_locked();
        if (self->closed || self->idle.empty()) {
          self->reaper_running = false;
          co_return;
        }
        auto next = Clock::time_point::max();
        for (const auto& [key, list] : self->idle) {
          for (const auto& conn : list) next = std::min(next, conn->idle_since + self->options.idle_ttl);
        }
        if (!self->reaper_timer) self->reaper_timer = std::make_shared<net::steady_timer>(self->reaper_strand);
        timer = self->reaper_timer;
        timer->expires_at(next);
      }
      co_await timer->async_wait(kUseTuple);
    }
  }

  // Also run whenever the pool is touched, so that an expired connection is never handed out.
  void prune_locked() {
    const auto now = Clock::now();
    for (auto it = idle.begin(); it != idle.end();) {
      auto& list = it->second;
      for (auto conn = list.begin(); conn != list.end();) {
        if (now - (*conn)->idle_since >= options.idle_ttl) {
          (*conn)->close();
          conn = list.erase(conn);
        } else {
          ++conn;
        }
      }
      it = list.empty() ? idle.erase(it) : std::next(it);
    }
  }

  // A connection the server has closed (EOF) or written to while idle (a TLS close_notify, an
  // unsolicited response) must not carry the next request. Peeking costs one syscall and catches
  // the usual case of a server's keep-alive timeout, so that a retry is rarely needed at all.
  static bool looks_open(Conn& conn) {
    char byte = 0;
    const ssize_t n = ::recv(conn.lowest().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
  }

  std::mutex mutex;
  bool closed = false;
  bool reaper_running = false;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Conn>>> idle;  // most recent last
  net::strand<net::any_io_executor> reaper_strand;
  std::shared_ptr<net::steady_timer> reaper_timer;  // on reaper_strand only
};

using Parser = bhttp::response_parser<bhttp::buffer_body>;

namespace {

std::string authority(const Url& origin) {
  const std::string host = origin.host.find(':') != std::string::npos ? "[" + origin.host + "]" : origin.host;
  return host + ":" + std::to_string(origin.port);
}

std::string pool_key(const Url& origin) { return (origin.tls ? "https://" : "http://") + authority(origin); }

bool is_ip_literal(const std::string& host) {
  error_code ec;
  (void)net::ip::make_address(host, ec);
  return !ec;
}

bool is_idempotent(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "PUT" || method == "DELETE" ||
         method == "TRACE";
}

bool is_truncation(const error_code& ec) {
  return ec == bhttp::error::partial_message || ec == bhttp::error::end_of_stream || ec == net::error::eof ||
         ec == ssl::error::stream_truncated || ec == net::error::connection_reset ||
         ec == net::error::connection_aborted || ec == net::error::broken_pipe;
}

bool is_parse_error(const error_code& ec) {
  return ec.category() == bhttp::make_error_code(bhttp::error::bad_method).category() && !is_truncation(ec);
}

Result<std::string> request_head(const ClientRequest& request) {
  if (!wire::is_token(request.method)) return make_error(Errc::invalid_argument, "bad HTTP method");
  if (request.target.empty() || request.target.find_first_of(std::string_view(" \r\n\0\t", 5)) != std::string::npos) {
    return make_error(Errc::invalid_argument, "bad request target");
  }
  std::string head;
  head.reserve(256);
  head.append(request.method).append(" ").append(request.target).append(" HTTP/1.1\r\nHost: ");
  head.append(request.origin.host_header()).append("\r\n");
  if (!wire::append_fields(head, request.headers,
                           {"Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive"})) {
    return make_error(Errc::invalid_argument, "request header not valid on the wire");
  }
  if (!request.body.empty() || request.method == "POST" || request.method == "PUT" || request.method == "PATCH") {
    head.append("Content-Length: ").append(std::to_string(request.body.size())).append("\r\n");
  }
  head.append("\r\n");
  return head;
}

void configure(Parser& parser, bool head_request) {
  parser.header_limit(kMaxResponseHeaderBytes);
  // The stream has no cap of its own; read_all() applies max_response_body.
  parser.body_limit(boost::none);
  if (head_request) parser.skip(true);
}

net::awaitable<Result<std::shared_ptr<Conn>>> connect(std::shared_ptr<ClientState> state, const Url& origin,
                                                      net::any_io_executor ex) {
  const auto& options = state->options;
  const std::string peer = authority(origin);
  auto failed = [&](Errc code, const std::string& why) {
    return make_error(code, "connect to " + peer + " failed: " + why);
  };
  auto timed_out = [&](const char* step) {
    return make_error(Errc::timeout, "connect to " + peer + " timed out after " +
                                         std::to_string(options.connect_timeout.count()) + " ms (" + step + ")");
  };
  if (origin.tls && !options.tls) {
    co_return make_error(Errc::invalid_argument, "https origin " + peer + " but the client has no TLS context");
  }
  const auto give_up_at = Clock::now() + options.connect_timeout;
  auto remaining = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(give_up_at - Clock::now());
  };

  tcp::resolver resolver(ex);
  Deadline resolve_deadline(ex);
  resolve_deadline.arm(ex, options.connect_timeout, [&resolver] { resolver.cancel(); });
  auto [resolve_ec, endpoints] = co_await resolver.async_resolve(origin.host, std::to_string(origin.port), kUseTuple);
  resolve_deadline.disarm();
  if (resolve_deadline.expired()) co_return timed_out("name resolution");
  if (resolve_ec) co_return failed(Errc::unavailable, "cannot resolve host: " + resolve_ec.message());

  auto conn = std::make_shared<Conn>(state->executor);
  conn->key = pool_key(origin);
  conn->peer = peer;
  error_code last = net::error::host_not_found;
  bool connected = false;
  for (const auto& entry : endpoints) {
    if (remaining().count() <= 0) co_return timed_out("TCP connect");
    error_code ec;
    conn->socket.open(entry.endpoint().protocol(), ec);
    if (ec) {
      last = ec;
      continue;
    }
    conn->arm(ex, remaining());
    auto [connect_ec] = co_await conn->socket.async_connect(entry.endpoint(), kUseTuple);
    conn->deadline.disarm();
    if (conn->deadline.expired()) co_return timed_out("TCP connect");
    if (!connect_ec) {
      connected = true;
      break;
    }
    last = connect_ec;
    conn->socket.close(ec);
  }
  if (!connected) co_return failed(Errc::unavailable, last.message());
  state->opened.fetch_add(1);
  error_code ignored;
  conn->socket.set_option(tcp::no_delay(true), ignored);

  if (origin.tls) {
    conn->tls.emplace(std::move(conn->socket), options.tls->native());
    SSL* ssl_handle = conn->tls->native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (is_ip_literal(origin.host)) {
      // No SNI for addresses (RFC 6066 section 3); the certificate must name the IP instead.
      X509_VERIFY_PARAM_set1_ip_asc(param, origin.host.c_str());
    } else {
      SSL_ctrl(ssl_handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
               const_cast<char*>(origin.host.c_str()));
      X509_VERIFY_PARAM_set1_host(param, origin.host.c_str(), origin.host.size());
    }
    conn->arm(ex, options.connect_timeout);
    auto [handshake_ec] = co_await conn->tls->async_handshake(ssl::stream_base::client, kUseTuple);
    conn->deadline.disarm();
    if (conn->deadline.expired()) {
      conn->close();
      co_return make_error(Errc::timeout, "TLS handshake with " + peer + " timed out");
    }
    if (handshake_ec) {
      conn->close();
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK) {
        co_return make_error(Errc::protocol, "TLS certificate of " + peer + " rejected: " +
                                                 X509_verify_cert_error_string(verify));
      }
      co_return make_error(Errc::protocol, "TLS handshake with " + peer + " failed: " + handshake_ec.message());
    }
  }
  co_return conn;
}

// The body of a response, read piece by piece from its connection.
class StreamImpl final : public ResponseStream {
 public:
  StreamImpl(std::shared_ptr<ClientState> state, std::shared_ptr<Conn> conn, std::unique_ptr<Parser> parser,
             std::shared_ptr<CancelToken> cancel)
      : state_(std::move(state)), conn_(std::move(conn)), parser_(std::move(parser)), cancel_(std::move(cancel)),
        peer_(conn_->peer) {
    const auto& message = parser_->get();
    status_ = static_cast<int>(message.result_int());
    for (const auto& field : message) headers_.add(field.name_string(), field.value());
    if (parser_->is_done()) complete();
  }

  ~StreamImpl() override {
    // Ended early (or failed): the rest of the body is still on the wire, so the connection
    // cannot carry another request. Closing it also tells the server we are gone.
    if (conn_) conn_->close();
  }

  int status() const noexcept override { return status_; }
  const Headers& headers() const noexcept override { return headers_; }

  void cancel() noexcept override {
    // fail() or complete() reset conn_ on the reading side; here we only close the socket.
    if (conn_) conn_->close();
  }

  net::awaitable<Result<std::string>> read_some() override {
    if (error_) co_return *error_;
    if (done_) co_return std::string();
    if (piece_.empty()) piece_.resize(kFirstPieceBytes);
    const auto ex = co_await net::this_coro::executor;
    const auto& options = state_->options;
    for (;;) {
      auto& body = parser_->get().body();
      body.data = piece_.data();
      body.size = piece_.size();
      body.more = true;
      conn_->arm(ex, options.read_timeout);
      auto [ec, n] = co_await on_stream(*conn_, [&](auto& stream) {
        return bhttp::async_read_some(stream, conn_->buffer, *parser_, kUseTuple);
      });
      conn_->deadline.disarm();
      if (ec == bhttp::error::need_buffer) ec = {};  // our piece is full: hand it on
      if (ec == ssl::error::stream_truncated && parser_->need_eof()) {
        // A body delimited by the connection's end, from a server that skipped close_notify.
        // Common enough to accept; the E2EE layer authenticates what it needs.
        ec = {};
        parser_->put_eof(ec);
      }
      if (!ec) ec = parse_buffered();
      const std::size_t got = piece_.size() - parser_->get().body().size;
      if (ec) co_return fail(ec);
      if (parser_->is_done()) complete();
      if (got > 0) {
        std::string out(piece_.data(), got);
        if (got == piece_.size() && piece_.size() < kPieceBytes) piece_.resize(piece_.size() * 2);
        co_return out;
      }
      if (done_) co_return std::string();
    }
  }

  net::awaitable<Result<std::string>> read_all() override {
    std::string body;
    const std::size_t limit = state_->options.max_response_body;
    for (;;) {
      auto piece = co_await read_some();
      if (!piece) co_return std::move(piece).error();
      if (piece->empty()) co_return body;
      if (body.size() + piece->size() > limit) {
        error_ = make_error(Errc::limit_exceeded, "response body from " + peer_ + " exceeds " +
                                                      std::to_string(limit) + " bytes");
        if (conn_) conn_->close();
        conn_.reset();
        co_return *error_;
      }
      if (body.empty()) {
        body = std::move(*piece);  // most bodies arrive in one piece: no second copy
      } else {
        body += *piece;
      }
    }
  }

 private:
  // Parses more of what the connection's buffer already holds into the piece, without I/O.
  // Beast's read_some() stops after one chunk of a chunked body however many the buffer holds,
  // so a burst relayed from an engine cost one read_some() per chunk, and downstream one write
  // per chunk (docs/performance.md, history). Its "eager" mode is no help: it reads from the
  // socket again when the next chunk's header is incomplete, although it already has body.
  error_code parse_buffered() {
    error_code ec;
    while (conn_->buffer.size() > 0 && !parser_->is_done() && parser_->get().body().size > 0) {
      const std::size_t used = parser_->put(conn_->buffer.data(), ec);
      conn_->buffer.consume(used);
      if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) return {};
      if (ec || used == 0) return ec;
    }
    return ec;
  }

  // The response is complete: the connection goes back to the pool if it can carry another one.
  void complete() {
    done_ = true;
    // The connection may serve someone else's request from now on: the token must not close it.
    if (cancel_) cancel_->detach();
    const bool reusable = parser_->keep_alive() && !parser_->need_eof() && conn_->buffer.size() == 0;
    if (reusable) {
      state_->give_back(std::move(conn_));
    } else {
      conn_->close();
    }
    conn_.reset();
  }

  Error fail(const error_code& ec) {
    const std::string& from = peer_;
    if (cancel_ && cancel_->cancelled()) {
      error_ = make_error(Errc::cancelled, "reading the response from " + from + " was cancelled");
    } else if (conn_->deadline.expired()) {
      error_ = make_error(Errc::timeout, "no data from " + from + " for " +
                                             std::to_string(state_->options.read_timeout.count()) + " ms");
    } else if (ec == net::error::operation_aborted) {
      error_ = make_error(Errc::cancelled, "reading the response from " + from + " was cancelled");
    } else if (is_truncation(ec)) {
      error_ = make_error(Errc::protocol, "response body from " + from + " ended early: " + ec.message());
    } else if (is_parse_error(ec)) {
      error_ = make_error(Errc::protocol, "malformed response body from " + from + ": " + ec.message());
    } else {
      error_ = make_error(Errc::protocol, "reading the response from " + from + " failed: " + ec.message());
    }
    conn_->close();
    conn_.reset();
    return *error_;
  }

  std::shared_ptr<ClientState> state_;
  std::shared_ptr<Conn> conn_;  // null once the body is complete or failed
  std::unique_ptr<Parser> parser_;
  std::shared_ptr<CancelToken> cancel_;  // still attached to conn_ until the response completes
  std::string peer_;
  int status_ = 0;
  Headers headers_;
  std::vector<char> piece_;
  bool done_ = false;
  std::optional<Error> error_;
};

// Retry policy. A request is sent again, once and on a new connection, only when it went out on a
// connection reused from the pool (a fresh connection that fails is reported as it is) and
//   - writing it failed: the server cannot have received all of it, so it cannot have acted on
//     it, whatever the method; or
//   - the connection ended before a single response byte, and the method is idempotent.
// A POST that was written completely and then met a closed connection is NOT replayed: the server
// may have acted on it, and our POSTs carry single-use nonces (Chutes) or start billed work, so a
// replay is at best rejected and at worst done twice. The caller gets Errc::not_answered and may
// retry at its own level with a fresh nonce. looks_open() at check-out keeps that case rare.
net::awaitable<Result<std::unique_ptr<ResponseStream>>> open_stream(std::shared_ptr<ClientState> state,
                                                                    ClientRequest request) {
  const auto head = request_head(request);
  if (!head) co_return head.error();
  const auto ex = co_await net::this_coro::executor;
  const auto& options = state->options;
  const std::string key = pool_key(request.origin);
  const bool head_request = request.method == "HEAD";

  for (int attempt = 0;; ++attempt) {
    std::shared_ptr<Conn> conn = attempt == 0 ? state->take_idle(key) : nullptr;
    const bool may_retry = conn != nullptr && attempt == 0;
    if (!conn) {
      auto connected = co_await connect(state, request.origin, ex);
      if (!connected) co_return std::move(connected).error();
      conn = std::move(*connected);
    }
    if (request.cancel) {
      if (request.cancel->cancelled()) {
        conn->close();
        co_return make_error(Errc::cancelled, "the request to " + conn->peer + " was cancelled");
      }
      request.cancel->attach([weak = std::weak_ptr<Conn>(conn)] {
        if (auto c = weak.lock()) c->close();
      });
    }
    const auto cancelled = [&] { return request.cancel && request.cancel->cancelled(); };

    const std::array<net::const_buffer, 2> buffers{net::buffer(*head), net::buffer(request.body)};
    conn->arm(ex, options.write_timeout);
    auto [write_ec, written] =
        co_await on_stream(*conn, [&](auto& stream) { return net::async_write(stream, buffers, kUseTuple); });
    conn->deadline.disarm();
    if (write_ec) {
      conn->close();
      if (cancelled()) co_return make_error(Errc::cancelled, "the request to " + conn->peer + " was cancelled");
      if (conn->deadline.expired()) {
        co_return make_error(Errc::timeout, "sending the request to " + conn->peer + " timed out");
      }
      if (may_retry) continue;
      co_return make_error(Errc::unavailable, "sending the request to " + conn->peer + " failed: " + write_ec.message());
    }

    auto parser = std::make_unique<Parser>();
    configure(*parser, head_request);
    bool interim = false;
    error_code read_ec;
    for (;;) {
      conn->arm(ex, options.read_timeout);
      auto [ec, n] = co_await on_stream(*conn, [&](auto& stream) {
        return bhttp::async_read_header(stream, conn->buffer, *parser, kUseTuple);
      });
      conn->deadline.disarm();
      read_ec = ec;
      const unsigned status = parser->get().result_int();
      // 1xx (other than 101) are interim: the real response follows on the same connection.
      if (read_ec || status / 100 != 1 || status == 101) break;
      interim = true;
      parser = std::make_unique<Parser>();
      configure(*parser, head_request);
    }
    if (read_ec) {
      conn->close();
      if (cancelled()) co_return make_error(Errc::cancelled, "the request to " + conn->peer + " was cancelled");
      if (conn->deadline.expired()) {
        co_return make_error(Errc::timeout, "no response from " + conn->peer + " within " +
                                                std::to_string(options.read_timeout.count()) + " ms");
      }
      const bool nothing_received = !interim && !parser->got_some();
      if (may_retry && nothing_received && is_idempotent(request.method)) continue;
      if (nothing_received && is_truncation(read_ec)) {
        co_return make_error(may_retry ? Errc::not_answered : Errc::unavailable,
                             conn->peer + " closed the connection without answering" +
                                 (may_retry ? " (a reused keep-alive connection; the request was not replayed "
                                              "because the server may have acted on it)"
                                            : ""));
      }
      if (is_parse_error(read_ec)) {
        co_return make_error(Errc::protocol, "malformed response from " + conn->peer + ": " + read_ec.message());
      }
      co_return make_error(Errc::protocol, "reading the response from " + conn->peer + " failed: " + read_ec.message());
    }
    co_return std::unique_ptr<ResponseStream>(new StreamImpl(state, std::move(conn), std::move(parser), request.cancel));
  }
}

}  // namespace
}  // namespace client_detail

struct Client::Impl : client_detail::ClientState {
  using ClientState::ClientState;
};

Client::Client(net::any_io_executor executor, ClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), std::move(options))) {}

void CancelToken::cancel() noexcept {
  cancelled_ = true;
  if (closer_) {
    auto closer = std::move(closer_);
    closer_ = nullptr;
    closer();
  }
}

Client::~Client() { impl_->close_all(); }

net::awaitable<Result<Response>> Client::send(ClientRequest request) {
  auto stream = co_await client_detail::open_stream(impl_, std::move(request));
  if (!stream) co_return std::move(stream).error();
  auto body = co_await (*stream)->read_all();
  if (!body) co_return std::move(body).error();
  Response response;
  response.status = (*stream)->status();
  response.headers = (*stream)->headers();
  response.body = std::move(*body);
  co_return response;
}

net::awaitable<Result<std::unique_ptr<ResponseStream>>> Client::open(ClientRequest request) {
  co_return co_await client_detail::open_stream(impl_, std::move(request));
}

std::size_t Client::connections_opened() const noexcept { return impl_->opened.load(); }

}  // namespace e2ee::http
